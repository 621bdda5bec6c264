"""Batch-signed VANILLA records: one signature over the Merkle root of a batch's results,
each record carrying its root, index and path; every change of these is rejected."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from eth_keys import keys
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from ogevm.abi.types import InferenceMode, ModelOutput, Number, NumberTensor
from ogevm.records import InferenceRecord, InferenceResult, RequestId
from ogevm.verify.records import InvalidRecord, check_record, verify_record
from ogevm.verify.registry import RegistryView
from ogevm.verify.tee import SimulatedEnclave
from ogevm.verify.vanilla import (
    BATCH_DOMAIN,
    ResultSigner,
    batch_message,
    batch_positions,
    leaf_hash,
    path_root,
    recover_batch_signer,
    sign_result,
)
from ogevm.vm.accounts import DEV_INFERENCE_NODE_KEY

NODE = DEV_INFERENCE_NODE_KEY.public_key.to_canonical_address()
ROGUE_KEY = keys.PrivateKey(b"\x22" * 32)


def result(i: int, error: str | None = None) -> InferenceResult:
    output = None if error else ModelOutput((NumberTensor("y", (Number(i, 1),), (1, 1)),), (), (), False)
    return InferenceResult(RequestId(i.to_bytes(32, "big"), i % 3), keccak(bytes([i])), output=output, error=error)


def batch(results, key=DEV_INFERENCE_NODE_KEY) -> list[InferenceRecord]:
    """VANILLA records of ``results`` signed as one batch by ``key``."""
    signature, positions = ResultSigner(key).sign_batch(results)
    return [InferenceRecord(r, InferenceMode.VANILLA, "bafkrei", key.public_key.to_canonical_address(), signature,
                            batch=position) for r, position in zip(results, positions)]


RESULTS = [result(1), result(2), result(3, error="output 'y' contains NaN")]
RECORDS = batch(RESULTS)


def rejected(record: InferenceRecord) -> str:
    with pytest.raises(InvalidRecord) as raised:
        check_record(record)
    return raised.value.reason


# --- the tree --------------------------------------------------------------------------------
def test_the_tree_rule_and_the_signed_message():
    """Three leaves: the odd level gets a zero node, every path has two levels, the index's
    bits say from the bottom whether the node is the right child."""
    a, b, c = (leaf_hash(r) for r in RESULTS)
    root = keccak(keccak(a + b) + keccak(c + b"\x00" * 32))
    assert [tuple(p) for p in batch_positions([a, b, c])] == [
        (root, 0, (b, keccak(c + b"\x00" * 32))),
        (root, 1, (a, keccak(c + b"\x00" * 32))),
        (root, 2, (b"\x00" * 32, keccak(a + b))),
    ]
    assert BATCH_DOMAIN == b"ogevm/inference-batch/v1"
    assert batch_message(root) == keccak(b"ogevm/inference-batch/v1" + root)
    assert recover_batch_signer(root, RECORDS[0].signature) == NODE
    assert all(record.signature == RECORDS[0].signature for record in RECORDS)


@settings(max_examples=60, deadline=None)
@given(count=st.integers(2, 80), data=st.data())
def test_every_leaf_has_a_path_to_the_root_of_depth_log2(count, data):
    leaves = [keccak(i.to_bytes(4, "big")) for i in range(count)]
    positions = batch_positions(leaves)
    assert len({p.root for p in positions}) == 1
    for i, (leaf, position) in enumerate(zip(leaves, positions)):
        assert position.index == i and len(position.path) == (count - 1).bit_length()
        assert path_root(leaf, i, position.path) == position.root
    other = data.draw(st.integers(0, count - 1))
    assert path_root(leaves[other], other ^ 1, positions[other].path) != positions[other].root
    changed = [*leaves[:other], keccak(b"changed"), *leaves[other + 1:]]
    assert batch_positions(changed)[0].root != positions[0].root


# --- records -----------------------------------------------------------------------------
def test_a_batch_signed_record_verifies_against_the_registry(chain):
    registry, now = RegistryView(chain.state()), max(int(time.time()), chain.head.timestamp)
    for record in RECORDS:
        verify_record(record, registry, now)
    rogue = batch(RESULTS, ROGUE_KEY)
    check_record(rogue[0])  # a valid signature...
    with pytest.raises(InvalidRecord, match="is not registered for VANILLA"):
        verify_record(rogue[0], registry, now)  # ...of a node the registry does not know


@pytest.mark.parametrize("level, byte", [(0, 0), (0, 31), (1, 17)])
def test_a_changed_path_element_is_rejected(level, byte):
    record = RECORDS[0]
    path = list(record.batch.path)
    path[level] = path[level][:byte] + bytes([path[level][byte] ^ 1]) + path[level][byte + 1:]
    changed = replace(record, batch=record.batch._replace(path=tuple(path)))
    assert rejected(changed) == "batch path does not lead from the result to the batch root"


@pytest.mark.parametrize("index", [1, 2, 3])
def test_a_wrong_index_is_rejected(index):
    record = RECORDS[0]
    assert rejected(replace(record, batch=record.batch._replace(index=index))) == \
        "batch path does not lead from the result to the batch root"


def test_a_wrong_root_is_rejected():
    record = RECORDS[1]
    assert rejected(replace(record, batch=record.batch._replace(root=b"\x01" * 32))) == \
        "batch path does not lead from the result to the batch root"


def test_a_path_of_the_wrong_length_is_rejected():
    record = RECORDS[2]
    for path in (record.batch.path[:1], record.batch.path + (b"\x00" * 32,), record.batch.path[1:]):
        assert rejected(replace(record, batch=record.batch._replace(path=path))) == \
            "batch path does not lead from the result to the batch root"


def test_the_signature_of_another_batch_is_a_bad_signature():
    """Another batch of the same node (one result more): a valid signature, of another root."""
    other = batch([*RESULTS, result(4)])
    assert rejected(replace(RECORDS[0], signature=other[0].signature)) == "bad signature"
    assert rejected(replace(RECORDS[0], batch=other[0].batch)) == "bad signature"  # the path is of that tree


def test_records_swapped_within_a_batch_are_rejected():
    """Each record keeps its result but takes the other's position (or the other's result
    under its own position): the paths no longer lead to the root."""
    first, second = RECORDS[0], RECORDS[1]
    assert rejected(replace(first, batch=second.batch)) == "batch path does not lead from the result to the batch root"
    assert rejected(replace(second, result=first.result)) == \
        "batch path does not lead from the result to the batch root"


def test_a_result_changed_under_its_batch_position_is_rejected():
    record = RECORDS[0]
    changed = replace(record.result, output=RECORDS[1].result.output)
    assert rejected(replace(record, result=changed)) == "batch path does not lead from the result to the batch root"


def test_a_record_claiming_another_node_is_a_bad_signature():
    record = replace(RECORDS[0], node=ROGUE_KEY.public_key.to_canonical_address())
    assert rejected(record) == "bad signature"


def test_a_high_s_batch_signature_is_a_bad_signature():
    from eth_keys.constants import SECPK1_N

    signature = RECORDS[0].signature
    s = int.from_bytes(signature[32:64], "big")
    other = signature[:32] + (SECPK1_N - s).to_bytes(32, "big") + bytes([signature[64] ^ 1])
    assert rejected(replace(RECORDS[0], signature=other)) == "bad signature"


def test_a_record_cannot_move_between_its_batch_form_and_its_form_alone():
    """The batch message and the message of a result alone are domain-separated: a record
    has one valid form, chosen by its node."""
    record = RECORDS[0]
    alone = replace(record, signature=sign_result(DEV_INFERENCE_NODE_KEY, record.result), batch=None)
    check_record(alone)
    assert rejected(replace(record, batch=None)) == "bad signature"
    assert rejected(replace(alone, batch=record.batch)) == "bad signature"


@pytest.mark.parametrize("mode", [InferenceMode.TEE, InferenceMode.ZKML])
def test_tee_and_zkml_records_carry_no_batch_position(mode):
    """TEE and ZKML results are signed one by one, over their attestation or proof: an
    enclave's batch signature with its attestation, or a ZKML error result (no proof needed)
    under a batch, would pass every other check."""
    enclave = SimulatedEnclave()
    record = RECORDS[2]
    if mode is InferenceMode.TEE:
        record = replace(record, mode=mode, node=enclave.address, attestation=enclave.attestation.encode(),
                         signature=enclave._signer.sign_batch(RESULTS)[0])
    else:
        record = replace(record, mode=mode)
    assert rejected(record) == f"a {mode.name} record carries a batch position"


def test_a_blocks_batch_signature_is_recovered_once():
    """Every record of a batch carries the same root and signature: the validator recovers
    the signer once per distinct pair."""
    records = batch([result(i) for i in range(10, 42)])
    before = recover_batch_signer.cache_info()
    for record in records:
        check_record(record)
    after = recover_batch_signer.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, len(records) - 1)


def test_og_get_inference_records_shows_the_batch_position():
    """A client verifying a record from the node's answer needs its root, index and path."""
    from ogevm.node.rpc import record_json

    batched, alone = record_json(RECORDS[2]), record_json(replace(RECORDS[2], batch=None))
    position = RECORDS[2].batch
    assert batched["batch"] == {"root": "0x" + position.root.hex(), "index": 2,
                                "path": ["0x" + sibling.hex() for sibling in position.path]}
    assert alone["batch"] is None
