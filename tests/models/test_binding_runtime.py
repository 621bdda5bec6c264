"""Binding request tensors to model inputs, running models and encoding their outputs."""

from __future__ import annotations

import dataclasses
import json
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ogevm.abi.types import JsonScalar, ModelInput, ModelOutput, Number, NumberTensor, StringTensor
from ogevm.constants import MAX_INPUT_TENSORS
from ogevm.errors import InvalidInput, InvalidOutput, ModelExecutionError, ModelIntegrityError
from ogevm.models import ModelInfo, ModelRuntime, ModelStore, bind_inputs, encode_outputs
from ogevm.models.binding import canonical_json
from ogevm.models.runtime import _Watchdog
from ogevm.testing import exact_number, nearest_float, number_value, valid_input_for

MODELS = Path(__file__).resolve().parents[2] / "fixtures" / "models"
BATCHABLE = [
    "classifier", "heavy", "int_model", "linear_regression", "log_model", "small_mlp",
    "string_input", "two_inputs",
]
ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(bool)": np.bool_}

_STORE = ModelStore()
_INFOS = {p.stem: _STORE.add_file(p) for p in sorted(MODELS.glob("*.onnx"))}
_RUNTIME = ModelRuntime(_STORE)
_DIRECT: dict[str, ort.InferenceSession] = {}


def info(name: str) -> ModelInfo:
    return _INFOS[name]


def direct_session(name: str) -> ort.InferenceSession:
    """A session made straight from the fixture file, independent of the store."""
    if name not in _DIRECT:
        _DIRECT[name] = ort.InferenceSession(str(MODELS / f"{name}.onnx"), providers=["CPUExecutionProvider"])
    return _DIRECT[name]


def numbers(name, values, shape) -> NumberTensor:
    return NumberTensor(name, tuple(exact_number(v) for v in values), tuple(shape))


def run(name: str, model_input: ModelInput) -> ModelOutput:
    model = info(name)
    return _RUNTIME.run(model, bind_inputs(model, model_input))


def decode_feeds(model: ModelInfo, model_input: ModelInput) -> dict[str, np.ndarray]:
    """The arrays a request stands for, decoded exactly without ogevm's codec."""
    feeds = {}
    for tensor in model_input.numbers:
        dtype = ONNX_DTYPES[model.input(tensor.name).type]
        exact = [number_value(n) for n in tensor.values]
        if dtype is np.float32:
            values = [np.float32(float(q)) for q in exact]
            assert all(Fraction(float(v)) == q for v, q in zip(values, exact))  # exact Numbers
        else:
            assert all(q.denominator == 1 for q in exact)
            values = [int(q) for q in exact]
        feeds[tensor.name] = np.array(values, dtype=dtype).reshape(tensor.shape)
    for tensor in model_input.strings:
        feeds[tensor.name] = np.array(tensor.values, dtype=object)
    return feeds


def bits(x) -> np.ndarray:
    x = np.ascontiguousarray(x)
    return x.view(np.dtype(f"u{x.dtype.itemsize}"))


def parse_float32_json(text: str):
    """JSON numbers read back exactly as the float32 they stand for (no double rounding)."""
    return json.loads(text, parse_float=lambda s: nearest_float(Fraction(s), np.float32))


# --- bind_inputs errors ---------------------------------------------------------------------
ROW = [1.0, 2.0, 3.0, 4.0]


def bind_error(name: str, model_input: ModelInput) -> str:
    with pytest.raises(InvalidInput) as error:
        bind_inputs(info(name), model_input)
    return str(error.value)


def test_unknown_input_name():
    message = bind_error("linear_regression", ModelInput((numbers("z", ROW, (1, 4)),), ()))
    assert "'z'" in message and "no input" in message and "'x'" in message


def test_unknown_string_input_name():
    message = bind_error("linear_regression", ModelInput((numbers("x", ROW, (1, 4)),), (StringTensor("extra", ("a",)),)))
    assert "'extra'" in message


def test_duplicate_input():
    message = bind_error("linear_regression", ModelInput((numbers("x", ROW, (1, 4)),) * 2, ()))
    assert "'x'" in message and "twice" in message


def test_duplicate_across_numbers_and_strings():
    message = bind_error("string_input", ModelInput((numbers("text", [1.0], (1,)),), (StringTensor("text", ("buy",)),)))
    assert "'text'" in message and "twice" in message


def test_missing_input():
    message = bind_error("two_inputs", ModelInput((numbers("a", [1.0, 2.0, 3.0], (1, 3)),), ()))
    assert "'b'" in message and "missing" in message


def test_no_inputs_at_all():
    assert "'x'" in bind_error("linear_regression", ModelInput((), ()))


def test_string_tensor_for_numeric_input():
    message = bind_error("linear_regression", ModelInput((), (StringTensor("x", ("1", "2", "3", "4")),)))
    assert "'x'" in message and "string tensor" in message


def test_number_tensor_for_string_input():
    message = bind_error("string_input", ModelInput((numbers("text", [1.0], (1,)),), ()))
    assert "'text'" in message and "number tensor" in message


@pytest.mark.parametrize(
    "name,shape",
    [
        ("linear_regression", (4,)),
        ("linear_regression", (1, 1, 4)),
        ("linear_regression", (2, 2)),
        ("linear_regression", (1, 5)),
        ("fixed_shape", (2, 4)),
        ("fixed_shape", (4, 1)),
    ],
)
def test_wrong_rank_or_fixed_dimension(name, shape):
    x = numbers("x", [0.0] * int(np.prod(shape)), shape)
    message = bind_error(name, ModelInput((x,), ()))
    assert "'x'" in message and "shape" in message and str(list(shape)) in message


def test_wrong_shape_of_a_second_input():
    x = numbers("x", [1, 2, 3, 4], (2, 2))
    flag = numbers("flag", [True] * 4, (2, 2))
    message = bind_error("int_model", ModelInput((x, flag), ()))
    assert "'flag'" in message and "[2, 2]" in message


def test_values_must_fill_the_shape():
    tensor = NumberTensor("x", (Number(1, 0),) * 3, (1, 4))
    message = bind_error("linear_regression", ModelInput((tensor,), ()))
    assert "'x'" in message and "needs 4" in message


def test_value_errors_name_the_tensor():
    x = numbers("x", [1, 2], (1, 2))
    flag = NumberTensor("flag", (Number(2, 0),), (1, 1))
    assert "'flag'" in bind_error("int_model", ModelInput((x, flag), ()))
    x = NumberTensor("x", (Number(15, 1), Number(2, 0)), (1, 2))
    flag = numbers("flag", [True], (1, 1))
    message = bind_error("int_model", ModelInput((x, flag), ()))
    assert "'x'" in message and "not an integer" in message


def test_too_many_tensors():
    tensors = tuple(numbers(f"t{i}", [0.0], (1,)) for i in range(MAX_INPUT_TENSORS + 1))
    message = bind_error("linear_regression", ModelInput(tensors, ()))
    assert str(MAX_INPUT_TENSORS) in message


def test_bind_gives_model_dtypes_and_order():
    model = info("int_model")
    flag = numbers("flag", [True, False], (2, 1))
    x = numbers("x", [1, 2, 3, -4], (2, 2))
    feeds = bind_inputs(model, ModelInput((flag, x), ()))  # given in the other order
    assert list(feeds) == ["x", "flag"]
    assert feeds["x"].dtype == np.int64 and feeds["flag"].dtype == np.bool_
    np.testing.assert_array_equal(feeds["x"], [[1, 2], [3, -4]])
    np.testing.assert_array_equal(feeds["flag"], [[True], [False]])


# --- known results --------------------------------------------------------------------------
def test_linear_regression_by_hand():
    output = run("linear_regression", ModelInput((numbers("x", ROW, (1, 4)),), ()))
    assert output == ModelOutput((NumberTensor("y", (Number(71, 1),), (1, 1)),), (), (), False)


def test_fixed_shape_by_hand():
    output = run("fixed_shape", ModelInput((numbers("x", ROW, (1, 4)),), ()))
    assert output.numbers == (NumberTensor("y", (Number(-15, 1), Number(85, 1)), (1, 2)),)


def test_int_model_by_hand():
    x = numbers("x", [1, 2, 3, -4], (2, 2))
    flag = numbers("flag", [True, False], (2, 1))
    output = run("int_model", ModelInput((x, flag), ()))
    assert output.numbers == (
        NumberTensor("y", (Number(3, 0), Number(-1, 0)), (2, 1)),
        NumberTensor("z", (Number(1, 0), Number(0, 0)), (2, 1)),
    )


def test_string_input_model():
    texts = ("buy", "hold", "sell", "other", "")
    output = run("string_input", ModelInput((), (StringTensor("text", texts),)))
    assert output.numbers == (
        NumberTensor("class_id", tuple(Number(v, 0) for v in (0, 1, 2, -1, -1)), (5,)),
        NumberTensor("score", (Number(0, 0), Number(5, 1), Number(1, 0), Number(-5, 1), Number(-5, 1)), (5,)),
    )
    assert output.strings == () and output.jsons == ()


def test_classifier_zipmap_arrives_as_json():
    rows = [[1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0], [-1.5, 2.5, 4.0, -0.25]]
    x = numbers("x", [v for row in rows for v in row], (3, 4))
    output = run("classifier", ModelInput((x,), ()))
    label, probabilities = direct_session("classifier").run(None, {"x": np.array(rows, np.float32)})
    assert output.numbers == (NumberTensor("label", tuple(Number(int(v), 0) for v in label), (3,)),)
    assert len(output.jsons) == 1 and output.jsons[0].name == "probabilities"
    text = output.jsons[0].value
    assert " " not in text
    parsed = parse_float32_json(text)
    assert parsed == [{str(k): np.float32(v) for k, v in row.items()} for row in probabilities]
    assert all(list(row) == ["0", "1", "2"] for row in parsed)


def test_canonical_json_numbers_are_positional_decimals():
    """Numbers in JSON outputs use the same canonical decimal text as number tensors."""
    value = [{0: np.float32(1e-5), 1: np.float32(0.25), 2: np.float32(1e20)}]
    assert canonical_json("p", value) == '[{"0":0.00001,"1":0.25,"2":100000000000000000000}]'


def test_canonical_json_structure():
    value = {2: [True, np.int64(5)], 1: {"b": np.float32(0.1), "a": "s"}}
    assert canonical_json("p", value) == '{"1":{"a":"s","b":0.1},"2":[true,5]}'
    with pytest.raises(InvalidOutput, match="NaN"):
        canonical_json("p", {0: float("nan")})
    with pytest.raises(InvalidOutput, match="infinity"):
        canonical_json("p", [np.float32("inf")])


def test_encode_outputs_sorts_kinds():
    model = info("classifier")
    output = encode_outputs(model, [np.array([2, 0], np.int64), [{0: 0.5, 1: 0.25, 2: 0.25}]])
    assert output.numbers == (NumberTensor("label", (Number(2, 0), Number(0, 0)), (2,)),)
    assert output.jsons == (JsonScalar("probabilities", '[{"0":0.5,"1":0.25,"2":0.25}]'),)
    assert output.is_simulation_result is False


# --- failures -------------------------------------------------------------------------------
@pytest.mark.parametrize("value,word", [(-1.0, "NaN"), (0.0, "infinity")])
def test_log_model_non_finite_output(value, word):
    model_input = ModelInput((numbers("x", [2.0, value], (2, 1)),), ())
    with pytest.raises(InvalidOutput) as error:
        run("log_model", model_input)
    assert word in str(error.value) and "'y'" in str(error.value)


def test_two_inputs_mismatched_batches():
    a = numbers("a", [1.0] * 6, (2, 3))
    b = numbers("b", [1.0] * 9, (3, 3))
    model = info("two_inputs")
    feeds = bind_inputs(model, ModelInput((a, b), ()))  # each input fits on its own
    with pytest.raises(ModelExecutionError) as error:
        _RUNTIME.run(model, feeds)
    message = str(error.value)
    assert message.startswith("model execution failed")
    assert "\n" not in message and len(message) < 256


# --- the runtime agrees with onnxruntime ------------------------------------------------------
@pytest.mark.parametrize("name", BATCHABLE)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_runtime_matches_onnxruntime(name, data):
    model = info(name)
    model_input = data.draw(valid_input_for(model))
    feeds = decode_feeds(model, model_input)
    bound = bind_inputs(model, model_input)
    assert list(bound) == [spec.name for spec in model.inputs]
    for spec in model.inputs:
        assert bound[spec.name].dtype == feeds[spec.name].dtype
        assert bound[spec.name].shape == feeds[spec.name].shape
        if feeds[spec.name].dtype == object:
            assert bound[spec.name].tolist() == feeds[spec.name].tolist()
        else:
            np.testing.assert_array_equal(bits(bound[spec.name]), bits(feeds[spec.name]))

    raw = direct_session(name).run(None, feeds)
    try:
        expected = encode_outputs(model, raw)
    except InvalidOutput as error:
        with pytest.raises(InvalidOutput) as actual:
            _RUNTIME.run(model, bound)
        assert str(actual.value) == str(error)
        return
    output = _RUNTIME.run(model, bound)
    assert output == expected

    tensors = {t.name: t for t in output.numbers}
    jsons = {j.name: j.value for j in output.jsons}
    for spec, value in zip(model.outputs, raw):
        if spec.name in tensors:
            tensor, value = tensors[spec.name], np.asarray(value)
            assert tensor.shape == value.shape
            if value.dtype.kind == "f":
                back = np.array([nearest_float(number_value(n), value.dtype) for n in tensor.values],
                                dtype=value.dtype).reshape(value.shape)
                nonzero = value != 0
                np.testing.assert_array_equal(bits(back[nonzero]), bits(value[nonzero]))
                np.testing.assert_array_equal(back[~nonzero], 0)
            else:
                assert [n.decimals for n in tensor.values] == [0] * value.size
                assert [n.value for n in tensor.values] == value.reshape(-1).tolist()
        else:
            parsed = parse_float32_json(jsons[spec.name])
            assert parsed == [{str(k): np.float32(v) for k, v in row.items()} for row in value]


# --- stacked outputs encode as their slices ----------------------------------------------------
_STACKED_SPECS = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(int64)": np.int64,
                  "tensor(bool)": np.bool_}


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_stacked_outputs_encode_as_each_requests_slice(data):
    """``encode_stacked_outputs`` gives, request by request, what ``encode_outputs`` gives for
    that request's rows (padding rows, NaN rows and wide values included), or None."""
    from ogevm.models.binding import encode_stacked_outputs
    from ogevm.models.store import TensorSpec

    types = data.draw(st.lists(st.sampled_from(sorted(_STACKED_SPECS)), min_size=1, max_size=3))
    sizes = data.draw(st.lists(st.integers(1, 4), min_size=1, max_size=5))
    total = sum(sizes) + data.draw(st.integers(0, 3))  # padded rows at the end
    values = []
    for onnx_type in types:
        shape = (total, *data.draw(st.lists(st.integers(0, 3), max_size=2)))
        dtype = _STACKED_SPECS[onnx_type]
        if dtype is np.bool_:
            elements = st.booleans()
        elif np.dtype(dtype).kind == "i":
            elements = st.integers(-(2**63), 2**63 - 1)
        else:
            elements = st.floats(width=np.finfo(dtype).bits, allow_nan=True, allow_infinity=False)
        flat = data.draw(st.lists(elements, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        values.append(np.array(flat, dtype=dtype).reshape(shape))
    model = dataclasses.replace(info("small_mlp"),
                                outputs=tuple(TensorSpec(f"out{i}", t, ("batch",)) for i, t in enumerate(types)))
    stacked = encode_stacked_outputs(model, values, sizes)
    bounds = np.cumsum([0, *sizes]).tolist()
    expected = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        try:
            expected.append(encode_outputs(model, [value[start:stop] for value in values]))
        except InvalidOutput:
            expected.append(None)
    if stacked is None:  # only when some row (maybe a padding row) cannot be encoded
        with pytest.raises(InvalidOutput):
            encode_outputs(model, values)
    else:
        assert stacked == expected
        assert all(isinstance(d, int) for output in stacked for t in output.numbers for d in t.shape)


def test_stacked_outputs_of_string_or_map_outputs_take_the_slice_path():
    from ogevm.models.binding import encode_stacked_outputs

    model = info("classifier")
    assert encode_stacked_outputs(model, [np.array([2, 0], np.int64), [{0: 0.5}, {1: 1.0}]], [1, 1]) is None


# --- the session cache ------------------------------------------------------------------------
def test_lru_cache_evicts_beyond_capacity():
    runtime = ModelRuntime(_STORE, capacity=2)
    a, b, c = (info(n).cid for n in ("linear_regression", "two_inputs", "log_model"))
    session_a = runtime.session(a)
    session_b = runtime.session(b)
    assert runtime.session(a) is session_a  # hit; a is now the most recent
    session_c = runtime.session(c)  # evicts b, the least recently used
    assert runtime.session(a) is session_a
    assert runtime.session(c) is session_c
    new_b = runtime.session(b)  # miss: a new session, which evicts a
    assert new_b is not session_b
    assert runtime.session(c) is session_c
    assert runtime.session(a) is not session_a
    # a fresh session still computes the right thing
    output = runtime.run(info("linear_regression"), bind_inputs(info("linear_regression"),
                         ModelInput((numbers("x", ROW, (1, 4)),), ())))
    assert output.numbers[0].values == (Number(71, 1),)


def test_runtime_uses_hash_checked_bytes(tmp_path):
    store = ModelStore(tmp_path)
    model = store.add_file(MODELS / "linear_regression.onnx")
    (tmp_path / f"{model.cid}.onnx").write_bytes((MODELS / "small_mlp.onnx").read_bytes())
    with pytest.raises(ModelIntegrityError):
        ModelRuntime(store).session(model.cid)


# --- the watchdog ----------------------------------------------------------------------------
def _wait_for(options: ort.RunOptions, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not options.terminate and time.monotonic() < deadline:
        time.sleep(0.002)
    return options.terminate


def test_the_watchdog_stops_a_run_due_before_the_deadline_it_sleeps_for():
    watchdog = _Watchdog()
    long, short = ort.RunOptions(), ort.RunOptions()
    long_id = watchdog.start(long, 60)
    time.sleep(0.02)  # the thread now sleeps until the 60 s deadline
    short_id = watchdog.start(short, 0.02)
    assert _wait_for(short)
    watchdog.finish(short_id)
    watchdog.finish(long_id)
    assert not long.terminate


def test_the_watchdog_stops_a_late_run_after_many_finished_ones():
    watchdog = _Watchdog()
    finished = [ort.RunOptions() for _ in range(300)]
    for options in finished:
        watchdog.finish(watchdog.start(options, 0.01 + len(finished) * 1e-5))
    late = ort.RunOptions()
    late_id = watchdog.start(late, 0.02)
    assert _wait_for(late)
    watchdog.finish(late_id)
    time.sleep(0.05)  # every finished run's deadline has passed: none was stopped
    assert not any(options.terminate for options in finished)
