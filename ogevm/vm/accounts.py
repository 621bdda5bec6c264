"""The ten funded development accounts of anvil and the Hardhat node.

They derive from the public mnemonic ``test test test test test test test test test
test test junk`` (path ``m/44'/60'/0'/0/i``); a test derives them again to check.
Never use them on a real network.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_keys import keys
from eth_utils import keccak

DEV_MNEMONIC = "test test test test test test test test test test test junk"

_DEV_KEYS = (
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
    "92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e",
    "4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356",
    "dbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97",
    "2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6",
)


@dataclass(frozen=True)
class DevAccount:
    """A development account: its key and its address."""

    private_key: keys.PrivateKey

    @property
    def address(self) -> bytes:
        return self.private_key.public_key.to_canonical_address()

    @property
    def checksum_address(self) -> str:
        return self.private_key.public_key.to_checksum_address()


DEV_ACCOUNTS = tuple(DevAccount(keys.PrivateKey(bytes.fromhex(k))) for k in _DEV_KEYS)


#: The development inference node, registered at genesis for VANILLA and ZKML results.
#: Derived from a public label: anyone can sign as it. Development chains only.
DEV_INFERENCE_NODE_KEY = keys.PrivateKey(keccak(b"ogevm development inference node (not secret)"))


def dev_inference_node_key(index: int) -> keys.PrivateKey:
    """Development key of inference worker ``index``: 0 is :data:`DEV_INFERENCE_NODE_KEY`
    (registered at genesis); the others are registered when a node starts. Public labels:
    development chains only."""
    if index == 0:
        return DEV_INFERENCE_NODE_KEY
    return keys.PrivateKey(keccak(b"ogevm development inference node %d (not secret)" % index))

#: The development operator: owner of the node registry and sender of the node's own
#: housekeeping transactions (enclave and circuit registration), funded at genesis. It is
#: not one of the ten user accounts, so it never takes a nonce a user's pooled tx expects.
#: Derived from a public label: development chains only.
DEV_OPERATOR = DevAccount(keys.PrivateKey(keccak(b"ogevm development operator (not secret)")))

#: The development mock key: PIPE signs mocked inference results with it
#: (:mod:`ogevm.precompile.mocks`). It is never registered, so a validator refuses a block
#: holding a mocked result unless it is in dev mode (``BlockValidator(accept_mocks=True)``).
#: Derived from a public label: development chains only.
DEV_MOCK_KEY = keys.PrivateKey(keccak(b"ogevm development mock inference (not secret)"))
