"""Record checks per mode against the on-chain registry: VANILLA and (simulated) TEE, and the
one valid byte form of the fields no signature covers."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from eth_keys import keys
from eth_keys.constants import SECPK1_N

from ogevm.abi.types import InferenceMode, ModelOutput, Number, NumberTensor
from ogevm.constants import INFERENCE_REGISTRY_ADDRESS, ATTESTATION_PRECOMPILE_ADDRESS
from ogevm.records import InferenceRecord, InferenceResult, RequestId
from ogevm.verify.records import InvalidRecord, verify_record
from ogevm.verify.registry import RegistryView
from ogevm.verify.tee import (
    DEV_VENDOR_ROOT_KEY,
    SIMULATED_ENCLAVE_MEASUREMENT,
    Attestation,
    SimulatedEnclave,
    attest,
)
from ogevm.verify.vanilla import DOMAIN, is_low_s, output_hash, recover_signer, sign_result, signing_hash
from ogevm.vm.accounts import DEV_INFERENCE_NODE_KEY, DEV_OPERATOR
from ogevm.vm.genesis import registry_interface

RESULT = InferenceResult(RequestId(b"\x01" * 32, 0), b"\x02" * 32,
                         output=ModelOutput((NumberTensor("y", (Number(71, 1),), (1, 1)),), (), (), False))


def vanilla(key=DEV_INFERENCE_NODE_KEY, mode=InferenceMode.VANILLA, result=RESULT):
    return InferenceRecord(result, mode, "bafkrei", key.public_key.to_canonical_address(), sign_result(key, result))


def tee(enclave, result=RESULT, attestation=None, document: bytes | None = None):
    """A TEE record by ``enclave``; with ``attestation`` (or raw ``document`` bytes) another
    document, signed by the enclave's key as a compromised enclave would."""
    if attestation is None and document is None:
        return InferenceRecord(result, InferenceMode.TEE, "bafkrei", enclave.address, enclave.sign(result),
                               attestation=enclave.attestation.encode())
    document = attestation.encode() if document is None else document
    return InferenceRecord(result, InferenceMode.TEE, "bafkrei", enclave.address,
                           enclave._signer.sign(result, document), attestation=document)


def registry(chain):
    return RegistryView(chain.state())


def send_registry(chain, name, *args, sender=DEV_OPERATOR):
    result = chain.send(sender, INFERENCE_REGISTRY_ADDRESS, registry_interface().function(name).encode(*args))
    return result


def now(chain):
    """Blocks carry the wall clock (the genesis is older): attest and check against it."""
    return max(int(time.time()), chain.head.timestamp)


def test_genesis_registry_holds_the_dev_configuration(chain):
    view = registry(chain)
    assert view.vendor_root() == DEV_VENDOR_ROOT_KEY.public_key.to_canonical_address()
    assert view.measurement_allowed(SIMULATED_ENCLAVE_MEASUREMENT)
    assert view.is_allowed(DEV_INFERENCE_NODE_KEY.public_key.to_canonical_address(), 0)
    assert view.is_allowed(DEV_INFERENCE_NODE_KEY.public_key.to_canonical_address(), 1)
    assert not view.is_allowed(DEV_INFERENCE_NODE_KEY.public_key.to_canonical_address(), 2)


def test_vanilla_record_of_the_registered_node_passes(chain):
    verify_record(vanilla(), registry(chain), now(chain))


def test_unregistered_node_is_refused(chain):
    with pytest.raises(InvalidRecord, match="is not registered for VANILLA"):
        verify_record(vanilla(keys.PrivateKey(b"\x05" * 32)), registry(chain), now(chain))


def test_node_signing_for_a_mode_it_did_not_register(chain):
    key = keys.PrivateKey(b"\x06" * 32)
    assert send_registry(chain, "registerNode", key.public_key.to_canonical_address(), 2).success  # ZKML only
    with pytest.raises(InvalidRecord, match="not registered for VANILLA"):
        verify_record(vanilla(key), registry(chain), now(chain))


def test_deregistered_node_is_refused_from_the_next_block(chain):
    node = DEV_INFERENCE_NODE_KEY.public_key.to_canonical_address()
    key = keys.PrivateKey(b"\x08" * 32)
    assert send_registry(chain, "registerNode", key.public_key.to_canonical_address(), 1).success
    parent_state = registry(chain)
    # the node deregisters itself: it needs gas money, so fund it first
    chain.send(0, key.public_key.to_canonical_address(), value=10**18)
    from ogevm.vm.accounts import DevAccount

    deregister = chain.send(DevAccount(key), INFERENCE_REGISTRY_ADDRESS,
                            registry_interface().function("deregister").encode())
    assert deregister.success
    verify_record(vanilla(key), parent_state, now(chain))  # a block built on the old state
    with pytest.raises(InvalidRecord, match="not registered"):
        verify_record(vanilla(key), registry(chain), now(chain))
    assert registry(chain).is_allowed(node, 0)


def test_changed_output_under_a_valid_signature_is_a_bad_signature(chain):
    record = vanilla()
    forged = InferenceRecord(record.result.__class__(record.result.request_id, record.result.digest,
                                                     output=record.result.output._replace(is_simulation_result=True)),
                             record.mode, record.model_cid, record.node, record.signature)
    with pytest.raises(InvalidRecord, match="bad signature"):
        verify_record(forged, registry(chain), now(chain))


@pytest.fixture
def enclave(chain):
    enclave = SimulatedEnclave(timestamp=now(chain))
    result = send_registry(chain, "registerTEE", enclave.attestation.encode())
    assert result.success, result.revert_reason
    return enclave


def test_tee_record_of_a_registered_simulated_enclave_passes(chain, enclave):
    verify_record(tee(enclave), registry(chain), now(chain))


def test_tee_attestation_signed_by_another_root(chain, enclave):
    other = attest(keys.PrivateKey(b"\x09" * 32), enclave.address, SIMULATED_ENCLAVE_MEASUREMENT, now(chain))
    with pytest.raises(InvalidRecord, match="not signed by the registry's vendor root"):
        verify_record(tee(enclave, attestation=other), registry(chain), now(chain))
    assert "not signed by the vendor root" in send_registry(chain, "registerTEE", other.encode()).revert_reason


def test_tee_unknown_measurement(chain, enclave):
    odd = attest(DEV_VENDOR_ROOT_KEY, enclave.address, b"\x33" * 32, now(chain))
    with pytest.raises(InvalidRecord, match="unknown enclave measurement"):
        verify_record(tee(enclave, attestation=odd), registry(chain), now(chain))
    assert "unknown enclave measurement" in send_registry(chain, "registerTEE", odd.encode()).revert_reason


def test_tee_expired_attestation(chain, enclave):
    age = registry(chain).max_attestation_age()
    with pytest.raises(InvalidRecord, match="attestation expired"):
        verify_record(tee(enclave), registry(chain), now(chain) + age + 1)
    old = attest(DEV_VENDOR_ROOT_KEY, enclave.address, SIMULATED_ENCLAVE_MEASUREMENT, now(chain) - age - 10)
    assert "attestation expired" in send_registry(chain, "registerTEE", old.encode()).revert_reason


def test_tee_attestation_for_another_key(chain, enclave):
    other = SimulatedEnclave(timestamp=now(chain))
    with pytest.raises(InvalidRecord, match="another enclave key"):
        verify_record(tee(enclave, attestation=other.attestation), registry(chain), now(chain))


def test_the_enclave_signature_covers_its_attestation(chain, enclave):
    """Another valid document of the same enclave key (an older one, not expired) cannot
    replace the one the enclave signed with: the bundle would have two valid encodings."""
    record = tee(enclave)
    older = attest(DEV_VENDOR_ROOT_KEY, enclave.address, SIMULATED_ENCLAVE_MEASUREMENT, now(chain) - 60)
    verify_record(tee(enclave, attestation=older), registry(chain), now(chain))  # valid when signed so
    with pytest.raises(InvalidRecord, match="^bad signature$"):
        verify_record(replace(record, attestation=older.encode()), registry(chain), now(chain))


def test_tee_enclave_not_registered(chain):
    stranger = SimulatedEnclave(timestamp=now(chain))
    with pytest.raises(InvalidRecord, match="not registered for TEE"):
        verify_record(tee(stranger), registry(chain), now(chain))


def test_attestation_precompile_reports_what_the_document_binds(chain, enclave):
    from eth_abi import decode, encode
    from ogevm.precompile.attestation import VERIFY_ATTESTATION_SELECTOR

    out = chain.call(ATTESTATION_PRECOMPILE_ADDRESS,
                     VERIFY_ATTESTATION_SELECTOR + encode(["bytes"], [enclave.attestation.encode()]))
    vendor, key, measurement, timestamp = decode(["address", "address", "bytes32", "uint64"], out)
    assert bytes.fromhex(vendor[2:]) == DEV_VENDOR_ROOT_KEY.public_key.to_canonical_address()
    assert bytes.fromhex(key[2:]) == enclave.address
    assert measurement == SIMULATED_ENCLAVE_MEASUREMENT and timestamp == enclave.attestation.timestamp
    from ogevm.errors import TransactionFailed

    with pytest.raises(TransactionFailed, match="malformed"):
        chain.call(ATTESTATION_PRECOMPILE_ADDRESS, VERIFY_ATTESTATION_SELECTOR + b"\x00" * 7)


# --- one valid byte form per field --------------------------------------------------------
def high_s(signature: bytes) -> bytes:
    """The other valid ECDSA signature of the same message: ``(r, n - s)``, recovery id flipped."""
    s = int.from_bytes(signature[32:64], "big")
    return signature[:32] + (SECPK1_N - s).to_bytes(32, "big") + bytes([signature[64] ^ 1])


def test_a_high_s_signature_is_a_bad_signature(chain):
    """``(r, n - s)`` recovers the same key: accepting it would give every record two
    encodings (and every block two bundle roots) without the node's key."""
    record = vanilla()
    assert is_low_s(record.signature)
    other = replace(record, signature=high_s(record.signature))
    assert recover_signer(other.result, other.signature) is None
    with pytest.raises(InvalidRecord, match="^bad signature$"):
        verify_record(other, registry(chain), now(chain))


def test_the_signature_of_a_record_with_a_proof_covers_the_proof(chain):
    record = vanilla(mode=InferenceMode.ZKML)
    with_proof = replace(record, proof=b"\x01")  # under the signature made without it
    with pytest.raises(InvalidRecord, match="^bad signature$"):
        verify_record(with_proof, registry(chain), now(chain))
    assert recover_signer(RESULT, sign_result(DEV_INFERENCE_NODE_KEY, RESULT, b"\x01"), b"\x01") == record.node
    assert recover_signer(RESULT, sign_result(DEV_INFERENCE_NODE_KEY, RESULT, b"\x01"), b"\x02") != record.node


def test_only_a_record_with_a_proof_has_a_proof_hash_in_its_message():
    """VANILLA and TEE records (no proof) are signed exactly as before the proof hash."""
    from eth_utils import keccak

    fields = DOMAIN + RESULT.request_id.tx_hash + (0).to_bytes(32, "big") + RESULT.digest + output_hash(RESULT)
    assert signing_hash(RESULT.request_id, RESULT.digest, output_hash(RESULT)) == keccak(fields)
    assert signing_hash(RESULT.request_id, RESULT.digest, output_hash(RESULT), b"\x01") == keccak(
        fields + keccak(b"\x01"))


def test_a_zkml_output_whose_proof_is_not_canonical_is_refused_before_replay(chain):
    proof = b'{"instances": [], "proof": [1]}'
    record = replace(vanilla(mode=InferenceMode.ZKML), proof=proof,
                     signature=sign_result(DEV_INFERENCE_NODE_KEY, RESULT, proof))
    with pytest.raises(InvalidRecord, match="^invalid proof: the proof is not in its canonical encoding"):
        verify_record(record, registry(chain), now(chain))


def test_an_error_result_carrying_a_proof_is_refused(chain):
    failed = InferenceResult(RESULT.request_id, RESULT.digest, error="no circuit")
    record = vanilla(mode=InferenceMode.ZKML, result=failed)
    verify_record(record, registry(chain), now(chain))  # a ZKML error result: no proof needed
    with_proof = replace(record, proof=b"\x01", signature=sign_result(DEV_INFERENCE_NODE_KEY, failed, b"\x01"))
    with pytest.raises(InvalidRecord, match="^an error result carries a proof$"):
        verify_record(with_proof, registry(chain), now(chain))


def test_a_tee_attestation_with_trailing_bytes_is_refused(chain, enclave):
    """The ABI decoder ignores bytes after the document: a second encoding of it."""
    padded = tee(enclave, document=enclave.attestation.encode() + b"\x00" * 32)
    assert Attestation.decode(padded.attestation) == enclave.attestation
    with pytest.raises(InvalidRecord, match="^attestation document is not in its canonical ABI encoding$"):
        verify_record(padded, registry(chain), now(chain))


def test_a_tee_attestation_with_a_high_s_vendor_signature_is_refused(chain, enclave):
    document = enclave.attestation._replace(signature=high_s(enclave.attestation.signature))
    assert document.vendor() == enclave.attestation.vendor()
    with pytest.raises(InvalidRecord, match="^attestation signature is not in its low-s form$"):
        verify_record(tee(enclave, attestation=document), registry(chain), now(chain))
