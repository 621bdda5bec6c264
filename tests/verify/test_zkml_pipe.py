"""ZKML through PIPE: proven outputs in the block, proofs checked by a model-free validator."""

from __future__ import annotations

import dataclasses
import json
import shutil

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
from ogevm.verify.zkml import CircuitProofChecker, CircuitStore, decode_proof, encode_proof  # noqa: E402
from ogevm.vm.accounts import DEV_INFERENCE_NODE_KEY  # noqa: E402
from ogevm.vm.chain import DevChain, chain_class  # noqa: E402
from ogevm.vm.genesis import genesis_params, genesis_state  # noqa: E402

pytestmark = pytest.mark.zkml
FOUR = [(15, 1), (-2, 0), (325, 2), (1, 0)]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A chain with linear_regression enabled for ZKML, one PIPE block with three ZKML calls:
    records ``[VANILLA, ZKML, ZKML, ZKML]``, the last two for the same input (two proofs of
    the same statement)."""
    chain = DevChain(circuits=CircuitStore(tmp_path_factory.mktemp("circuits")))
    linear = chain.add_model(fixture_model("linear_regression"))
    mlp = chain.add_model(fixture_model("small_mlp"))
    mixed = chain.deploy(fixture_contract("MixedModes"))
    chain.enable_zkml(linear.cid)
    pipeline = Pipeline(chain, executor=local_executor(chain.runtime, prover=default_prover(chain)))
    data = mixed.interface.function("compareWithModes").encode(
        linear.cid, linear.cid, "x", "y", FOUR, InferenceMode.VANILLA, InferenceMode.ZKML)
    tx_hash = pipeline.submit(chain.sign(1, mixed.address, data))
    twice = mixed.interface.function("compareWithModes").encode(
        linear.cid, linear.cid, "x", "y", FOUR, InferenceMode.ZKML, InferenceMode.ZKML)
    pipeline.submit(chain.sign(2, chain.deploy(fixture_contract("MixedModes")).address, twice))
    (built,) = pipeline.run_until_idle()
    assert [r.mode for r in built.records] == [InferenceMode.VANILLA] + [InferenceMode.ZKML] * 3
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
    vanilla, zkml, *_ = built.records
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


def _resigned(record, proof: bytes) -> dict:
    """The changes that give ``record`` the proof ``proof``, signed again by its node: so
    the signature passes and what is tested is the proof alone."""
    return {"proof": proof, "signature": sign_result(DEV_INFERENCE_NODE_KEY, record.result, proof)}


def test_a_tampered_proof_is_rejected(world):
    chain, built, *_ = world
    felts, body = decode_proof(built.records[1].proof)
    body = bytearray(body)
    body[len(body) // 2] ^= 0x01
    tampered = encode_proof(felts, bytes(body))
    _, validator = replica_of(chain)
    block, records = _forged(built, 1, proof=tampered)  # under the node's signature
    with pytest.raises(InvalidBlock, match="record 1 .*: bad signature"):
        validator.import_block(block, records)
    block, records = _forged(built, 1, **_resigned(built.records[1], tampered))
    with pytest.raises(InvalidBlock, match="record 1 .*: invalid proof: ezkl rejected the proof"):
        validator.import_block(block, records)


def test_a_proof_swapped_between_two_records_is_a_bad_signature(world):
    """Records 2 and 3 prove the same statement with two proofs, both valid for either
    record: only the signature, which covers the proof, ties each proof to its record."""
    chain, built, *_ = world
    two, three = built.records[2], built.records[3]
    assert two.result.output == three.result.output and two.proof != three.proof
    _, validator = replica_of(chain)
    records = list(built.records)
    records[2], records[3] = (dataclasses.replace(two, proof=three.proof),
                              dataclasses.replace(three, proof=two.proof))
    block = built.block.copy(header=built.block.header.copy(extra_data=bundle_root(records)))
    with pytest.raises(InvalidBlock, match="record 2 .*: bad signature"):
        validator.import_block(block, records)


def _ezkl_file(proof: bytes, indent=None, **changes) -> bytes:
    """``proof`` as ezkl's proof file (the form records held before the canonical encoding)."""
    felts, body = decode_proof(proof)
    snark = {"protocol": None, "instances": [[felt.to_bytes(32, "little").hex() for felt in felts]],
             "proof": list(body), "hex_proof": "0x" + body.hex(), "split": None,
             "pretty_public_inputs": None, "timestamp": 1796080833503, "version": "23.0.5", **changes}
    return json.dumps(snark, indent=indent).encode()


@pytest.mark.parametrize(
    "other_form",
    [
        lambda proof: _ezkl_file(proof),
        lambda proof: _ezkl_file(proof, indent=1),
        lambda proof: _ezkl_file(proof, added_key=0),
        lambda proof: _ezkl_file(proof, timestamp=0),
        lambda proof: proof + b"\x00",
    ],
    ids=["ezkl-file", "re-indented", "added-key", "unread-field-changed", "canonical-plus-a-byte"],
)
def test_another_encoding_of_a_good_proof_is_rejected_before_replay(world, other_form):
    """Finding F5: these forms of one proof all validated, so one block had many valid
    bundle roots. Each is signed by the node here: the encoding rule alone rejects it."""
    chain, built, *_ = world
    _, validator = replica_of(chain)
    block, records = _forged(built, 1, **_resigned(built.records[1], other_form(built.records[1].proof)))
    with pytest.raises(InvalidBlock, match="record 1 .*: invalid proof: the proof is not in its canonical encoding"):
        validator.import_block(block, records)


def test_a_proven_output_changed_under_a_valid_signature_is_rejected(world):
    chain, built, *_ = world
    zkml = built.records[1]
    numbers = zkml.result.output.numbers
    changed_value = numbers[0].values[0]._replace(value=numbers[0].values[0].value + 1)
    output = zkml.result.output._replace(numbers=(numbers[0]._replace(values=(changed_value,)),))
    result = dataclasses.replace(zkml.result, output=output)
    _, validator = replica_of(chain)
    signature = sign_result(DEV_INFERENCE_NODE_KEY, result, zkml.proof)
    block, records = _forged(built, 1, result=result, signature=signature)
    with pytest.raises(InvalidBlock, match=r"record 1 .*: invalid proof: output 0\[0\] is "):
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


def test_a_validator_holding_only_verifying_files_accepts_the_block(world, tmp_path):
    """A validator is not a prover: from a circuit it needs the verifying key, the settings,
    the circuit's description (``circuit.json``: input names and dtypes, the SRS hash) and the
    SRS, never the proving key, the compiled circuit or the model."""
    chain, built, *_, linear, _mlp = world
    source = chain.circuits.directory
    logrows = chain.circuits.info(linear.cid).logrows
    for name in (f"{linear.cid}/vk.key", f"{linear.cid}/settings.json", f"{linear.cid}/circuit.json",
                 f"srs/kzg{logrows}.srs"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, tmp_path / name)
    replica, _ = replica_of(chain)
    catalogue = {cid: info for cid, info in chain.models.items()}  # descriptions, no model bytes
    validator = BlockValidator(replica, chain.base_vm_class, catalogue, CircuitProofChecker(CircuitStore(tmp_path)))
    validator.import_block(built.block, built.records)
    assert replica.get_canonical_head().state_root == chain.head.state_root
    assert sorted(p.name for p in (tmp_path / linear.cid).iterdir()) == ["circuit.json", "settings.json", "vk.key"]
    with pytest.raises(KeyError, match="only its verifying files here"):
        CircuitStore(tmp_path).witness(linear.cid, {})


def test_models_ezkl_cannot_prove_are_refused_at_registration(world):
    chain = world[0]
    classifier = chain.add_model(fixture_model("classifier"))
    with pytest.raises(ZkmlUnsupported):
        chain.enable_zkml(classifier.cid)
