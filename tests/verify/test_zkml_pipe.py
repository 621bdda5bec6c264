"""ZKML through PIPE: proven outputs in the block, proofs checked by a model-free validator."""

from __future__ import annotations

import dataclasses

import pytest

ezkl = pytest.importorskip("ezkl", reason="ZKML needs the zkml extra (ezkl)")

from eth.db.atomic import AtomicDB  # noqa: E402

from ogevm.abi.types import InferenceMode  # noqa: E402
from ogevm.errors import InvalidBlock, ZkmlUnsupported  # noqa: E402
from ogevm.fixtures import fixture_contract, fixture_model  # noqa: E402
from ogevm.pipe.bundle import bundle_root  # noqa: E402
from ogevm.pipe.executor import local_executor  # noqa: E402
from ogevm.pipe.pipeline import Pipeline, default_prover  # noqa: E402
from ogevm.pipe.validator import BlockValidator  # noqa: E402
from ogevm.precompile.modes import ReplayProvider  # noqa: E402
from ogevm.verify.vanilla import sign_result  # noqa: E402
from ogevm.verify.zkml import CircuitProofChecker, CircuitStore  # noqa: E402
from ogevm.vm.accounts import DEV_INFERENCE_NODE_KEY  # noqa: E402
from ogevm.vm.chain import DevChain, chain_class, genesis_params, genesis_state  # noqa: E402

pytestmark = pytest.mark.zkml
FOUR = [(15, 1), (-2, 0), (325, 2), (1, 0)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A chain with linear_regression enabled for ZKML, one PIPE block with a ZKML call."""
    chain = DevChain(circuits=CircuitStore(tmp_path_factory.mktemp("circuits")))
    linear = chain.add_model(fixture_model("linear_regression"))
    mlp = chain.add_model(fixture_model("small_mlp"))
    mixed = chain.deploy(fixture_contract("MixedModes"))
    chain.enable_zkml(linear.cid)
    pipeline = Pipeline(chain, executor=local_executor(chain.runtime, prover=default_prover(chain)))
    data = mixed.interface.function("compareWithModes").encode(
        linear.cid, linear.cid, "x", "y", FOUR, InferenceMode.VANILLA, InferenceMode.ZKML)
    tx_hash = pipeline.submit(chain.sign(1, mixed.address, data))
    (built,) = pipeline.run_until_idle()
    pipeline.executor.close()
    return chain, built, tx_hash, pipeline, mixed, linear, mlp


def replica_of(chain):
    vm_class = chain.base_vm_class.with_provider(ReplayProvider(dict(chain.models), {}))
    replica = chain_class(vm_class).from_genesis(AtomicDB(), genesis_params(), genesis_state())
    validator = BlockValidator(replica, chain.base_vm_class, dict(chain.models), CircuitProofChecker(chain.circuits))
    for number in range(1, chain.head.block_number):
        validator.import_block(chain.chain.get_canonical_block_by_number(number), [])
    return replica, validator


def test_the_zkml_call_returns_the_proven_value_and_the_block_validates(world):
    chain, built, tx_hash, pipeline, mixed, linear, _ = world
    assert pipeline.pool.status(tx_hash).block_number == built.block.number
    vanilla, zkml = built.records
    assert zkml.mode is InferenceMode.ZKML and zkml.proof and not vanilla.proof
    assert mixed.call("lastA") == (106, 1)  # onnxruntime's float32 10.6
    value, decimals = mixed.call("lastB")  # the circuit's n / 2**13, exactly
    assert (value * 2**13) % 10**decimals == 0 and abs(value / 10**decimals - 10.6) < 1e-3
    replica, validator = replica_of(chain)
    validator.import_block(built.block, built.records)
    assert replica.get_canonical_head().state_root == chain.head.state_root


def _forged(built, index, **changes):
    records = list(built.records)
    records[index] = dataclasses.replace(records[index], **changes)
    block = built.block.copy(header=built.block.header.copy(extra_data=bundle_root(records)))
    return block, records


def test_a_tampered_proof_is_rejected(world):
    chain, built, *_ = world
    proof = bytearray(built.records[1].proof)
    proof[len(proof) // 2] ^= 0x01
    _, validator = replica_of(chain)
    block, records = _forged(built, 1, proof=bytes(proof))
    with pytest.raises(InvalidBlock, match="invalid proof"):
        validator.import_block(block, records)


def test_a_proven_output_changed_under_a_valid_signature_is_rejected(world):
    chain, built, *_ = world
    zkml = built.records[1]
    numbers = zkml.result.output.numbers
    changed_value = numbers[0].values[0]._replace(value=numbers[0].values[0].value + 1)
    output = zkml.result.output._replace(numbers=(numbers[0]._replace(values=(changed_value,)),))
    result = dataclasses.replace(zkml.result, output=output)
    _, validator = replica_of(chain)
    block, records = _forged(built, 1, result=result, signature=sign_result(DEV_INFERENCE_NODE_KEY, result))
    with pytest.raises(InvalidBlock):
        validator.import_block(block, records)


def test_a_proof_for_another_model_is_rejected(world):
    chain, built, *_, mlp = world
    _, validator = replica_of(chain)
    block, records = _forged(built, 1, model_cid=mlp.cid)
    with pytest.raises(InvalidBlock, match="does not describe the request|no registered circuit"):
        validator.import_block(block, records)


def test_a_validator_whose_verifying_key_differs_from_the_registry_rejects(world, tmp_path):
    chain, built, *_, linear, _mlp = world
    other = CircuitStore(tmp_path)  # a fresh development SRS: another verifying key
    other.prepare(linear.cid, chain.models.load(linear.cid))
    replica, _ = replica_of(chain)
    validator = BlockValidator(replica, chain.base_vm_class, dict(chain.models), CircuitProofChecker(other))
    with pytest.raises(InvalidBlock, match="verifying key does not match"):
        validator.import_block(built.block, built.records)


def test_models_ezkl_cannot_prove_are_refused_at_registration(world):
    chain = world[0]
    classifier = chain.add_model(fixture_model("classifier"))
    with pytest.raises(ZkmlUnsupported):
        chain.enable_zkml(classifier.cid)
