"""The pytest plugin's in-process fixtures, as a test suite uses them (the plugin is loaded
through its ``pytest11`` entry point, like in a user's project); its node fixture runs in
``examples/pytest`` (``test_examples.py``)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ogevm.errors import ModelStoreError
from ogevm.fixtures import FIXTURES, fixture_contract

LINEAR = FIXTURES / "models" / "linear_regression.onnx"
ARTIFACT = FIXTURES / "contracts" / "InferenceCaller.json"


def test_the_plugin_is_loaded_through_its_entry_point(pytestconfig):
    assert pytestconfig.pluginmanager.has_plugin("ogevm")


def test_a_fresh_chain_with_the_ten_funded_accounts(ogevm_chain, ogevm_accounts):
    assert ogevm_chain.head.block_number == 0 and not ogevm_chain.models and not ogevm_chain.mocks
    assert len(ogevm_accounts) == 10
    assert ogevm_accounts[0].checksum_address == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
    assert all(ogevm_chain.balance(a.address) > 0 for a in ogevm_accounts)


def test_deploy_takes_an_artifact_path_or_an_interface(ogevm_deploy):
    by_path, by_interface = ogevm_deploy(ARTIFACT), ogevm_deploy(fixture_contract("InferenceCaller"), sender=1)
    assert by_path.address != by_interface.address
    assert by_path.call("lastOk") == (False,)


@pytest.mark.parametrize("content, fragment", [
    (None, "no artifact at"), ("not json", "not a contract artifact"), ("[]", "not a contract artifact"),
    (json.dumps({"abi": []}), "not a contract artifact"),
    (json.dumps({"contractName": "X", "abi": [], "bytecode": "0xzz", "deployedBytecode": "0x"}),
     "not a contract artifact"),
])
def test_a_bad_artifact_is_refused_with_a_reason(ogevm_deploy, tmp_path, content, fragment):
    path = tmp_path / "Bad.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=fragment):
        ogevm_deploy(path)


def test_add_model_gives_the_cid_and_refuses_what_is_no_model(ogevm_add_model, ogevm_chain):
    cid = ogevm_add_model(LINEAR)
    assert cid in ogevm_chain.models and ogevm_add_model(LINEAR.read_bytes()) == cid
    with pytest.raises(ModelStoreError):
        ogevm_add_model(b"not an onnx model")


def test_inputs_of_an_unknown_model_are_refused(ogevm_inputs):
    with pytest.raises(ValueError, match="unknown model CID"):
        ogevm_inputs("bafkunknown")


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_drawn_inputs_are_accepted_by_the_precompile(ogevm_chain, ogevm_add_model, ogevm_deploy, ogevm_inputs, data):
    from ogevm.abi import InferenceMode, ModelInferenceRequest

    cid = ogevm_add_model(LINEAR)
    caller = ogevm_deploy(ARTIFACT)
    model_input = data.draw(ogevm_inputs(cid, batch=st.integers(1, 3)))
    ok, reason, tensors = caller.call("tryInfer", ModelInferenceRequest(InferenceMode.VANILLA, cid, model_input))
    assert (ok, reason, tensors) == (True, "", 1)
