"""Where the files ogevm ships beside its code are: Solidity sources, compiled contracts, models.

A checkout (and an editable install) reads them from the repository's ``solidity/`` and
``fixtures/`` folders. A wheel cannot reach outside the package, so the build copies the same
files with the same layout into ``ogevm/_data/`` (see ``setup.py``). This module is the one
place that knows both, so ``ogevm node``, ``ogevm demo`` and ``ogevm compile`` work from any
directory either way.
"""

from __future__ import annotations

from pathlib import Path

from ogevm.errors import OgevmError

_PACKAGE = Path(__file__).resolve().parent

#: Folders under the data root, the same in a checkout and in an installed package.
SOLIDITY = "solidity"
CONTRACTS = "fixtures/contracts"
MODELS = "fixtures/models"


def data_root() -> Path:
    """``ogevm/_data`` in an installed package, else the checkout that holds the package."""
    installed = _PACKAGE / "_data"
    return installed if installed.is_dir() else _PACKAGE.parent


def resource(folder: str, name: str = "") -> Path:
    """The existing file or folder ``<data root>/<folder>/<name>``.

    Raises :class:`~ogevm.errors.OgevmError` if it is missing (an incomplete installation,
    or a name that does not exist).
    """
    path = data_root() / folder / name
    if not path.exists():
        raise OgevmError(f"{path} not found: the ogevm installation is incomplete, or there is no such file")
    return path
