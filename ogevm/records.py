"""The immutable records the stages hand each other: requests and their results.

A request is identified by ``(tx hash, call index)``: the index counts the calls of
the inference precompile within one transaction, in execution order, from 0. Its
``digest`` is ``keccak256`` of the calldata, so a result is only ever used for exactly
the request it was computed for.

A scheduled task's call at the top of a block is no transaction: its requests use the
pseudo transaction hash :func:`scheduled_call_hash` of (block number, task id).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np
from eth_utils import keccak

from ogevm.abi.types import ModelInferenceRequest, ModelOutput

ZERO_HASH = b"\x00" * 32
#: Domain tag of :func:`scheduled_call_hash` (no transaction encoding starts with it: 0x6f is no tx type).
SCHEDULED_CALL_TAG = b"ogevm-task"


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
    """One call of the precompile, decoded and checked against the model's inputs."""

    id: RequestId
    digest: bytes
    call: ModelInferenceRequest
    samples: int
    feeds: Mapping[str, np.ndarray] = field(compare=False, repr=False)

    @property
    def model_cid(self) -> str:
        return self.call.model_cid


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
