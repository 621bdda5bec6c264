"""Parameters of the JSON-RPC methods: declared per method, parsed before the method runs.

Each ``rpc_`` method of :class:`ogevm.node.rpc.RpcMethods` declares its positional
parameters with :func:`takes`; :func:`parse_params` turns the JSON ``params`` list into
Python values or raises :class:`ParamError`, which the node answers with -32602 and a
message naming the parameter (``invalid params: slot: quantity above 2^256-1``). So a
method body only ever sees well-formed, bounded values. The rules are in ``docs/RPC.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

UINT64_MAX = 2**64 - 1
UINT256_MAX = 2**256 - 1
#: EIP-3860: the longest init code a creation may run.
MAX_INITCODE_BYTES = 49_152
#: Block tags; all but ``earliest`` name the head on the dev node.
BLOCK_TAGS = frozenset({"latest", "pending", "safe", "finalized", "earliest"})
MAX_TOPICS = 4
MAX_PERCENTILES = 100


class ParamError(ValueError):
    """A parameter the method cannot accept: ``name`` says which, ``reason`` why."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name, self.reason = name, reason


Parser = Callable[[Any, str], Any]
REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """One positional parameter: its ``name``, its ``parse`` function, and the parsed value
    used when it is absent or null (``REQUIRED``: it must be given)."""

    name: str
    parse: Parser
    default: Any = REQUIRED


def takes(*spec: Param) -> Callable:
    """Declare the parameters of an ``rpc_`` method; it is called with their parsed values."""

    def declare(method: Callable) -> Callable:
        method.params = spec
        return method

    return declare


def parse_params(spec: tuple[Param, ...], values: list) -> list:
    """The parsed values of ``values`` (the JSON params list) by ``spec``. Raises ParamError."""
    if len(values) > len(spec):
        raise ParamError("params", f"too many: expected at most {len(spec)}, got {len(values)}")
    parsed = []
    for index, param in enumerate(spec):
        value = values[index] if index < len(values) else None
        if value is not None:
            parsed.append(param.parse(value, param.name))
        elif param.default is REQUIRED:
            raise ParamError(param.name, f"missing parameter {index}")
        else:
            parsed.append(param.default)
    return parsed


# --- scalars ---------------------------------------------------------------------------
def quantity(limit: int) -> Parser:
    """A parser of non-negative integers up to ``limit``: ``0x`` hex (leading zeros allowed,
    as anvil does) or a JSON integer."""
    bound = f"2^{limit.bit_length()}-1"

    def parse(value: Any, name: str) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
            if number < 0:
                raise ParamError(name, "quantity must not be negative")
        elif isinstance(value, str) and value.startswith("0x"):
            digits = value[2:]
            raw = _hex_bytes(digits if len(digits) % 2 == 0 else "0" + digits) if digits else None
            if raw is None:
                raise ParamError(name, f"{_show(value)} is not a hex quantity")
            significant = raw.lstrip(b"\0")
            number = int.from_bytes(significant, "big") if len(significant) <= 32 else limit + 1  # never a huge int
        else:
            raise ParamError(name, "must be a 0x-prefixed hex quantity")
        if number > limit:
            raise ParamError(name, f"quantity above {bound}")
        return number

    return parse


uint64 = quantity(UINT64_MAX)
uint256 = quantity(UINT256_MAX)


def data(value: Any, name: str) -> bytes:
    """``0x``-prefixed hex with an even number of digits."""
    if not isinstance(value, str) or not value.startswith("0x"):
        raise ParamError(name, "must be 0x-prefixed hex")
    raw = _hex_bytes(value[2:])
    if raw is None:
        raise ParamError(name, "must be hex with an even number of digits")
    return raw


def fixed_data(size: int) -> Parser:
    """A parser of exactly ``size`` bytes of hex data."""

    def parse(value: Any, name: str) -> bytes:
        raw = data(value, name)
        if len(raw) != size:
            raise ParamError(name, f"must be {size} bytes, not {len(raw)}")
        return raw

    return parse


address = fixed_data(20)
hash32 = fixed_data(32)


def boolean(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ParamError(name, "must be true or false")
    return value


def string(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ParamError(name, "must be a string")
    return value


def percentiles(value: Any, name: str) -> list[float]:
    """Reward percentiles of ``eth_feeHistory``: numbers in 0..100, ascending."""
    if not isinstance(value, list):
        raise ParamError(name, "must be a list of numbers")
    if len(value) > MAX_PERCENTILES:
        raise ParamError(name, f"at most {MAX_PERCENTILES} percentiles")
    previous = 0.0
    for item in value:
        if isinstance(item, bool) or not isinstance(item, (int, float)) or not 0 <= item <= 100:
            raise ParamError(name, f"{_show(item)} is not a number in 0..100")
        if item < previous:
            raise ParamError(name, "percentiles must be ascending")
        previous = item
    return [float(item) for item in value]


# --- blocks ----------------------------------------------------------------------------
BlockRef = str | int | bytes  # a tag, a number, or a block hash (EIP-1898)


def block(value: Any, name: str) -> BlockRef:
    """A block parameter: a tag, a number, ``{"blockHash": h}`` or ``{"blockNumber": n}``."""
    if isinstance(value, str) and value in BLOCK_TAGS:
        return value
    if isinstance(value, dict):
        keys = set(value) - {"requireCanonical"}
        if keys == {"blockHash"}:
            if "requireCanonical" in value:
                boolean(value["requireCanonical"], f"{name}.requireCanonical")
            return hash32(value["blockHash"], f"{name}.blockHash")
        if keys == {"blockNumber"} and "requireCanonical" not in value:
            return uint64(value["blockNumber"], f"{name}.blockNumber")
        raise ParamError(name, "a block object holds blockHash (and requireCanonical) or blockNumber")
    if isinstance(value, str) and not value.startswith("0x"):
        raise ParamError(name, f"{_show(value)} is not a hex quantity nor a block tag ({', '.join(sorted(BLOCK_TAGS))})")
    return uint64(value, name)


# --- objects -----------------------------------------------------------------------------
@dataclass(frozen=True)
class CallArgs:
    """A transaction or call object (``eth_call``, ``eth_estimateGas``, ``eth_sendTransaction``);
    ``None`` where the field was absent."""

    sender: bytes | None = None
    to: bytes | None = None
    gas: int | None = None
    gas_price: int | None = None
    max_fee: int | None = None
    tip: int | None = None
    value: int = 0
    data: bytes = b""
    nonce: int | None = None


_CALL_FIELDS: dict[str, tuple[str, Parser]] = {
    "from": ("sender", address), "to": ("to", address), "gas": ("gas", uint64),
    "gasPrice": ("gas_price", uint256), "maxFeePerGas": ("max_fee", uint256),
    "maxPriorityFeePerGas": ("tip", uint256), "value": ("value", uint256), "nonce": ("nonce", uint64),
}


def call_object(value: Any, name: str) -> CallArgs:
    """A call object; fields it does not know (``type``, ``chainId``, ``accessList``…) are
    ignored, as geth does."""
    if not isinstance(value, dict):
        raise ParamError(name, "must be an object")
    fields = {attr: parse(value[key], f"{name}.{key}")
              for key, (attr, parse) in _CALL_FIELDS.items() if value.get(key) is not None}
    payloads = {key: data(value[key], f"{name}.{key}") for key in ("input", "data") if value.get(key) is not None}
    if len(set(payloads.values())) > 1:
        raise ParamError(name, "both data and input are set and differ")
    key, payload = next(iter(payloads.items()), ("data", b""))
    if fields.get("to") is None and len(payload) > MAX_INITCODE_BYTES:
        raise ParamError(f"{name}.{key}", f"init code is {len(payload)} bytes; the limit is "
                                          f"{MAX_INITCODE_BYTES} bytes (EIP-3860)")
    if "gas_price" in fields and ("max_fee" in fields or "tip" in fields):
        raise ParamError(name, "both gasPrice and maxFeePerGas/maxPriorityFeePerGas are set")
    if fields.get("tip", 0) > fields.get("max_fee", UINT256_MAX):
        raise ParamError(name, "maxPriorityFeePerGas is above maxFeePerGas")
    return CallArgs(data=payload, **fields)


@dataclass(frozen=True)
class LogFilter:
    """A log filter: a block range or one block hash, addresses (``None``: any) and topics
    (per position ``None``: any, else the set of accepted topics)."""

    from_block: BlockRef = "latest"
    to_block: BlockRef = "latest"
    block_hash: bytes | None = None
    addresses: frozenset[bytes] | None = None
    topics: tuple[frozenset[int] | None, ...] = ()


def log_filter(value: Any, name: str) -> LogFilter:
    if not isinstance(value, dict):
        raise ParamError(name, "must be an object")
    fields: dict[str, Any] = {}
    for key, attr in (("fromBlock", "from_block"), ("toBlock", "to_block")):
        if value.get(key) is not None:
            fields[attr] = block(value[key], f"{name}.{key}")
    if value.get("blockHash") is not None:
        if fields:
            raise ParamError(name, "blockHash cannot be combined with fromBlock/toBlock")
        fields["block_hash"] = hash32(value["blockHash"], f"{name}.blockHash")
    addresses = value.get("address")
    if isinstance(addresses, str):
        addresses = [addresses]
    if addresses is not None:
        if not isinstance(addresses, list):
            raise ParamError(f"{name}.address", "must be an address or a list of addresses")
        if addresses:
            fields["addresses"] = frozenset(address(a, f"{name}.address") for a in addresses)
    topics = value.get("topics")
    if topics is not None:
        if not isinstance(topics, list):
            raise ParamError(f"{name}.topics", "topics must be a list")
        if len(topics) > MAX_TOPICS:
            raise ParamError(f"{name}.topics", f"at most {MAX_TOPICS} topic positions")
        fields["topics"] = tuple(_topic_set(t, f"{name}.topics") for t in topics)
    return LogFilter(**fields)


def _topic_set(entry: Any, name: str) -> frozenset[int] | None:
    if entry is None:
        return None
    entries = entry if isinstance(entry, list) else [entry]
    if None in entries:  # null among alternatives: any topic
        return None
    return frozenset(int.from_bytes(hash32(t, name), "big") for t in entries)


def _hex_bytes(digits: str) -> bytes | None:
    """The bytes of an even number of ASCII hex digits, else None (``bytes.fromhex`` alone
    would also skip spaces between bytes)."""
    if not digits.isascii():
        return None
    try:
        raw = bytes.fromhex(digits)
    except ValueError:
        return None
    return raw if 2 * len(raw) == len(digits) else None


def _show(value: Any) -> str:
    """``value`` for an error message, cut short (params can be megabytes)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
