"""Paths of the repository's fixtures: ONNX models and compiled contract artifacts."""

from __future__ import annotations

from pathlib import Path

from ogevm.abi.contract import ContractInterface
from ogevm.errors import OgevmError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def fixture_model(name: str) -> Path:
    """Path of ``fixtures/models/<name>.onnx``. Raises OgevmError if it is missing."""
    return _existing(FIXTURES / "models" / f"{name}.onnx")


def fixture_contract(name: str) -> ContractInterface:
    """The compiled contract ``fixtures/contracts/<name>.json``."""
    return ContractInterface.from_artifact(_existing(FIXTURES / "contracts" / f"{name}.json"))


def _existing(path: Path) -> Path:
    if not path.exists():
        raise OgevmError(f"{path} not found: run ogevm from a checkout of the repository")
    return path
