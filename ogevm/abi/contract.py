"""Calling contracts by their JSON ABI (the committed solc artifacts) without web3."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from eth_abi import decode, encode
from eth_utils import keccak


def abi_type(param: dict) -> str:
    """The canonical ABI type of a JSON ABI parameter (tuples expanded)."""
    kind = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(abi_type(c) for c in param["components"])
        return f"({inner}){kind[len('tuple'):]}"
    return kind


@dataclass(frozen=True)
class Function:
    """One function of a JSON ABI."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.inputs)})"

    @property
    def selector(self) -> bytes:
        return keccak(text=self.signature)[:4]

    def encode(self, *args: Any) -> bytes:
        return self.selector + encode(list(self.inputs), list(args))

    def decode(self, data: bytes) -> tuple:
        return decode(list(self.outputs), bytes(data))


@dataclass(frozen=True)
class Event:
    """One event of a JSON ABI (indexed fields come back as their raw topics)."""

    name: str
    types: tuple[str, ...]
    indexed: tuple[bool, ...]
    names: tuple[str, ...]

    @property
    def topic(self) -> bytes:
        return keccak(text=f"{self.name}({','.join(self.types)})")

    def decode(self, topics: Sequence[int], data: bytes) -> dict[str, Any]:
        plain = [t for t, i in zip(self.types, self.indexed) if not i]
        values = iter(decode(plain, bytes(data)))
        extra = iter(topics[1:])
        return {n: (next(extra) if i else next(values)) for n, i in zip(self.names, self.indexed)}


@dataclass(frozen=True)
class ContractInterface:
    """Functions, events and creation code of a compiled contract."""

    name: str
    abi: tuple[dict, ...]
    bytecode: bytes
    runtime_code: bytes = b""

    @classmethod
    def from_artifact(cls, path: Path | str) -> "ContractInterface":
        """Load an artifact written by ``solidity/compile.js``."""
        artifact = json.loads(Path(path).read_text())
        return cls(artifact["contractName"], tuple(artifact["abi"]),
                   bytes.fromhex(artifact["bytecode"].removeprefix("0x")),
                   bytes.fromhex(artifact["deployedBytecode"].removeprefix("0x")))

    def function(self, name: str) -> Function:
        """The function called ``name``. Raises KeyError if there is none."""
        for item in self.abi:
            if item.get("type") == "function" and item["name"] == name:
                return Function(name, tuple(abi_type(p) for p in item["inputs"]),
                                tuple(abi_type(p) for p in item["outputs"]))
        raise KeyError(f"{self.name} has no function {name!r}")

    def event(self, name: str) -> Event:
        """The event called ``name``. Raises KeyError if there is none."""
        for item in self.abi:
            if item.get("type") == "event" and item["name"] == name:
                params = item["inputs"]
                return Event(name, tuple(abi_type(p) for p in params),
                             tuple(p["indexed"] for p in params), tuple(p["name"] for p in params))
        raise KeyError(f"{self.name} has no event {name!r}")

    def constructor_args(self, *args: Any) -> bytes:
        for item in self.abi:
            if item.get("type") == "constructor":
                return encode([abi_type(p) for p in item["inputs"]], list(args))
        return b""
