"""The model-free validator: a PIPE block is accepted, every tampered bundle is rejected."""

from __future__ import annotations

from dataclasses import replace

import pytest
import rlp

from ogevm.abi import InferenceMode
from ogevm.errors import InvalidBlock
from ogevm.pipe.bundle import bundle_root, encode_bundle, encodings_root
from ogevm.pipe.executor import local_executor
from ogevm.pipe.pipeline import Pipeline
from ogevm.records import InferenceRecord, RequestId
from ogevm.verify.vanilla import ResultSigner
from ogevm.vm.chain import DevChain

from pipe_helpers import (
    FEATURES,
    GAS,
    GWEI,
    NODE,
    NODE_KEY,
    ROGUE_KEY,
    Replica,
    call_for,
    deploy_all,
    receipt_ok,
    receipts_of,
    resign,
    tensor,
)


@pytest.fixture(scope="module")
def source(fixture_store, cids):
    """A chain whose last block was built by PIPE, with four records:
    ``[forecast:0, dependent:0, dependent:1, failing:0 (an error result)]``."""
    chain = DevChain(fixture_store)
    forecast, dependent, caller = deploy_all(chain, [
        ("PriceForecast", (cids["linear_regression"], "x", "y")),
        ("DependentInference", ()),
        ("InferenceCaller", ()),
    ])
    pipeline = Pipeline(chain, NODE_KEY)

    def sign(contract, name, *args, sender, tip):
        return chain.sign(sender, contract.address, contract.interface.function(name).encode(*args), gas=GAS,
                          max_priority_fee_per_gas=tip * GWEI, max_fee_per_gas=(10 + tip) * GWEI)

    txs = [
        sign(forecast, "forecast", FEATURES, sender=1, tip=3),
        sign(dependent, "chain", cids["linear_regression"], cids["log_model"], "x", "y", FEATURES, sender=2, tip=2),
        sign(caller, "infer", call_for(cids["log_model"], tensor([-1], (1, 1))), sender=3, tip=1),
    ]
    # the dependent tx first: its replay finds its second request (nothing is sealed), so all
    # three are ready together afterwards
    pipeline.submit(txs[1])
    pipeline.prepare()
    assert pipeline.build_block(seal_empty=False).block is None
    for tx in (txs[0], txs[2]):
        pipeline.submit(tx)
    (built,) = pipeline.run_until_idle()
    assert [t.hash for t in built.block.transactions] == [t.hash for t in txs]
    assert [(r.request_id.tx_hash, r.request_id.index) for r in built.records] == [
        (txs[0].hash, 0), (txs[1].hash, 0), (txs[1].hash, 1), (txs[2].hash, 0)]
    assert [receipt_ok(r) for r in receipts_of(chain, built.block)] == [True, True, False]
    assert built.records[3].result.error == "output 'y' contains NaN"
    return chain, built


@pytest.fixture(scope="module")
def batched_source(fixture_store, cids):
    """A chain whose last block was built by PIPE on one worker, with five forecasts:
    records 0-3 ran as one stacked run and are one signed batch, record 4 is signed alone."""
    chain = DevChain(fixture_store)
    (forecast,) = deploy_all(chain, [("PriceForecast", (cids["linear_regression"], "x", "y"))])
    executor = local_executor(chain.runtime, NODE_KEY, 1)
    pipeline = Pipeline(chain, executor=executor)
    for sender in range(1, 6):
        pipeline.submit(chain.sign(sender, forecast.address, forecast.interface.function("forecast").encode(FEATURES),
                                   gas=GAS))
    (built,) = pipeline.run_until_idle()
    executor.close()
    assert [r.batch and r.batch.index for r in built.records] == [0, 1, 2, 3, None]
    assert len({(r.batch.root, r.signature) for r in built.records[:4]}) == 1
    return chain, built


def replica_below(source):
    """A model-free replica that has imported every block before the PIPE block of ``source``."""
    chain, built = source
    replica = Replica(chain)
    replica.sync(upto=built.block.number - 1)
    replica.genuine = (chain, built)
    return replica


@pytest.fixture
def replica(source):
    return replica_below(source)


@pytest.fixture
def batched_replica(batched_source):
    return replica_below(batched_source)


def forge(block, records):
    """``block`` with ``extra_data`` recomputed for ``records`` (the header hash changes)."""
    return block.copy(header=block.header.copy(extra_data=bundle_root(records)))


def assert_rejected(replica, block, records, *fragments):
    """The validator rejects ``block`` with ``records``, imports nothing, and still takes
    the genuine block afterwards."""
    head = replica.head
    with pytest.raises(InvalidBlock) as info:
        replica.import_block(block, records)
    reason = info.value.reason
    for fragment in fragments:
        assert fragment in reason, reason
    assert replica.head == head
    chain, built = replica.genuine
    imported = replica.import_block(built.block, built.records)
    assert imported.header == built.block.header
    return reason


def changed_output(record: InferenceRecord) -> InferenceRecord:
    """``record``'s result with its first number changed by one unit, re-signed by the node."""
    output = record.result.output
    first = output.numbers[0]
    value, decimals = first.values[0]
    numbers = (first._replace(values=((value + 1, decimals), *first.values[1:])), *output.numbers[1:])
    return resign(record, output=output._replace(numbers=numbers))


def test_a_pipe_block_is_accepted_by_a_model_free_replica(source, replica):
    chain, built = source
    imported = replica.import_block(built.block, built.records)
    assert imported.header == built.block.header
    assert replica.head.state_root == chain.head.state_root
    assert replica.head.hash == chain.head.hash
    assert type(replica.validator.catalogue) is dict  # descriptions only: nothing to load a model from


# --- output values -------------------------------------------------------------------------
def test_a_changed_output_breaks_the_bundle_root(source, replica):
    _, built = source
    records = list(built.records)
    records[0] = changed_output(records[0])
    assert_rejected(replica, built.block, records, "inference bundle does not match the root in extra_data")


@pytest.mark.parametrize("index", [0, 2])
def test_a_changed_output_re_signed_with_a_recomputed_root_does_not_reproduce_the_header(source, replica, index):
    _, built = source
    records = list(built.records)
    records[index] = changed_output(records[index])
    reason = assert_rejected(replica, forge(built.block, records), records, "replay does not reproduce the header")
    assert "state_root" in reason or "receipt_root" in reason


def test_a_changed_first_output_of_a_dependent_call_makes_the_second_request_diverge(source, replica):
    """The dependent tx feeds its first output to the second model: changing that output
    changes the second request's calldata, which no longer matches its record's digest."""
    _, built = source
    records = list(built.records)
    records[1] = changed_output(records[1])
    reason = assert_rejected(replica, forge(built.block, records), records, "diverged on replay")
    assert f"{built.records[2].request_id} was computed for other calldata" in reason


def test_an_error_turned_into_an_output_does_not_reproduce_the_header(source, replica):
    _, built = source
    records = list(built.records)
    records[3] = resign(records[3], output=records[0].result.output, error=None)
    assert_rejected(replica, forge(built.block, records), records, "replay does not reproduce the header")


def test_an_output_turned_into_an_error_does_not_reproduce_the_header(source, replica):
    _, built = source
    records = list(built.records)
    records[0] = resign(records[0], output=None, error="output 'y' contains NaN")
    assert_rejected(replica, forge(built.block, records), records, "replay does not reproduce the header")


def test_a_changed_output_signed_by_an_unregistered_node_is_rejected(source, replica):
    _, built = source
    records = list(built.records)
    records[1] = resign(changed_output(records[1]), key=ROGUE_KEY)
    rogue = ROGUE_KEY.public_key.to_canonical_address()
    assert_rejected(replica, forge(built.block, records), records,
                    "record 1", f"node 0x{rogue.hex()} is not registered for VANILLA")


def test_a_correct_output_signed_by_an_unregistered_node_is_rejected(source, replica):
    _, built = source
    records = [resign(record, key=ROGUE_KEY) for record in built.records]
    assert_rejected(replica, forge(built.block, records), records, "record 0", "is not registered for VANILLA")


def test_a_changed_output_keeping_the_old_signature_is_a_bad_signature(source, replica):
    _, built = source
    records = list(built.records)
    changed = changed_output(records[2])
    records[2] = replace(changed, signature=records[2].signature, node=NODE)
    assert_rejected(replica, forge(built.block, records), records, "record 2", "bad signature")


# --- records missing, added, reordered ----------------------------------------------------------
@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_a_missing_record_is_rejected(source, replica, index):
    _, built = source
    records = [r for i, r in enumerate(built.records) if i != index]
    assert_rejected(replica, built.block, records, "does not match the root")
    reason = assert_rejected(replica, forge(built.block, records), records, "diverged on replay")
    assert "no precomputed result" in reason and str(built.records[index].request_id) in reason


def test_an_empty_bundle_is_rejected(source, replica):
    _, built = source
    assert_rejected(replica, forge(built.block, []), [], "diverged on replay")


def test_a_duplicated_record_is_rejected(source, replica):
    _, built = source
    records = list(built.records)
    records.insert(1, records[1])
    assert_rejected(replica, forge(built.block, records), records, "inference bundle lists a request twice")


def test_an_extra_record_for_a_request_never_made_is_rejected(source, replica):
    _, built = source
    last = built.records[-1]
    extra = resign(built.records[0], request_id=RequestId(last.request_id.tx_hash, 1))
    records = [*built.records, extra]
    assert_rejected(replica, forge(built.block, records), records,
                    "the block used 4 inference results; the bundle has 5")


def test_an_extra_record_for_a_transaction_not_in_the_block_is_rejected(source, replica):
    _, built = source
    extra = resign(built.records[0], request_id=RequestId(b"\x99" * 32, 0))
    records = [*built.records, extra]
    assert_rejected(replica, forge(built.block, records), records, "names a transaction not in the block")


@pytest.mark.parametrize("order", [(0, 2, 1, 3), (1, 2, 0, 3), (3, 0, 1, 2), (3, 2, 1, 0)],
                         ids=["within-a-tx", "across-txs", "last-first", "reversed"])
def test_reordered_records_are_rejected(source, replica, order):
    _, built = source
    records = [built.records[i] for i in order]
    assert_rejected(replica, built.block, records, "does not match the root")
    assert_rejected(replica, forge(built.block, records), records, "inference records are not in block order")


# --- signatures, digests, fields the signature does not cover -----------------------------------
@pytest.mark.parametrize("position", [0, 17, 31, 32, 50, 63, 64])
def test_a_flipped_signature_byte_is_a_bad_signature(source, replica, position):
    _, built = source
    records = list(built.records)
    signature = bytearray(records[1].signature)
    signature[position] ^= 0x01
    records[1] = replace(records[1], signature=bytes(signature))
    assert_rejected(replica, built.block, records, "does not match the root")
    assert_rejected(replica, forge(built.block, records), records, "record 1", "bad signature")


def test_a_record_claiming_another_node_is_a_bad_signature(source, replica):
    _, built = source
    records = list(built.records)
    records[0] = replace(records[0], node=ROGUE_KEY.public_key.to_canonical_address())
    assert_rejected(replica, forge(built.block, records), records, "record 0", "bad signature")


@pytest.mark.parametrize("index", [0, 2, 3])
def test_a_wrong_digest_signed_by_the_node_diverges_on_replay(source, replica, index):
    _, built = source
    records = list(built.records)
    records[index] = resign(records[index], digest=b"\x5a" * 32)
    reason = assert_rejected(replica, forge(built.block, records), records, "diverged on replay")
    assert "computed for other calldata" in reason


def test_a_record_for_another_model_does_not_describe_the_request(source, replica, cids):
    _, built = source
    records = list(built.records)
    records[0] = replace(records[0], model_cid=cids["small_mlp"])  # not covered by the signature
    assert_rejected(replica, forge(built.block, records), records, "does not describe the request made")


def test_a_record_claiming_another_mode_is_rejected(source, replica):
    _, built = source
    records = list(built.records)
    # an error result needs no proof, so the ZKML claim passes the record checks...
    records[3] = replace(records[3], mode=InferenceMode.ZKML)
    assert_rejected(replica, forge(built.block, records), records, "does not describe the request made")
    # ...an output would need one
    records = list(built.records)
    records[0] = replace(records[0], mode=InferenceMode.ZKML)
    assert_rejected(replica, forge(built.block, records), records, "record 0")


# --- blocks -----------------------------------------------------------------------------------
def test_an_inline_block_that_used_inference_cannot_be_imported_without_records(fixture_store, cids):
    chain = DevChain(fixture_store)
    (forecast,) = deploy_all(chain, [("PriceForecast", (cids["linear_regression"], "x", "y"))])
    result = forecast.transact("forecast", FEATURES)
    assert result.success
    replica = Replica(chain)
    replica.sync(upto=result.block_number - 1)
    block = chain.chain.get_canonical_block_by_number(result.block_number)
    with pytest.raises(InvalidBlock) as info:
        replica.import_block(block, [])
    assert "diverged on replay" in info.value.reason and "no precomputed result" in info.value.reason


def test_a_block_on_an_unknown_parent_is_an_invalid_block(source, fixture_store):
    """The validator promises InvalidBlock for any failure: a block whose parent the
    replica does not have must not escape as py-evm's HeaderNotFound."""
    chain, built = source
    replica = Replica(chain)  # at genesis: the deploy blocks are missing
    with pytest.raises(InvalidBlock):
        replica.import_block(built.block, built.records)


# --- the record codec -------------------------------------------------------------------------------
def test_records_round_trip_through_their_encoding(source):
    _, built = source
    for record in built.records:
        assert InferenceRecord.decode(record.encode()) == record


def test_record_encoding_is_canonical(source):
    """A bundle commits to the records' encodings: one record must have one encoding.
    Every single-bit change of an encoding must fail to decode or decode to another record."""
    _, built = source
    same = []
    for number, record in ((0, built.records[0]), (3, built.records[3])):
        data = record.encode()
        for position in range(len(data)):
            for bit in range(8):
                flipped = bytearray(data)
                flipped[position] ^= 1 << bit
                try:
                    decoded = InferenceRecord.decode(bytes(flipped))
                except Exception:
                    continue
                if decoded == record:
                    same.append((number, position, f"0x{data[position]:02x}->0x{flipped[position]:02x}"))
    assert same == [], f"{len(same)} other encodings decode to the same record, e.g. {same[:6]}"


@pytest.mark.parametrize("field", ["attestation", "proof"])
def test_a_vanilla_record_carrying_unsigned_extra_bytes_is_rejected(source, replica, field):
    """Neither the attestation nor the proof is covered by a VANILLA signature. A VANILLA
    record must carry neither: otherwise the block producer can attach any bytes to a
    node's record (and the bundle root commits to them) without any check failing."""
    _, built = source
    records = list(built.records)
    assert getattr(records[0], field) == b""
    records[0] = replace(records[0], **{field: b"\x00"})
    assert_rejected(replica, forge(built.block, records), records, "record 0")



# --- batch-signed records -----------------------------------------------------------------------
def test_a_block_of_batch_signed_records_is_accepted(batched_source, batched_replica):
    chain, built = batched_source
    assert batched_replica.import_block(built.block, built.records).header == built.block.header
    assert batched_replica.head.state_root == chain.head.state_root


def with_batch(record: InferenceRecord, **changes) -> InferenceRecord:
    return replace(record, batch=record.batch._replace(**changes))


def changed_sibling(record: InferenceRecord, level: int) -> InferenceRecord:
    path = list(record.batch.path)
    path[level] = bytes([path[level][0] ^ 1]) + path[level][1:]
    return with_batch(record, path=tuple(path))


@pytest.mark.parametrize("index, change", [
    (1, lambda records: changed_sibling(records[1], 0)),
    (2, lambda records: changed_sibling(records[2], 1)),
    (0, lambda records: with_batch(records[0], index=2)),
    (3, lambda records: with_batch(records[3], root=records[3].batch.path[0])),
    (2, lambda records: with_batch(records[2], path=records[2].batch.path[:1])),
    (0, lambda records: replace(records[0], batch=records[1].batch)),
    (4, lambda records: replace(records[4], batch=records[0].batch, signature=records[0].signature)),
], ids=["path-element-level-0", "path-element-level-1", "wrong-index", "wrong-root", "short-path",
        "position-of-another-record", "lone-record-into-the-batch"])
def test_a_changed_batch_position_is_rejected(batched_source, batched_replica, index, change):
    _, built = batched_source
    records = list(built.records)
    records[index] = change(records)
    assert_rejected(batched_replica, built.block, records, "does not match the root")
    assert_rejected(batched_replica, forge(built.block, records), records, f"record {index}",
                    "batch path does not lead from the result to the batch root")


def test_records_swapped_within_a_batch_are_rejected(batched_source, batched_replica):
    """Records 0 and 1 trade batch positions (the bundle keeps block order), or trade places
    in the bundle, each keeping its position: a path no longer leads to the root, or the
    order breaks."""
    _, built = batched_source
    records = list(built.records)
    records[0], records[1] = (replace(records[0], batch=records[1].batch), replace(records[1], batch=records[0].batch))
    assert_rejected(batched_replica, forge(built.block, records), records, "record 0",
                    "batch path does not lead from the result to the batch root")
    records = list(built.records)
    records[0], records[1] = records[1], records[0]
    assert_rejected(batched_replica, forge(built.block, records), records, "inference records are not in block order")


def test_the_signature_of_another_batch_is_a_bad_signature(batched_source, batched_replica):
    """The node's genuine signature of another batch (the same results but the last)."""
    _, built = batched_source
    other_signature, _ = ResultSigner(NODE_KEY).sign_batch([r.result for r in built.records[:3]])
    records = [replace(r, signature=other_signature) if r.batch else r for r in built.records]
    assert_rejected(batched_replica, forge(built.block, records), records, "record 0", "bad signature")


def test_a_batch_record_without_its_position_is_a_bad_signature(batched_source, batched_replica):
    _, built = batched_source
    records = list(built.records)
    records[2] = replace(records[2], batch=None)
    assert_rejected(batched_replica, forge(built.block, records), records, "record 2", "bad signature")


def test_a_batch_index_with_bits_beyond_its_path_is_malformed(batched_source, batched_replica):
    """Index 0 and index 4 name the same leaf of a two-level path: only the first is valid."""
    _, built = batched_source
    encodings = [r.encode() for r in built.records]
    genuine = built.records[0].encode()
    encodings[0] = genuine.replace(built.records[0].batch.root + b"\x80", built.records[0].batch.root + b"\x04")
    assert encodings[0] != genuine
    block = built.block.copy(header=built.block.header.copy(extra_data=encodings_root(encodings)))
    head = batched_replica.head
    with pytest.raises(InvalidBlock, match="^record 0: malformed inference record: ValueError: a batch index of "
                                           "3 bits beyond a path of 2 levels$"):
        batched_replica.validator.import_encoded(block, rlp.encode(encodings))
    assert batched_replica.head == head
    assert batched_replica.validator.import_encoded(built.block, encode_bundle(built.records)).header == \
        built.block.header
