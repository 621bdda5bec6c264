"""The development genesis: header fields and the state every dev chain starts from.

Genesis is composed here only: the funded development accounts, the node registry
(``solidity/InferenceNodeRegistry.sol``, a system contract at ``INFERENCE_REGISTRY_ADDRESS``)
with its initial storage, and the task scheduler. The registry's readers live in
:mod:`ogevm.verify.registry`, above this layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Sequence

from eth_utils import keccak

from ogevm.abi.contract import ContractInterface
from ogevm.constants import (
    DEV_ACCOUNT_BALANCE,
    DEV_BLOCK_GAS_LIMIT,
    DEV_INITIAL_BASE_FEE,
    DEV_MAX_ATTESTATION_AGE,
    DEV_VENDOR_ROOT_KEY,
    INFERENCE_REGISTRY_ADDRESS,
    SIMULATED_ENCLAVE_MEASUREMENT,
)
from ogevm.fixtures import fixture_contract
from ogevm.vm.accounts import DEV_ACCOUNTS, DEV_INFERENCE_NODE_KEY, DEV_OPERATOR, DevAccount
from ogevm.vm.scheduler import TASK_SCHEDULER_ADDRESS, scheduler_genesis_account

GENESIS_TIMESTAMP = 1_700_000_000

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


def genesis_params(gas_limit: int = DEV_BLOCK_GAS_LIMIT) -> dict[str, Any]:
    """Header fields of the development genesis (post-merge: no difficulty, no nonce)."""
    return {
        "difficulty": 0,
        "gas_limit": gas_limit,
        "timestamp": GENESIS_TIMESTAMP,
        "base_fee_per_gas": DEV_INITIAL_BASE_FEE,
        "nonce": b"\x00" * 8,
        "extra_data": b"",
    }


def genesis_state(accounts: Sequence[DevAccount] = DEV_ACCOUNTS,
                  registry: RegistryConfig = RegistryConfig()) -> dict[bytes, dict]:
    """Each development account with ``DEV_ACCOUNT_BALANCE`` wei, the node registry and the
    task scheduler."""
    state = {
        account.address: {"balance": DEV_ACCOUNT_BALANCE, "nonce": 0, "code": b"", "storage": {}}
        for account in accounts
    }
    state[DEV_OPERATOR.address] = {"balance": DEV_ACCOUNT_BALANCE, "nonce": 0, "code": b"", "storage": {}}
    state[INFERENCE_REGISTRY_ADDRESS] = registry.genesis_account()
    state[TASK_SCHEDULER_ADDRESS] = scheduler_genesis_account()
    return state
