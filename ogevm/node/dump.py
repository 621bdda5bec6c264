"""``anvil_dumpState`` / ``anvil_loadState``: the head state as JSON, in anvil's shape.

``{"accounts": {address: {"nonce": n, "balance": hex, "code": hex, "storage": {slot: value}}}}``,
gzip-compressed for the RPC answer as anvil does. Accounts and slots are found by walking the
state tries and naming their keys by the preimages the node keeps
(:mod:`ogevm.node.preimages`). Loading sets each listed account's balance, nonce, code and
listed slots, and leaves the rest of the state as it is (anvil's rule).
"""

from __future__ import annotations

import gzip
import json
import zlib
from dataclasses import dataclass
from typing import Any

import rlp
from eth.abc import StateAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.rlp.accounts import Account
from trie import HexaryTrie
from trie.iter import NodeIterator

from ogevm.node import params
from ogevm.node.params import ParamError
from ogevm.node.preimages import PREIMAGE

#: Largest state JSON a load unpacks (a gzip body expands; the 8 MiB body limit is before).
MAX_STATE_JSON_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class AccountState:
    nonce: int
    balance: int
    code: bytes
    storage: dict[int, int]


def dump_state(db, state_root: bytes) -> dict:
    """The accounts of the state at ``state_root`` in ``db`` whose address the node knows."""
    accounts = {}
    for digest, encoded in NodeIterator(HexaryTrie(db, state_root)).items():
        address = db.get(PREIMAGE + digest)
        if address is None:  # written before this node kept preimages
            continue
        account = rlp.decode(encoded, sedes=Account)
        storage = {}
        if account.storage_root != BLANK_ROOT_HASH:
            for slot_digest, value in NodeIterator(HexaryTrie(db, account.storage_root)).items():
                slot = db.get(PREIMAGE + slot_digest)
                if slot is not None:
                    storage[_hex(slot)] = _hex(rlp.decode(value).rjust(32, b"\0"))
        accounts["0x" + address.hex()] = {
            "nonce": account.nonce, "balance": hex(account.balance),
            "code": "0x" + (db[account.code_hash].hex() if account.code_hash != EMPTY_SHA3 else ""),
            "storage": storage}
    return {"accounts": accounts}


def pack(state: dict) -> bytes:
    return gzip.compress(json.dumps(state, sort_keys=True).encode(), mtime=0)


def parse_state(raw: bytes, name: str = "state") -> dict[bytes, AccountState]:
    """The accounts of a dump: gzip-compressed or plain JSON bytes. Raises ParamError."""
    if raw[:2] == b"\x1f\x8b":
        unpacker = zlib.decompressobj(wbits=31)
        try:
            raw = unpacker.decompress(raw, MAX_STATE_JSON_BYTES)
        except zlib.error as exc:
            raise ParamError(name, f"not valid gzip: {exc}") from exc
        if unpacker.unconsumed_tail:
            raise ParamError(name, f"unpacks to more than {MAX_STATE_JSON_BYTES} bytes")
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ParamError(name, f"not JSON: {type(exc).__name__}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("accounts"), dict):
        raise ParamError(name, 'must be an object with an "accounts" object')
    return {params.address(key, f"{name}.accounts"): _account(value, f"{name}.accounts.{key}")
            for key, value in document["accounts"].items()}


def load_state(state: StateAPI, accounts: dict[bytes, AccountState]) -> None:
    """Set every account of ``accounts`` in ``state`` (other accounts and slots stay)."""
    for address, account in accounts.items():
        state.set_balance(address, account.balance)
        state.set_nonce(address, account.nonce)
        state.set_code(address, account.code)
        for slot, value in account.storage.items():
            state.set_storage(address, slot, value)


def _account(value: Any, name: str) -> AccountState:
    if not isinstance(value, dict):
        raise ParamError(name, "must be an object")
    storage = value.get("storage") or {}
    if not isinstance(storage, dict):
        raise ParamError(f"{name}.storage", "must be an object of slot: value")
    return AccountState(
        nonce=params.uint64(value.get("nonce", 0), f"{name}.nonce"),
        balance=params.uint256(value.get("balance", "0x0"), f"{name}.balance"),
        code=params.data(value.get("code", "0x"), f"{name}.code"),
        storage={params.uint256(slot, f"{name}.storage"): params.uint256(word, f"{name}.storage.{slot}")
                 for slot, word in storage.items()})


def _hex(raw: bytes) -> str:
    return "0x" + raw.hex()
