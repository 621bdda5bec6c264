"""Mocked inference: INLINE calls, PIPE blocks equal to INLINE, validators with and without dev mode."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, strategies as st

from ogevm.abi import InferenceMode, ModelOutput, Number, NumberTensor
from ogevm.abi.types import JsonScalar, StringTensor
from ogevm.errors import InvalidBlock, TransactionFailed
from ogevm.fixtures import fixture_contract
from ogevm.node.rpc.shapes import record_json
from ogevm.pipe.bundle import bundle_root
from ogevm.pipe.executor import local_executor
from ogevm.pipe.mocks import MOCK_NODE
from ogevm.pipe.pipeline import Pipeline
from ogevm.precompile.mocks import InferenceMocks, InvalidMock, parse_output, request_digest
from ogevm.records import InferenceRecord, InferenceResult, RequestId
from ogevm.verify.vanilla import recover_signer
from ogevm.vm.accounts import DEV_MOCK_KEY
from ogevm.vm.chain import DevChain

from pipe_helpers import (
    FEATURES,
    GAS,
    NODE_KEY,
    ROGUE_KEY,
    Replica,
    call_for,
    deploy_all,
    inference_request,
    mine_inline_like,
    receipts_of,
    resign,
    tensor,
)

NEGATIVE = ModelOutput((NumberTensor("y", (Number(-125, 1),), (1, 1)),), (), (), False)
NAN_REASON = "output 'y' contains NaN"


def forecast_call(cids, features=FEATURES):
    """The request PriceForecast makes for ``features`` (a [1, n] tensor ``x``)."""
    return call_for(cids["linear_regression"], tensor(features, (1, len(features))))


@pytest.fixture
def forecast(chain, cids):
    return chain.deploy(fixture_contract("PriceForecast"), cids["linear_regression"], "x", "y")


# --- INLINE (DevChain) -------------------------------------------------------------------------
def test_a_mocked_model_forces_a_negative_price(chain, cids, forecast):
    assert forecast.call("forecastView", FEATURES) == ((71, 1),)  # the real model: 7.1
    chain.mock_inference(cids["linear_regression"], NEGATIVE)
    result = forecast.transact("forecast", FEATURES)
    assert result.success
    assert forecast.call("latestPrediction") == (-125, 1)
    assert forecast.events(result, "Forecast")[0]["value"] == -125
    assert chain.clear_mocks(cids["linear_regression"]) == 1
    assert forecast.call("forecastView", FEATURES) == ((71, 1),)


def test_a_mocked_failure_reverts_as_a_real_nan_does(chain, cids, forecast):
    log_caller = chain.deploy(fixture_contract("InferenceCaller"))
    real = log_caller.call("tryInfer", call_for(cids["log_model"], tensor([-1], (1, 1))))
    assert real == (False, NAN_REASON, 0)  # what a model producing NaN does
    chain.mock_inference(cids["linear_regression"], error=NAN_REASON)
    with pytest.raises(TransactionFailed) as failure:
        forecast.call("forecastView", FEATURES)
    assert failure.value.reason == NAN_REASON
    result = forecast.transact("forecast", FEATURES)
    assert not result.success and result.revert_reason == NAN_REASON
    assert forecast.call("predictionCount") == (0,)


def test_a_reverting_model_is_caught_by_the_contract(chain, cids):
    caller = chain.deploy(fixture_contract("InferenceCaller"))
    chain.mock_inference(cids["linear_regression"], error="model server unavailable")
    caller.transact("tryInfer", forecast_call(cids))
    assert caller.call("lastReason") == ("model server unavailable",)


def test_a_mock_for_one_digest_wins_over_a_mock_for_any_input(chain, cids, forecast):
    other = [(5, 0), (6, 0), (7, 0), (8, 0)]
    chain.mock_inference(cids["linear_regression"], NEGATIVE)
    one = ModelOutput((NumberTensor("y", (Number(42, 0),), (1, 1)),), (), (), False)
    chain.mock_inference(cids["linear_regression"], one, digest=request_digest(forecast_call(cids, other)))
    assert forecast.call("forecastView", other) == ((42, 0),)
    assert forecast.call("forecastView", FEATURES) == ((-125, 1),)
    assert chain.clear_mocks() == 2
    assert forecast.call("forecastView", other) == ((151, 1),)  # 2.5 - 7.5 + 14 + 6 + 0.1


def test_mocks_of_unknown_models_and_malformed_mocks_are_refused(chain, cids):
    with pytest.raises(InvalidMock, match="unknown model"):
        chain.mock_inference("bafkunknown", NEGATIVE)
    cid = cids["linear_regression"]
    for kwargs, match in [({}, "exactly one"), ({"output": NEGATIVE, "error": "x"}, "exactly one"),
                          ({"error": ""}, "1 to"), ({"error": "x" * 257}, "1 to"),
                          ({"output": NEGATIVE, "digest": b"\x01" * 31}, "32 bytes"),
                          ({"output": NEGATIVE._replace(is_simulation_result=True)}, "simulation")]:
        with pytest.raises(InvalidMock, match=match):
            chain.mock_inference(cid, **kwargs)
    assert not chain.mocks


@pytest.mark.parametrize("value, match", [
    ([], "an object"), ({"numbers": {}}, "list of objects"), ({"tensors": []}, "unknown output field"),
    ({"numbers": [{"name": "y", "values": [[1]]}]}, "pairs"),
    ({"numbers": [{"name": "y", "values": [[2**127, 0]]}]}, "int128"),
    ({"numbers": [{"name": "y", "values": [[True, 0]]}]}, "pairs"),
    ({"numbers": [{"name": "y", "values": [[1, 0]], "shape": [2]}]}, "holds 2 values"),
    ({"numbers": [{"name": "y", "values": [[1, 0]], "shape": [-1]}]}, "uint32"),
    ({"numbers": [{"values": [[1, 0]]}]}, "name is a string"),
    ({"strings": [{"name": "s", "values": [1]}]}, "list of strings"),
    ({"jsons": [{"name": "j"}]}, "value is a string"),
])
def test_malformed_outputs_are_refused_with_a_reason(value, match):
    with pytest.raises(InvalidMock, match=match):
        parse_output(value)


@given(st.lists(st.tuples(st.integers(-2**127, 2**127 - 1), st.integers(0, 30)), max_size=6),
       st.lists(st.text(max_size=5), max_size=3))
def test_an_output_in_the_record_shape_parses_back(pairs, texts):
    """The JSON shape og_getInferenceRecords gives is the shape a mock takes."""
    output = ModelOutput((NumberTensor("y", tuple(Number(*p) for p in pairs), (len(pairs),)),),
                         (StringTensor("s", tuple(texts)),), (JsonScalar("j", "{}"),), False)
    result = InferenceResult(RequestId(b"\x01" * 32, 0), b"\x02" * 32, output=output)
    record = InferenceRecord(result, InferenceMode.VANILLA, "cid", MOCK_NODE, b"\x00" * 65)
    assert parse_output(record_json(record)["output"]) == output


# --- PIPE ------------------------------------------------------------------------------------
@pytest.fixture
def world(fixture_store, cids):
    """A PIPE chain and an INLINE twin with the same contracts and the same mocks."""
    chain, twin = DevChain(fixture_store), DevChain(fixture_store)
    contracts = [("PriceForecast", (cids["linear_regression"], "x", "y")), ("InferenceCaller", ())]
    deployed = deploy_all(chain, contracts)
    assert [c.address for c in deploy_all(twin, contracts)] == [c.address for c in deployed]
    failing = [(9, 0), (9, 0), (9, 0), (9, 0)]
    for c in (chain, twin):
        c.mock_inference(cids["linear_regression"], NEGATIVE)
        c.mock_inference(cids["linear_regression"], error=NAN_REASON, digest=request_digest(forecast_call(cids, failing)))
    pipeline = Pipeline(chain, NODE_KEY, executor=local_executor(chain.runtime, NODE_KEY, mocks=chain.mocks))
    forecast, caller = deployed
    txs = [chain.sign(0, forecast.address, forecast.interface.function("forecast").encode(FEATURES), gas=GAS),
           chain.sign(1, forecast.address, forecast.interface.function("forecast").encode(failing), gas=GAS),
           chain.sign(2, caller.address, caller.interface.function("tryInfer").encode(
               call_for(cids["linear_regression"], tensor(FEATURES, (1, 4)), mode=InferenceMode.TEE)), gas=GAS)]
    for tx in txs:
        pipeline.submit(tx)
    (built,) = pipeline.run_until_idle()
    assert [t.hash for t in built.block.transactions] == [t.hash for t in txs]
    return chain, twin, built, forecast


def test_a_pipe_block_with_mocks_equals_inline(world):
    chain, twin, built, forecast = world
    assert forecast.call("latestPrediction") == (-125, 1)
    assert [r.node for r in built.records] == [MOCK_NODE] * 3
    assert [r.mode for r in built.records] == [InferenceMode.VANILLA, InferenceMode.VANILLA, InferenceMode.TEE]
    assert built.records[1].result.error == NAN_REASON
    assert all(recover_signer(r.result, r.signature) == DEV_MOCK_KEY.public_key.to_canonical_address()
               for r in built.records)
    twin_block, _ = mine_inline_like(twin, built.block)
    assert twin_block.header == built.block.header
    assert receipts_of(twin, twin_block) == receipts_of(chain, built.block)


def test_only_a_validator_in_dev_mode_accepts_mocked_records(world):
    chain, _, built, _ = world
    strict = Replica(chain)
    strict.sync(upto=built.block.number - 1)
    with pytest.raises(InvalidBlock, match="record 0 .*mocked result .*dev mode"):
        strict.import_block(built.block, built.records)
    dev = Replica(chain)
    dev.validator.accept_mocks = True
    dev.sync(upto=built.block.number - 1)
    rogue = resign(built.records[0], ROGUE_KEY)  # an unregistered signer is no mock
    forged = replace(built.records[0], signature=rogue.signature)  # the mock node, another key
    for record, reason in ((rogue, "not registered"), (forged, "bad signature")):
        records = [record, *built.records[1:]]
        block = built.block.copy(header=built.block.header.copy(extra_data=bundle_root(records)))
        with pytest.raises(InvalidBlock, match=f"record 0 .*{reason}"):
            dev.import_block(block, records)
    assert dev.import_block(built.block, built.records).header == built.block.header


def test_mocks_apply_only_to_the_executor_that_has_them(fixture_store, cids):
    """Without the table, the executor runs the model: mocks are no global state."""
    chain = DevChain(fixture_store)
    chain.mock_inference(cids["linear_regression"], NEGATIVE)
    executor = local_executor(chain.runtime, NODE_KEY, mocks=InferenceMocks())
    (record,) = executor.execute([inference_request(chain.models[cids["linear_regression"]], forecast_call(cids),
                                                    b"\x05" * 32)])
    executor.close()
    assert record.node == NODE_KEY.public_key.to_canonical_address()
    assert record.result.output.numbers[0].values == (Number(71, 1),)
