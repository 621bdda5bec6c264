"""Mocked results in PIPE blocks: signed by the development mock key, accepted in dev mode only.

A mocked record has the format of any other: the request's mode and model, the mocked
output or error, and a signature of the result alone (no batch, attestation or proof) by
:data:`~ogevm.vm.accounts.DEV_MOCK_KEY`. That key is never registered, so a validator that is
not in dev mode refuses the block as it refuses any unknown signer; a validator in dev mode
checks the signature with :func:`check_mock_record` instead of the mode's promise.
"""

from __future__ import annotations

from ogevm.records import InferenceRecord, InferenceRequest, InferenceResult
from ogevm.verify.records import InvalidRecord
from ogevm.verify.vanilla import ResultSigner, recover_signer
from ogevm.vm.accounts import DEV_MOCK_KEY

MOCK_SIGNER = ResultSigner(DEV_MOCK_KEY)
#: The address mocked records name as their node.
MOCK_NODE = MOCK_SIGNER.address


def mock_record(request: InferenceRequest, result: InferenceResult) -> InferenceRecord:
    """The record of a mocked ``result`` for ``request``, signed by the mock key."""
    return InferenceRecord(result, request.mode, request.model_cid, MOCK_NODE, MOCK_SIGNER.sign(result))


def is_mock(record: InferenceRecord) -> bool:
    """Whether ``record`` claims to be a mocked result."""
    return record.node == MOCK_NODE


def check_mock_record(record: InferenceRecord) -> None:
    """Raise :class:`~ogevm.verify.records.InvalidRecord` unless ``record`` is a well-formed
    mocked record: signed alone by the mock key, with nothing attached."""
    if record.batch is not None or record.attestation or record.proof:
        raise InvalidRecord("a mocked record carries no batch position, attestation or proof")
    if recover_signer(record.result, record.signature) != MOCK_NODE:
        raise InvalidRecord("bad signature")
