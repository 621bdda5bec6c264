"""Content identifiers of models: CIDv1, raw codec, sha2-256, base32 text ("bafkrei...")."""

from __future__ import annotations

import base64
import hashlib

from ogevm.errors import ModelIntegrityError

_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])  # CIDv1, raw, sha2-256, 32-byte digest


def compute_cid(data: bytes) -> str:
    """The CIDv1 (raw, sha2-256) of ``data`` in multibase base32 lower case."""
    binary = _PREFIX + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


def verify_cid(cid: str, data: bytes) -> None:
    """Raise :class:`ModelIntegrityError` unless ``data`` hashes to ``cid``."""
    actual = compute_cid(data)
    if actual != cid:
        raise ModelIntegrityError(f"model bytes hash to {actual}, not {cid}")
