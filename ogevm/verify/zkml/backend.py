"""ezkl access: its import, calls whose failures become :class:`ZkmlUnsupported`, and the
scratch files its file-based API needs.

ezkl's error messages and file formats are not a stable interface: the rest of the package
calls it through here or through the few calls of :mod:`.circuits` and :mod:`.checker` that
turn its failures into ogevm's errors.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

from ogevm.errors import ZkmlUnsupported


def call_ezkl(what: str, function: str, **kwargs):
    """Call an ezkl function; its failure means this request cannot be proven."""
    try:
        return getattr(ezkl_module(), function)(**kwargs)
    except Exception as exc:  # ezkl raises RuntimeError, ValueError, panics...
        raise ZkmlUnsupported(f"ezkl cannot {what} for this request: {first_line(exc)}") from exc


@contextlib.contextmanager
def output_silenced():
    """Send file descriptors 1 and 2 to /dev/null: ezkl's Rust code writes its calibration
    report there directly (its failures still arrive as exceptions)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 1)
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            for fd, copy in zip((1, 2), saved):
                os.dup2(copy, fd)
                os.close(copy)


def ezkl_module():
    os.environ.setdefault("RUST_LOG", "error")  # ezkl's calibration report otherwise goes to stdout
    try:
        import ezkl
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ZkmlUnsupported("ZKML needs the ezkl package (pip install 'ogevm[zkml]')") from exc
    return ezkl


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


class Scratch:
    """Temporary files in a circuit's directory, removed on exit."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._paths: list[Path] = []

    def path(self, stem: str) -> Path:
        fd, name = tempfile.mkstemp(prefix=f".tmp-{stem}-", suffix=".json", dir=self.directory)
        os.close(fd)
        path = Path(name)
        self._paths.append(path)
        return path

    def write(self, stem: str, content: dict) -> Path:
        path = self.path(stem)
        path.write_text(json.dumps(content))
        return path

    def __enter__(self) -> "Scratch":
        return self

    def __exit__(self, *exc) -> None:
        for path in self._paths:
            path.unlink(missing_ok=True)
