"""Record checks per mode against the on-chain registry: VANILLA and (simulated) TEE."""

from __future__ import annotations

import time

import pytest
from eth_keys import keys

from ogevm.abi.types import InferenceMode, ModelOutput, Number, NumberTensor
from ogevm.constants import INFERENCE_REGISTRY_ADDRESS, ATTESTATION_PRECOMPILE_ADDRESS
from ogevm.pipe.bundle import InferenceRecord
from ogevm.records import InferenceResult, RequestId
from ogevm.verify.records import InvalidRecord, verify_record
from ogevm.verify.registry import RegistryView, registry_interface
from ogevm.verify.tee import DEV_VENDOR_ROOT_KEY, SIMULATED_ENCLAVE_MEASUREMENT, SimulatedEnclave, attest
from ogevm.verify.vanilla import sign_result
from ogevm.vm.accounts import DEV_INFERENCE_NODE_KEY, DEV_OPERATOR

RESULT = InferenceResult(RequestId(b"\x01" * 32, 0), b"\x02" * 32,
                         output=ModelOutput((NumberTensor("y", (Number(71, 1),), (1, 1)),), (), (), False))


def vanilla(key=DEV_INFERENCE_NODE_KEY, mode=InferenceMode.VANILLA, result=RESULT):
    return InferenceRecord(result, mode, "bafkrei", key.public_key.to_canonical_address(), sign_result(key, result))


def tee(enclave, result=RESULT, attestation=None):
    return InferenceRecord(result, InferenceMode.TEE, "bafkrei", enclave.address, enclave.sign(result),
                           attestation=(attestation or enclave.attestation).encode())


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
