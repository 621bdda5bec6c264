"""ZKML with ezkl: circuits by CID, proofs of one sample, and what a verifier must reject."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("ezkl", reason="ZKML tests need the ezkl package (pip install 'ogevm[zkml]')")

from ogevm.errors import ModelIntegrityError  # noqa: E402
from ogevm.fixtures import fixture_model  # noqa: E402
from ogevm.models.cid import compute_cid  # noqa: E402
from ogevm.verify.zkml import (  # noqa: E402
    SRS_LABEL,
    CircuitStore,
    ProofInvalid,
    ZkmlUnsupported,
    prove_in_process,
)

pytestmark = pytest.mark.zkml

MODELS = {"linear_regression": 4, "small_mlp": 8}  # name -> width of input x [1, width]
# Observed: at most ~6.5 output steps from onnxruntime for inputs in [-1, 1] (weights and
# inputs are rounded to 2**-13 and the rounding adds up through the layers).
TOLERANCE_STEPS = 16


def model_bytes(name: str) -> bytes:
    return fixture_model(name).read_bytes()


def sample(name: str, seed: int = 7) -> dict[str, np.ndarray]:
    x = np.random.default_rng(seed).uniform(-1, 1, (1, MODELS[name]))
    return {"x": x.astype(np.float32)}


def other_linear_regression() -> bytes:
    """Same inputs, outputs and ops as linear_regression, other weights: another circuit."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "W"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
        "other_linear_regression",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1])],
        initializer=[
            numpy_helper.from_array(np.array([[0.25], [1.5], [-2.0], [0.5]], np.float32), "W"),
            numpy_helper.from_array(np.array([0.3], np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model.SerializeToString()


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> CircuitStore:
    return CircuitStore(tmp_path_factory.mktemp("circuits"))


@pytest.fixture(scope="module")
def cids(store) -> dict[str, str]:
    """Each model prepared in the module's store, by name."""
    cids = {}
    for name in MODELS:
        data = model_bytes(name)
        cids[name] = compute_cid(data)
        store.prepare(cids[name], data)
    return cids


@pytest.fixture(scope="module")
def proofs(store, cids) -> dict[str, tuple[bytes, list[np.ndarray]]]:
    return {name: store.prove(cids[name], sample(name)) for name in MODELS}


def mutate(proof: bytes, change) -> bytes:
    snark = json.loads(proof)
    change(snark)
    return json.dumps(snark).encode()


# --- preparing ---------------------------------------------------------------------
def test_prepare_is_idempotent(store, cids):
    for name, cid in cids.items():
        info = store.info(cid)
        assert store.prepare(cid, model_bytes(name)) == info
        assert CircuitStore(store.directory).info(cid) == info  # read back from disk
        assert len(info.vk_hash) == 32 and info.srs == SRS_LABEL
        assert info.input_names == ("x",)
        assert info.input_shapes == ((1, MODELS[name]),) and info.output_shapes == ((1, 1),)
        assert 1 <= info.logrows <= 12


def test_same_model_and_srs_give_the_same_verifying_key(store, cids, tmp_path_factory):
    """ezkl writes some settings in hash order; the store sorts them so the vk is stable."""
    twin = tmp_path_factory.mktemp("twin")
    shutil.copytree(store.directory / "srs", twin / "srs")
    cid = cids["linear_regression"]
    assert CircuitStore(twin).prepare(cid, model_bytes("linear_regression")) == store.info(cid)
    for artifact in ("settings.json", "vk.key"):
        assert (twin / cid / artifact).read_bytes() == (store.directory / cid / artifact).read_bytes()


def test_prepare_checks_the_cid(store, cids):
    with pytest.raises(ModelIntegrityError):
        store.prepare(cids["small_mlp"], model_bytes("linear_regression"))


def test_unknown_circuit_is_a_key_error(store):
    with pytest.raises(KeyError):
        store.info(compute_cid(b"not prepared"))


@pytest.mark.parametrize(
    "name, words",
    [("string_input", ["input 'text'", "string"]), ("classifier", ["ZipMap"])],
)
def test_models_ezkl_cannot_prove_are_unsupported(store, name, words):
    data = model_bytes(name)
    with pytest.raises(ZkmlUnsupported) as raised:
        store.prepare(compute_cid(data), data)
    reason = raised.value.reason
    assert reason.startswith("ezkl cannot build a circuit for this model: ")
    assert all(word in reason for word in words) and "\n" not in reason


# --- proving -----------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_witness_is_what_the_proof_proves_and_close_to_onnxruntime(store, cids, proofs, name):
    cid, feeds = cids[name], sample(name)
    info = store.info(cid)
    witness = store.witness(cid, feeds)
    _, proven = proofs[name]
    assert len(witness) == len(proven) == 1
    assert witness[0].dtype == np.float64 and witness[0].shape == (1, 1)
    np.testing.assert_array_equal(witness[0], proven[0])
    scaled = witness[0] * 2.0 ** info.output_scales[0]
    assert np.array_equal(scaled, np.round(scaled))  # exactly n / 2**scale
    expected = ort.InferenceSession(model_bytes(name)).run(None, feeds)[0]
    step = 2.0 ** -info.output_scales[0]
    np.testing.assert_allclose(witness[0], expected, rtol=0, atol=TOLERANCE_STEPS * step)


def test_linear_regression_of_the_readme(store, cids):
    """x = [1, 2, 3, 4] gives 7.1: the circuit rescales, so the output is not limited to +-4."""
    (y,) = store.witness(cids["linear_regression"], {"x": np.array([[1, 2, 3, 4]], np.float32)})
    assert abs(float(y[0, 0]) - 7.1) < 2**-11


def test_a_batch_is_unsupported(store, cids):
    feeds = {"x": np.zeros((2, 8), np.float32)}
    for call in (store.witness, store.prove):
        with pytest.raises(ZkmlUnsupported, match="^ZKML proves one sample per request$"):
            call(cids["small_mlp"], feeds)


def test_inputs_beyond_the_circuit_range_are_unsupported(store, cids):
    with pytest.raises(ZkmlUnsupported, match="ezkl cannot compute the witness"):
        store.prove(cids["small_mlp"], {"x": np.full((1, 8), 1e5, np.float32)})
    with pytest.raises(ZkmlUnsupported, match="NaN or infinity"):
        store.witness(cids["small_mlp"], {"x": np.full((1, 8), np.nan, np.float32)})


def test_lookup_inputs_beyond_the_tables_are_refused_before_proving(store):
    """ezkl's prover never returns for a lookup input outside its table: refuse those first.

    (Only the witness is computed here; ``prove`` runs the same check before proving.)
    """
    data = model_bytes("log_model")
    cid = compute_cid(data)
    store.prepare(cid, data)  # calibrated on x in [-1, 1]: the Ln table covers |x| <= 2
    (y,) = store.witness(cid, {"x": np.array([[1.5]], np.float32)})
    assert abs(float(y[0, 0]) - np.log(1.5)) < 2**-9
    with pytest.raises(ZkmlUnsupported, match="^input outside the range the circuit supports: "):
        store.witness(cid, {"x": np.array([[100.0]], np.float32)})


def test_prove_in_process_pool(store, cids):
    # "spawn": a child forked from a process that already ran ezkl deadlocks in ezkl
    # (its thread pool does not survive fork), and this process has.
    context = multiprocessing.get_context("spawn")
    feeds = sample("small_mlp", seed=11)
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        proof, outputs = pool.submit(prove_in_process, str(store.directory), cids["small_mlp"], feeds).result(
            timeout=120
        )
    np.testing.assert_array_equal(outputs[0], store.witness(cids["small_mlp"], feeds)[0])
    store.verify(cids["small_mlp"], proof, outputs, feeds)


# --- verifying -----------------------------------------------------------------------
@pytest.mark.parametrize("name", list(MODELS))
def test_verify_accepts_a_good_proof(store, cids, proofs, name):
    proof, outputs = proofs[name]
    store.verify(cids[name], proof, outputs)
    store.verify(cids[name], proof, outputs, sample(name))
    # float32 expected values of the same numbers are the same outputs
    store.verify(cids[name], proof, [o.astype(np.float32) for o in outputs])


def test_rejects_a_proof_checked_against_another_models_circuit(store, cids, proofs):
    proof, outputs = proofs["linear_regression"]
    with pytest.raises(ProofInvalid, match="public values"):
        store.verify(cids["small_mlp"], proof, outputs)
    # same shapes, other weights: only the verifying key tells them apart
    other = other_linear_regression()
    other_cid = compute_cid(other)
    store.prepare(other_cid, other)
    with pytest.raises(ProofInvalid, match="^ezkl rejected the proof"):
        store.verify(other_cid, proof, outputs)


@pytest.mark.parametrize("name", list(MODELS))
def test_rejects_an_output_one_step_off(store, cids, proofs, name):
    proof, outputs = proofs[name]
    step = 2.0 ** -store.info(cids[name]).output_scales[0]
    for delta in (step, -step):
        with pytest.raises(ProofInvalid, match=r"^output 0\[0\] is "):
            store.verify(cids[name], proof, [outputs[0] + delta])
    with pytest.raises(ProofInvalid, match="shape"):
        store.verify(cids[name], proof, [outputs[0].reshape(-1)])
    with pytest.raises(ProofInvalid, match="expected outputs"):
        store.verify(cids[name], proof, [])


def test_rejects_a_proof_for_other_inputs(store, cids, proofs):
    proof, outputs = proofs["small_mlp"]
    feeds = sample("small_mlp")
    feeds["x"] = feeds["x"].copy()
    feeds["x"][0, 3] += np.float32(2**-12)
    with pytest.raises(ProofInvalid, match="another value of input 'x'"):
        store.verify(cids["small_mlp"], proof, outputs, feeds)


def test_rejects_changed_public_inputs(store, cids, proofs):
    """Changing a public input in the file (outputs untouched) breaks the proof itself."""
    proof, outputs = proofs["small_mlp"]

    def change(snark):
        first = int.from_bytes(bytes.fromhex(snark["instances"][0][0]), "little")
        snark["instances"][0][0] = (first + 1).to_bytes(32, "little").hex()

    with pytest.raises(ProofInvalid, match="^ezkl rejected the proof"):
        store.verify(cids["small_mlp"], mutate(proof, change), outputs)


@pytest.mark.parametrize("cut", [1, 100, 0.5])
def test_rejects_a_truncated_proof(store, cids, proofs, cut):
    proof, outputs = proofs["linear_regression"]
    end = int(len(proof) * cut) if isinstance(cut, float) else len(proof) - cut
    with pytest.raises(ProofInvalid, match="not a JSON proof file"):
        store.verify(cids["linear_regression"], proof[:end], outputs)


def test_rejects_a_truncated_proof_body(store, cids, proofs):
    proof, outputs = proofs["linear_regression"]

    def change(snark):
        snark["proof"] = snark["proof"][:-32]
        snark["hex_proof"] = "0x" + bytes(snark["proof"]).hex()

    with pytest.raises(ProofInvalid, match="^ezkl rejected the proof"):
        store.verify(cids["linear_regression"], mutate(proof, change), outputs)


def test_rejects_a_proof_with_one_mutated_byte(store, cids, proofs):
    proof, outputs = proofs["small_mlp"]
    position = 200  # inside the proof body

    def flip_hex_only(snark):  # ezkl itself would accept this one: it ignores hex_proof
        body = bytearray(bytes.fromhex(snark["hex_proof"][2:]))
        body[position] ^= 0x01
        snark["hex_proof"] = "0x" + body.hex()

    with pytest.raises(ProofInvalid, match="'hex_proof' does not match 'proof'"):
        store.verify(cids["small_mlp"], mutate(proof, flip_hex_only), outputs)

    def flip_both(snark):
        snark["proof"][position] ^= 0x01
        snark["hex_proof"] = "0x" + bytes(snark["proof"]).hex()

    with pytest.raises(ProofInvalid, match="^ezkl rejected the proof"):
        store.verify(cids["small_mlp"], mutate(proof, flip_both), outputs)


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda s: s.pop("proof"), "no 'proof' byte list"),
        (lambda s: s.update(proof=[256]), "no 'proof' byte list"),
        (lambda s: s.update(instances=[]), "one column of public values"),
        (lambda s: s["instances"][0].__setitem__(0, "zz" * 32), "not 32 bytes of hex"),
        (lambda s: s["instances"][0].__setitem__(0, "ff" * 32), "not a canonical field element"),
    ],
)
def test_rejects_malformed_proof_files(store, cids, proofs, change, reason):
    proof, outputs = proofs["linear_regression"]
    with pytest.raises(ProofInvalid, match=reason):
        store.verify(cids["linear_regression"], mutate(proof, change), outputs)
    with pytest.raises(ProofInvalid, match="not a JSON proof file"):
        store.verify(cids["linear_regression"], b"\xff\xfe", outputs)
