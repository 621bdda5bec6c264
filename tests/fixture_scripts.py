"""The generator scripts of ``fixtures/`` as modules (``fixtures`` is not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_script(filename: str) -> ModuleType:
    """``fixtures/<filename>`` imported once, with ``fixtures/`` on the path as when it runs as a
    script (the generators share ``vector_files``)."""
    name = f"ogevm_fixture_{Path(filename).stem}"
    if name not in sys.modules:
        if str(FIXTURES) not in sys.path:
            sys.path.append(str(FIXTURES))
        spec = importlib.util.spec_from_file_location(name, FIXTURES / filename)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
