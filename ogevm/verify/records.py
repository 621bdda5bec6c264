"""What a validator checks of one inference record, for the mode it claims.

* VANILLA: the signature recovers to the record's node, and the registry (parent
  state) allows that node for VANILLA.
* TEE (simulated enclave): the attestation is signed by the registry's vendor root, its
  measurement is allow-listed, it is not older than the registry's maximum age (nor
  from the future) at the block's timestamp, it attests the record's node key, the
  signature recovers to that key, and the registry allows it for TEE.
* ZKML: as VANILLA for ZKML, plus the proof verifies against the model's verifying key,
  whose hash the registry binds to the model CID, with public outputs equal to the
  committed output.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

from ogevm.abi.types import InferenceMode
from ogevm.errors import OgevmError
from ogevm.pipe.bundle import InferenceRecord
from ogevm.verify.registry import RegistryView
from ogevm.verify.tee import Attestation, InvalidAttestation
from ogevm.verify.vanilla import recover_signer


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
    signer = recover_signer(record.result, record.signature)
    if signer is None or signer != record.node:
        raise InvalidRecord("bad signature")
    if record.attestation and record.mode is not InferenceMode.TEE:
        raise InvalidRecord(f"a {record.mode.name} record carries an attestation")
    if record.proof and record.mode is not InferenceMode.ZKML:
        raise InvalidRecord(f"a {record.mode.name} record carries a proof")
    if record.mode is InferenceMode.TEE:
        _check_attestation(record, registry, block_timestamp)
    if not registry.is_allowed(signer, int(record.mode)):
        raise InvalidRecord(f"node 0x{signer.hex()} is not registered for {record.mode.name}")
    if record.mode is InferenceMode.ZKML and record.result.error is None and not record.proof:
        raise InvalidRecord("ZKML record without a proof")


@lru_cache(maxsize=256)
def _read_attestation(document: bytes) -> tuple[Attestation, bytes]:
    """The decoded document and the vendor that signed it: one enclave attaches the same
    document to every record it signs, so each is decoded and recovered once."""
    attestation = Attestation.decode(document)
    return attestation, attestation.vendor()


def _check_attestation(record: InferenceRecord, registry: RegistryView, block_timestamp: int) -> None:
    try:
        attestation, vendor = _read_attestation(bytes(record.attestation))
    except InvalidAttestation as exc:
        raise InvalidRecord(str(exc)) from exc
    if vendor != registry.vendor_root():
        raise InvalidRecord("attestation is not signed by the registry's vendor root")
    if not registry.measurement_allowed(attestation.measurement):
        raise InvalidRecord(f"unknown enclave measurement 0x{attestation.measurement.hex()}")
    if attestation.timestamp > block_timestamp:
        raise InvalidRecord("attestation is from the future")
    if block_timestamp - attestation.timestamp > registry.max_attestation_age():
        raise InvalidRecord("attestation expired")
    if attestation.enclave_key != record.node:
        raise InvalidRecord("attestation is for another enclave key")


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
