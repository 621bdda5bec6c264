"""The inference-node registry: a reader of its state, and node registration.

The registry (``solidity/InferenceNodeRegistry.sol``) is a system contract deployed at
genesis at ``INFERENCE_REGISTRY_ADDRESS`` (its genesis account: :mod:`ogevm.vm.genesis`).
Validators read it in the state of the parent block, so registration and deregistration
take effect from the next block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from eth.abc import StateAPI

from ogevm.abi.types import InferenceMode
from ogevm.constants import INFERENCE_REGISTRY_ADDRESS
from ogevm.errors import TransactionFailed
from ogevm.vm.accounts import DEV_OPERATOR
from ogevm.vm.calls import call_function
from ogevm.vm.genesis import VANILLA_BIT, ZKML_BIT, registry_interface

if TYPE_CHECKING:
    from ogevm.pipe.worker import WorkerIdentity
    from ogevm.vm.chain import DevChain


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
