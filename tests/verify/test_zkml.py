"""ZKML with ezkl: circuits by CID, proofs of one sample, and what a verifier must reject."""

from __future__ import annotations

import json
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import onnxruntime as ort
import pytest
import rlp
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("ezkl", reason="ZKML tests need the ezkl package (pip install 'ogevm[zkml]')")

from ogevm.errors import ModelIntegrityError, ProofInvalid, ZkmlUnsupported  # noqa: E402
from ogevm.fixtures import fixture_model  # noqa: E402
from ogevm.models.cid import compute_cid  # noqa: E402
from ogevm.verify.zkml import (  # noqa: E402
    FIELD_MODULUS,
    SRS_LABEL,
    CircuitStore,
    decode_proof,
    encode_proof,
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
    """``proof`` re-encoded after ``change(felts, body)`` edits its decoded lists in place."""
    felts, body = decode_proof(proof)
    body = list(body)
    change(felts, body)
    return encode_proof(felts, bytes(body))


def ezkl_proof_file(proof: bytes, **changes) -> dict:
    """The proof file ezkl writes for ``proof`` (its fields as ezkl 23.0.5 names them)."""
    felts, body = decode_proof(proof)
    snark = {"protocol": None, "instances": [[felt.to_bytes(32, "little").hex() for felt in felts]],
             "proof": list(body), "hex_proof": "0x" + body.hex(), "split": None,
             "pretty_public_inputs": None, "timestamp": 1796080833503, "version": "23.0.5"}
    snark.update(changes)
    return snark


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
    """Changing a public input in the proof (outputs untouched) breaks the proof itself."""
    proof, outputs = proofs["small_mlp"]

    def change(felts, body):
        felts[0] += 1

    with pytest.raises(ProofInvalid, match="^ezkl rejected the proof"):
        store.verify(cids["small_mlp"], mutate(proof, change), outputs)


@pytest.mark.parametrize("cut", [1, 100, 0.5])
def test_rejects_a_truncated_proof(store, cids, proofs, cut):
    proof, outputs = proofs["linear_regression"]
    end = int(len(proof) * cut) if isinstance(cut, float) else len(proof) - cut
    with pytest.raises(ProofInvalid, match="not in its canonical encoding"):
        store.verify(cids["linear_regression"], proof[:end], outputs)


def test_rejects_a_truncated_proof_body(store, cids, proofs):
    proof, outputs = proofs["linear_regression"]

    def change(felts, body):
        del body[-32:]

    with pytest.raises(ProofInvalid, match="^ezkl rejected the proof"):
        store.verify(cids["linear_regression"], mutate(proof, change), outputs)


def test_rejects_a_proof_with_one_mutated_byte(store, cids, proofs):
    proof, outputs = proofs["small_mlp"]

    def flip(felts, body):
        body[200] ^= 0x01  # inside the proof body

    with pytest.raises(ProofInvalid, match="^ezkl rejected the proof"):
        store.verify(cids["small_mlp"], mutate(proof, flip), outputs)


@pytest.mark.parametrize("extra", [b"\x00", b"\x00" * 32], ids=["one-byte", "one-word"])
def test_rejects_bytes_after_the_end_of_the_proof_body(store, cids, proofs, extra):
    """ezkl stops reading at the end of the proof and accepts whatever follows it."""
    proof, outputs = proofs["small_mlp"]
    felts, body = decode_proof(proof)
    with pytest.raises(ProofInvalid, match="^the proof has bytes after its end$"):
        store.verify(cids["small_mlp"], encode_proof(felts, body + extra), outputs)


# --- one encoding per proof ----------------------------------------------------------------
def test_the_canonical_encoding_round_trips(proofs):
    for proof, _ in proofs.values():
        felts, body = decode_proof(proof)
        assert encode_proof(felts, body) == proof and len(body) > 0
        assert all(0 <= felt < FIELD_MODULUS for felt in felts)


@pytest.mark.parametrize(
    "form",
    [
        lambda proof: json.dumps(ezkl_proof_file(proof)).encode(),
        lambda proof: json.dumps(ezkl_proof_file(proof), indent=2).encode(),
        lambda proof: json.dumps({k: v for k, v in ezkl_proof_file(proof).items() if k in ("instances", "proof")},
                                 sort_keys=True, separators=(",", ":")).encode(),
        lambda proof: proof + b"\x00",
        lambda proof: b"\x00" + proof,
    ],
    ids=["ezkl-file", "re-indented", "minimal-json", "trailing-byte", "leading-byte"],
)
def test_other_encodings_of_a_good_proof_are_rejected(store, cids, proofs, form):
    """Before the canonical encoding, each of the JSON forms verified (ezkl reads only some
    fields of its proof file), so one proof had many valid encodings."""
    proof, outputs = proofs["linear_regression"]
    with pytest.raises(ProofInvalid, match="^the proof is not in its canonical encoding"):
        store.verify(cids["linear_regression"], form(proof), outputs)


def rlp_list(payload: bytes) -> bytes:
    """An RLP list header (shortest form) followed by ``payload``."""
    if len(payload) <= 55:
        return bytes([0xC0 + len(payload)]) + payload
    size = len(payload).to_bytes((len(payload).bit_length() + 7) // 8, "big")
    return bytes([0xF7 + len(size)]) + size + payload


def test_non_canonical_rlp_of_the_same_proof_is_rejected(store, cids, proofs):
    """The same lists, but the first public value with a long-form length prefix."""
    proof, outputs = proofs["linear_regression"]
    felts, body = decode_proof(proof)
    values = [felt.to_bytes(32, "little") for felt in felts]
    canonical = rlp_list(rlp_list(b"".join(rlp.encode(v) for v in values)) + rlp.encode(body))
    assert canonical == proof
    long_form = rlp_list(rlp_list(b"\xb8\x20" + values[0] + b"".join(rlp.encode(v) for v in values[1:]))
                         + rlp.encode(body))
    with pytest.raises(ProofInvalid, match="^the proof is not in its canonical encoding"):
        store.verify(cids["linear_regression"], long_form, outputs)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "not in its canonical encoding"),
        (b"\xff\xfe", "not in its canonical encoding"),
        (rlp.encode([[(1).to_bytes(32, "little")], b""]), "not in its canonical encoding"),
        (encode_proof([FIELD_MODULUS], b"\x01"), "not a canonical field element"),
        (encode_proof([1, 2], b"\x01"), "the proof has 2 public values"),
    ],
    ids=["empty", "not-rlp", "empty-body", "felt-beyond-the-field", "wrong-count"],
)
def test_rejects_malformed_proofs(store, cids, proofs, data, reason):
    _, outputs = proofs["linear_regression"]
    with pytest.raises(ProofInvalid, match=reason):
        store.verify(cids["linear_regression"], data, outputs)


def test_a_public_value_of_another_width_is_rejected():
    with pytest.raises(ProofInvalid, match="not in its canonical encoding"):
        decode_proof(rlp.encode([[b"\x01" * 31], b"\x01"]))
