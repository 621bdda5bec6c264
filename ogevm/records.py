"""The immutable records the stages hand each other: requests, their results, and the
records a block commits to.

A request is identified by ``(tx hash, call index)``: the index counts the calls of
the inference precompile within one transaction, in execution order, from 0. Its
``digest`` is ``keccak256`` of the calldata, so a result is only ever used for exactly
the request it was computed for.

A scheduled task's call at the top of a block is no transaction: its requests use the
pseudo transaction hash :func:`scheduled_call_hash` of (block number, task id).

An :class:`InferenceRecord` is encoded as ``rlp([tx_hash, index, digest, mode, model_cid,
output, error, node, signature, attestation, proof, batch_root, batch_index, batch_path])``
where ``output`` is the ABI-encoded ``ModelOutput`` (empty for an error), ``error`` the
reason (empty for an output), ``attestation`` the TEE attestation document, ``proof`` the
canonical ZKML proof (each empty when the mode has none), and the batch fields the record's
position in the batch its node signed (:class:`BatchPosition`; the path as its 32-byte
siblings concatenated), all three empty for a record signed alone. One record has one
encoding: :meth:`InferenceRecord.decode` accepts only the bytes that
:meth:`InferenceRecord.encode` gives for what they decode to. A block's records form its
bundle (:mod:`ogevm.pipe.bundle`), whose trie root is the header's ``extra_data``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, NamedTuple

import numpy as np
import rlp
from eth_hash.auto import keccak
from rlp.exceptions import RLPException
from rlp.sedes import Binary, List, big_endian_int, binary
from trie import HexaryTrie

from ogevm.abi.codec import decode_output, encode_output
from ogevm.abi.llm import LLMChatRequest, LLMCompletionRequest
from ogevm.abi.types import InferenceMode, ModelInferenceRequest, ModelOutput
from ogevm.errors import OgevmError

ZERO_HASH = b"\x00" * 32
#: Domain tag of :func:`scheduled_call_hash` (no transaction encoding starts with it: 0x6f is no tx type).
SCHEDULED_CALL_TAG = b"ogevm-task"
#: Levels a batch path may have: batches of up to 2^32 results.
MAX_BATCH_DEPTH = 32
#: The bundle root of a block without inference: the empty trie's root.
EMPTY_BUNDLE_ROOT = HexaryTrie({}).root_hash


def scheduled_call_hash(block_number: int, task_id: int) -> bytes:
    """The pseudo transaction hash of task ``task_id``'s call in block ``block_number``:
    ``keccak256("ogevm-task" || uint256(block_number) || uint256(task_id))``."""
    return keccak(SCHEDULED_CALL_TAG + block_number.to_bytes(32, "big") + task_id.to_bytes(32, "big"))


@dataclass(frozen=True, order=True)
class RequestId:
    """Where a request was made: the transaction and the call's index within it."""

    tx_hash: bytes
    index: int

    def __str__(self) -> str:
        return f"0x{self.tx_hash.hex()}:{self.index}"


@dataclass(frozen=True)
class InferenceRequest:
    """One call of the precompile, decoded and checked: ``runModelInference``'s with the
    model's input ``feeds`` bound, or an LLM call (``samples`` 1, no feeds)."""

    id: RequestId
    digest: bytes
    call: ModelInferenceRequest | LLMCompletionRequest | LLMChatRequest
    samples: int
    feeds: Mapping[str, np.ndarray] = field(compare=False, repr=False)

    @property
    def model_cid(self) -> str:
        return self.call.model_cid

    @property
    def mode(self) -> InferenceMode:
        """How the result is verified; an LLM call's VANILLA or TEE is the mode of that name."""
        mode = self.call.mode
        return mode if type(mode) is InferenceMode else InferenceMode[mode.name]

    @property
    def is_llm(self) -> bool:
        return not isinstance(self.call, ModelInferenceRequest)


@dataclass(frozen=True)
class InferenceResult:
    """The outcome of a request: an output, or the reason it failed (a committed revert)."""

    request_id: RequestId
    digest: bytes
    output: ModelOutput | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if (self.output is None) == (self.error is None):
            raise ValueError("an InferenceResult has exactly one of output and error")


class BatchPosition(NamedTuple):
    """Where a result sits in the batch its node signed: the batch's Merkle root, the
    result's index in the batch, and the sibling hashes from its leaf up to the root."""

    root: bytes
    index: int
    path: tuple[bytes, ...]


class MalformedBundle(OgevmError, ValueError):
    """Bytes that are not the one encoding of a record (or of a list of records)."""


@dataclass(frozen=True)
class InferenceRecord:
    """One result as a block commits to it: what, for which request, by whom."""

    result: InferenceResult
    mode: InferenceMode
    model_cid: str
    node: bytes
    signature: bytes
    attestation: bytes = b""
    proof: bytes = b""
    #: Set when ``signature`` signs a batch of results rather than this one alone.
    batch: BatchPosition | None = None

    @property
    def request_id(self) -> RequestId:
        return self.result.request_id

    def encode(self) -> bytes:
        """RLP of the record (see the module docstring)."""
        r = self.result
        output = encode_output(r.output) if r.output is not None else b""
        batch = self.batch or BatchPosition(b"", 0, ())
        return rlp.encode([r.request_id.tx_hash, r.request_id.index, r.digest, int(self.mode),
                           self.model_cid.encode(), output, (r.error or "").encode(), self.node,
                           self.signature, self.attestation, self.proof, batch.root, batch.index,
                           b"".join(batch.path)])

    @classmethod
    def decode(cls, data: bytes) -> "InferenceRecord":
        """Inverse of :meth:`encode`. Raises :class:`MalformedBundle` for any other bytes:
        not a 14-item RLP list of strings, a hash, address or signature of another length,
        an index beyond 256 bits, an unknown mode, text that is not UTF-8, an output that is
        not an ABI-encoded ``ModelOutput``, both or neither of output and error, a batch
        position that is not one (:func:`_batch_position`), or a non-canonical form of any
        of these."""
        try:
            (tx_hash, index, digest, mode, cid, output, error, node, signature, attestation,
             proof, batch_root, batch_index, batch_path) = rlp.decode(bytes(data), sedes=_RECORD_SEDES, strict=True)
            if index >= 2**256:
                raise ValueError("call index beyond 256 bits")
            result = InferenceResult(
                RequestId(tx_hash, index), digest,
                output=decode_output(output) if output else None, error=error.decode() if error else None,
            )
            record = cls(result, InferenceMode(mode), cid.decode(), node, signature, attestation, proof,
                         _batch_position(batch_root, batch_index, batch_path))
        except (RLPException, ValueError, RecursionError) as exc:  # nested lists recurse in rlp
            raise MalformedBundle(f"malformed inference record: {type(exc).__name__}: {exc}"[:300]) from exc
        if record.encode() != bytes(data):
            raise MalformedBundle("non-canonical inference record encoding")
        return record


def _batch_position(root: bytes, index: int, path: bytes) -> BatchPosition | None:
    """The batch fields of a record: all empty (signed alone), or a 32-byte root, a path of
    1 to ``MAX_BATCH_DEPTH`` 32-byte siblings and an index below 2^depth (its higher bits
    would be a second encoding of the same position)."""
    if not root:
        if index or path:
            raise ValueError("a batch index or path without a batch root")
        return None
    depth, rest = divmod(len(path), 32)
    if len(root) != 32 or rest or not 1 <= depth <= MAX_BATCH_DEPTH:
        raise ValueError(f"a batch root of {len(root)} bytes or a path of {len(path)} bytes (32 per level, "
                         f"1 to {MAX_BATCH_DEPTH} levels)")
    if index >> depth:
        raise ValueError(f"a batch index of {index.bit_length()} bits beyond a path of {depth} levels")
    return BatchPosition(root, index, tuple(path[i:i + 32] for i in range(0, len(path), 32)))


_HASH, _ADDRESS, _SIGNATURE = Binary.fixed_length(32), Binary.fixed_length(20), Binary.fixed_length(65)
#: Integers must be minimal (no leading zero byte) and no field may be a list.
_RECORD_SEDES = List([_HASH, big_endian_int, _HASH, big_endian_int, binary, binary, binary, _ADDRESS, _SIGNATURE,
                      binary, binary, binary, big_endian_int, binary], strict=True)
