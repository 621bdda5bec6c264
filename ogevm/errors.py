"""The one error tree of ogevm.

Every error a caller can see derives from :class:`OgevmError`; each stage has its own
base. Errors that become an on-chain revert carry the ``reason`` string that the
precompile encodes as ``Error(string)``.
"""

from __future__ import annotations


class OgevmError(Exception):
    """Base of every error raised by ogevm; ``reason`` is its message, fit for a user."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


# --- inference requests: each becomes a revert of the precompile -----------------
class InferenceError(OgevmError):
    """A request the precompile cannot serve; ``reason`` is the revert reason."""


class MalformedRequest(InferenceError):
    """Calldata is not a well-formed call of a known precompile function."""


class UnknownModel(InferenceError):
    """The model CID is not in the catalogue of models this chain knows."""

    def __init__(self, cid: str) -> None:
        super().__init__(f"unknown model {cid!r}")
        self.cid = cid


class InvalidInput(InferenceError):
    """The input tensors do not fit the model (names, dtypes, shapes, ranges)."""


class ModelExecutionError(InferenceError):
    """onnxruntime failed while running the model."""


class InvalidOutput(InferenceError):
    """The model produced an output that cannot be encoded (NaN, infinity, range)."""


class ResultUnavailable(InferenceError):
    """REPLAY found no precomputed result for a request, or one for another request."""


# --- the model store ---------------------------------------------------------------
class ModelStoreError(OgevmError):
    """Base of the model store's errors."""


class InvalidModel(ModelStoreError):
    """The bytes are not a valid ONNX model onnxruntime can load."""


class ModelTooLarge(ModelStoreError):
    """The model is larger than the store accepts."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"model is {size} bytes; the limit is {limit} bytes")
        self.size = size
        self.limit = limit


class ModelIntegrityError(ModelStoreError):
    """Stored bytes no longer hash to their CID."""


class ModelNotFound(ModelStoreError):
    """No model with this CID is stored."""

    def __init__(self, cid: str) -> None:
        super().__init__(f"no stored model with CID {cid!r}")
        self.cid = cid


# --- chains and transactions ---------------------------------------------------------
class ChainError(OgevmError):
    """Base of the in-process chain's errors."""


class InvalidTransaction(ChainError):
    """A transaction the chain refuses (nonce, balance, gas, signature, ...)."""


class TransactionFailed(ChainError):
    """A transaction or call reverted; ``reason`` is the decoded revert reason."""

    def __init__(self, reason: str | None, data: bytes) -> None:
        super().__init__(f"execution reverted: {reason}" if reason else "execution reverted")
        self.reason = reason
        self.data = data


class TransactionRejected(InvalidTransaction):
    """The pool refuses a transaction at admission; ``reason`` says why."""


class InvalidBlock(OgevmError):
    """A block (with its inference bundle) that a validator must reject; ``reason`` says why."""


# --- verification -----------------------------------------------------------------------
class ZkmlUnsupported(OgevmError):
    """ezkl cannot build a circuit for this model, or cannot prove this request with it."""


class ProofInvalid(OgevmError):
    """A proof that must be rejected: malformed, not accepted by ezkl, or about other values."""


# --- the inference executor ------------------------------------------------------------
class ExecutorUnavailable(OgevmError):
    """The executor could not run a job (no live worker, its retries used up, a timeout).

    Nothing is committed for its requests (``request_ids``, when known): their
    transactions go back to the rounds.
    """

    def __init__(self, reason: str, request_ids: tuple = ()) -> None:
        super().__init__(reason)
        self.request_ids = request_ids
