"""The inference-node registry: its genesis account and a reader of its state.

The registry (``solidity/InferenceNodeRegistry.sol``) is a system contract deployed at
genesis at ``INFERENCE_REGISTRY_ADDRESS``. Validators read it in the state of the
parent block, so registration and deregistration take effect from the next block.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable

from eth.abc import StateAPI
from eth_utils import keccak

from ogevm.abi.contract import ContractInterface
from ogevm.abi.types import InferenceMode
from ogevm.constants import DEV_MAX_ATTESTATION_AGE, INFERENCE_REGISTRY_ADDRESS
from ogevm.fixtures import fixture_contract
from ogevm.vm.accounts import DEV_INFERENCE_NODE_KEY, DEV_OPERATOR
from ogevm.vm.calls import call_function
from ogevm.errors import TransactionFailed
from ogevm.verify.tee import DEV_VENDOR_ROOT_KEY, SIMULATED_ENCLAVE_MEASUREMENT

if TYPE_CHECKING:
    from ogevm.pipe.worker import WorkerIdentity
    from ogevm.vm.chain import DevChain

# Storage layout of InferenceNodeRegistry (checked by a test against its getters).
_OWNER_SLOT, _VENDOR_SLOT, _MAX_AGE_SLOT, _MEASUREMENTS_SLOT, _NODES_SLOT = 0, 1, 2, 3, 4

#: Mode bits of the registry.
VANILLA_BIT, ZKML_BIT, TEE_BIT = 1, 2, 4


def _mapping_slot(key: bytes, slot: int) -> int:
    return int.from_bytes(keccak(key.rjust(32, b"\x00") + slot.to_bytes(32, "big")), "big")


@lru_cache(maxsize=1)
def registry_interface() -> ContractInterface:
    return fixture_contract("InferenceNodeRegistry")


@dataclass(frozen=True)
class RegistryConfig:
    """Genesis settings of the registry. The defaults are for development only."""

    owner: bytes = DEV_OPERATOR.address
    vendor_root: bytes = DEV_VENDOR_ROOT_KEY.public_key.to_canonical_address()
    max_attestation_age: int = DEV_MAX_ATTESTATION_AGE
    measurements: tuple[bytes, ...] = field(default=(SIMULATED_ENCLAVE_MEASUREMENT,))
    #: Nodes registered at genesis: (address, mode bits). VANILLA and ZKML only.
    nodes: tuple[tuple[bytes, int], ...] = field(
        default=((DEV_INFERENCE_NODE_KEY.public_key.to_canonical_address(), VANILLA_BIT | ZKML_BIT),))

    def genesis_account(self) -> dict:
        """The registry's account in a genesis state: runtime code and initial storage."""
        storage = {
            _OWNER_SLOT: int.from_bytes(self.owner, "big"),
            _VENDOR_SLOT: int.from_bytes(self.vendor_root, "big"),
            _MAX_AGE_SLOT: self.max_attestation_age,
        }
        for measurement in self.measurements:
            storage[_mapping_slot(measurement, _MEASUREMENTS_SLOT)] = 1
        for node, modes in self.nodes:
            storage[_mapping_slot(node, _NODES_SLOT)] = modes  # Node.modes, the struct's first slot
        return {"balance": 0, "nonce": 1, "code": registry_interface().runtime_code, "storage": storage}


class RegistryView:
    """The registry as one state holds it (a validator uses the parent block's state)."""

    def __init__(self, state: StateAPI, address: bytes = INFERENCE_REGISTRY_ADDRESS) -> None:
        self.state = state
        self.address = address
        self._cache: dict[tuple, tuple] = {}

    def _call(self, name: str, *args) -> tuple:
        key = (name, *args)
        if key not in self._cache:
            self._cache[key] = call_function(self.state, self.address, registry_interface().function(name), *args)
        return self._cache[key]

    def is_allowed(self, node: bytes, mode: int) -> bool:
        return self._call("isAllowed", node, mode)[0]

    def vendor_root(self) -> bytes:
        return bytes.fromhex(self._call("vendorRoot")[0][2:])

    def measurement_allowed(self, measurement: bytes) -> bool:
        return self._call("allowedMeasurement", measurement)[0]

    def max_attestation_age(self) -> int:
        return self._call("maxAttestationAge")[0]

    def circuit_vk_hash(self, model_cid: str) -> bytes:
        return self._call("circuitVkHash", model_cid)[0]


def register_nodes(chain: DevChain, identities: Iterable[WorkerIdentity]) -> int:
    """Register each identity the registry does not allow yet, as the registry owner: node
    keys for VANILLA and ZKML, enclaves by their attestation (TEE).

    A development-chain shortcut: each registration is mined at once in its own block.
    Returns how many were sent. Raises :class:`~ogevm.errors.TransactionFailed` if the
    registry refuses one (an expired attestation, an unknown measurement...).
    """
    calls = []
    view = RegistryView(chain.state())
    function = registry_interface().function
    for identity in identities:
        if not view.is_allowed(identity.node, InferenceMode.VANILLA) or not view.is_allowed(identity.node, InferenceMode.ZKML):
            calls.append(function("registerNode").encode(identity.node, VANILLA_BIT | ZKML_BIT))
        if identity.attestation is not None:
            if not view.is_allowed(identity.enclave, InferenceMode.TEE):
                calls.append(function("registerTEE").encode(identity.attestation))
    for data in calls:
        result = chain.send(DEV_OPERATOR, INFERENCE_REGISTRY_ADDRESS, data)
        if not result.success:
            raise TransactionFailed(result.revert_reason, result.return_data)
    return len(calls)
