"""What a validator checks of one inference record, for the mode it claims.

Every field a bundle commits to has exactly one valid byte form, so the bundle root is a
function of the block's contents: signatures are low-s, an attestation is the canonical
ABI encoding of its document, a proof is in its canonical encoding
(:func:`ogevm.verify.zkml.decode_proof`), and a record carries an attestation only for
TEE, a proof only for a ZKML output, and a batch position only for VANILLA (TEE and ZKML
results are signed one by one, over their attestation or proof).

* VANILLA: the signature recovers to the record's node, and the registry (parent
  state) allows that node for VANILLA. A batch-signed record's path leads from its
  result to its batch root, and the signature of that root recovers to the node (once
  per distinct root and signature).
* TEE (simulated enclave): the attestation is signed by the registry's vendor root, its
  measurement is allow-listed, it is not older than the registry's maximum age (nor
  from the future) at the block's timestamp, it attests the record's node key, the
  signature recovers to that key, and the registry allows it for TEE.
* ZKML: as VANILLA for ZKML, the signature covering the proof too, plus the proof
  verifies against the model's verifying key, whose hash the registry binds to the model
  CID, with public outputs equal to the committed output.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from ogevm.abi.types import InferenceMode
from ogevm.errors import OgevmError
from ogevm.records import InferenceRecord
from ogevm.verify.registry import RegistryView
from ogevm.verify.tee import Attestation, InvalidAttestation
from ogevm.verify.vanilla import is_low_s, leaf_hash, path_root, recover_batch_signer, recover_signer
from ogevm.verify.zkml import decode_proof


class InvalidRecord(OgevmError):
    """A record that fails its mode's checks; ``reason`` says which."""


class ProofChecker(Protocol):
    """Verifies ZKML proofs (``ogevm.verify.zkml.CircuitProofChecker``)."""

    def vk_hash(self, model_cid: str) -> bytes:
        """Hash of the verifying key this checker uses for ``model_cid`` (b"" if none)."""

    def check(self, record: InferenceRecord, feeds) -> None:
        """Raise an OgevmError unless the proof shows the record's output for ``feeds``."""


def verify_record(record: InferenceRecord, registry: RegistryView, block_timestamp: int) -> None:
    """Raise :class:`InvalidRecord` unless ``record`` carries what its mode promises.

    Everything but the ZKML proof itself, which needs the request's inputs: the validator
    checks it with :func:`verify_proof` once replay has made the request.
    """
    check_record(record)
    check_registration(record, registry, block_timestamp)


def check_record(record: InferenceRecord) -> None:
    """The checks of :func:`verify_record` that need no state (so cost no EVM call): the
    signature, which fields the mode allows, and the form of the attestation and proof."""
    if record.batch is not None:
        _check_batch(record)
    else:
        attachment = {InferenceMode.ZKML: record.proof, InferenceMode.TEE: record.attestation}.get(record.mode, b"")
        if recover_signer(record.result, record.signature, attachment) != record.node:
            raise InvalidRecord("bad signature")
    if record.attestation and record.mode is not InferenceMode.TEE:
        raise InvalidRecord(f"a {record.mode.name} record carries an attestation")
    if record.proof and record.mode is not InferenceMode.ZKML:
        raise InvalidRecord(f"a {record.mode.name} record carries a proof")
    if record.result.output is not None and record.result.output.is_simulation_result:
        raise InvalidRecord("the output is flagged as a simulation result")
    if record.proof and record.result.error is not None:
        raise InvalidRecord("an error result carries a proof")
    if record.mode is InferenceMode.TEE:
        attestation, _ = _attestation_of(record)
        if attestation.enclave_key != record.node:
            raise InvalidRecord("attestation is for another enclave key")
    if record.mode is InferenceMode.ZKML and record.result.error is None:
        if not record.proof:
            raise InvalidRecord("ZKML record without a proof")
        try:
            decode_proof(record.proof)
        except OgevmError as exc:
            raise InvalidRecord(f"invalid proof: {exc.reason}") from exc


def _check_batch(record: InferenceRecord) -> None:
    """A batch-signed record: VANILLA, on a path to its root, whose signature is the node's."""
    batch = record.batch
    if record.mode is not InferenceMode.VANILLA:
        raise InvalidRecord(f"a {record.mode.name} record carries a batch position")
    if path_root(leaf_hash(record.result), batch.index, batch.path) != batch.root:
        raise InvalidRecord("batch path does not lead from the result to the batch root")
    if recover_batch_signer(bytes(batch.root), bytes(record.signature)) != record.node:  # cache keys: bytes
        raise InvalidRecord("bad signature")


def check_registration(record: InferenceRecord, registry: RegistryView, block_timestamp: int) -> None:
    """The checks of :func:`verify_record` against the registry, for a record that passed
    :func:`check_record`: its node (or enclave and attestation) is allowed for its mode."""
    if record.mode is InferenceMode.TEE:
        attestation, vendor = _attestation_of(record)
        if vendor != registry.vendor_root():
            raise InvalidRecord("attestation is not signed by the registry's vendor root")
        if not registry.measurement_allowed(attestation.measurement):
            raise InvalidRecord(f"unknown enclave measurement 0x{attestation.measurement.hex()}")
        if attestation.timestamp > block_timestamp:
            raise InvalidRecord("attestation is from the future")
        if block_timestamp - attestation.timestamp > registry.max_attestation_age():
            raise InvalidRecord("attestation expired")
    if not registry.is_allowed(record.node, int(record.mode)):
        raise InvalidRecord(f"node 0x{record.node.hex()} is not registered for {record.mode.name}")


@lru_cache(maxsize=256)
def _read_attestation(document: bytes) -> tuple[Attestation, bytes]:
    """The decoded document and the vendor that signed it: one enclave attaches the same
    document to every record it signs, so each is decoded and recovered once. Only the
    canonical encoding of a document with a low-s signature is accepted: one document, one
    byte form."""
    attestation = Attestation.decode(document)
    if attestation.encode() != document:
        raise InvalidAttestation("attestation document is not in its canonical ABI encoding")
    if not is_low_s(attestation.signature):
        raise InvalidAttestation("attestation signature is not in its low-s form")
    return attestation, attestation.vendor()


def _attestation_of(record: InferenceRecord) -> tuple[Attestation, bytes]:
    try:
        return _read_attestation(bytes(record.attestation))
    except InvalidAttestation as exc:
        raise InvalidRecord(str(exc)) from exc


def verify_proof(record: InferenceRecord, feeds, registry: RegistryView, proofs: ProofChecker | None) -> None:
    """Raise :class:`InvalidRecord` unless a ZKML record's proof shows its output for ``feeds``
    under the verifying key the registry binds to the model."""
    if record.mode is not InferenceMode.ZKML or record.result.error is not None:
        return
    if proofs is None:
        raise InvalidRecord("ZKML record but this validator has no proof verifier")
    registered = registry.circuit_vk_hash(record.model_cid)
    if registered == b"\x00" * 32:
        raise InvalidRecord(f"model {record.model_cid} has no registered circuit")
    if proofs.vk_hash(record.model_cid) != registered:
        raise InvalidRecord("verifying key does not match the one registered for the model")
    try:
        proofs.check(record, feeds)
    except OgevmError as exc:
        raise InvalidRecord(f"invalid proof: {exc}") from exc
