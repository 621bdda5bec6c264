"""The fixture ONNX models and compiled contract artifacts that ship with ogevm."""

from __future__ import annotations

from pathlib import Path

from ogevm.abi.contract import ContractInterface
from ogevm.resources import CONTRACTS, MODELS, data_root, resource

#: The fixtures folder: the repository's ``fixtures/`` in a checkout (with the conformance
#: vectors), the models and contracts alone in an installed package.
FIXTURES = data_root() / "fixtures"


def fixture_model(name: str) -> Path:
    """Path of the fixture model ``<name>.onnx``. Raises OgevmError if it is missing."""
    return resource(MODELS, f"{name}.onnx")


def fixture_contract(name: str) -> ContractInterface:
    """The compiled contract ``<name>.json``. Raises OgevmError if it is missing."""
    return ContractInterface.from_artifact(resource(CONTRACTS, f"{name}.json"))
