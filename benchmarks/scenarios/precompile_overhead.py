"""4. Precompile overhead per call, split into py-evm's dispatch and ogevm's own work.

For every fixture model, one request with inputs as contracts send them (Numbers with 2
decimals, small integers, a string), measured call by call in rotating order (median):

* ``direct``: ``session.run`` on the feeds the precompile binds, in a session with the
  runtime's options (the limit: the model and nothing else);
* ``precompile``: ``execute_call`` of the inference precompile ``0x…F4`` with the calldata
  (INLINE), on the head state of a dev chain, as ``eth_call`` runs it;
* ``identity``: ``execute_call`` of the identity precompile ``0x04`` with the same calldata:
  py-evm's message-call dispatch (context, message, snapshot, gas, copy of the data).

``precompile - direct`` is the overhead; ``identity`` its dispatch part; the rest is
ogevm's own work, also timed stage by stage with the functions the precompile calls
(decode, structure check, binding, output conversion, ABI encoding of output and event).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnxruntime as ort

from benchmarks.common import profile_call, ratio, row, target
from ogevm.abi.codec import decode_run_model_inference, encode_output, encode_run_model_inference
from ogevm.abi.layout import encode_event
from ogevm.abi.types import InferenceMode, ModelInferenceRequest, ModelInput, Number, NumberTensor, StringTensor
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
from ogevm.fixtures import FIXTURES, fixture_model
from ogevm.models.binding import STRING_DTYPE, bind_inputs, encode_outputs
from ogevm.models.store import ModelInfo, session_options
from ogevm.records import RequestId
from ogevm.tensors import check_structure
from ogevm.vm.calls import execute_call
from ogevm.vm.chain import DevChain

TITLE = "Precompile overhead per call: dispatch vs ogevm's own work"
ALL_MODELS = sorted(p.stem for p in (FIXTURES / "models").glob("*.onnx"))
SIZES = {
    "smoke": {"models": ["small_mlp", "string_input"], "calls": 5, "heavy_calls": 3},
    "quick": {"models": ALL_MODELS, "calls": 150, "heavy_calls": 20},
    "full": {"models": ALL_MODELS, "calls": 500, "heavy_calls": 50},
}
IDENTITY_PRECOMPILE = b"\x00" * 19 + b"\x04"
OVERHEAD_MAX_US = 100.0
PATHS = ("direct", "precompile", "identity")
STAGES = ("decode", "check_structure", "bind_inputs", "encode_outputs", "encode_output", "encode_event")


def model_input(info: ModelInfo, seed: int = 3) -> ModelInput:
    """One sample for every input of ``info``, as a contract would send it."""
    rng = np.random.default_rng(seed)
    numbers, strings = [], []
    for spec in info.inputs:
        shape = tuple(1 if not isinstance(d, int) else d for d in spec.shape)
        count = int(np.prod(shape))
        if spec.type == STRING_DTYPE:
            strings.append(StringTensor(spec.name, tuple(rng.choice(["buy", "hold", "sell"], count).tolist())))
        elif spec.type == "tensor(bool)":
            numbers.append(NumberTensor(spec.name, tuple(Number(int(v), 0) for v in rng.integers(0, 2, count)), shape))
        elif spec.type.startswith("tensor(int") or spec.type.startswith("tensor(uint"):
            numbers.append(NumberTensor(spec.name, tuple(Number(int(v), 0) for v in rng.integers(-50, 50, count)),
                                        shape))
        else:  # floats; positive so log_model stays finite
            numbers.append(NumberTensor(spec.name, tuple(Number(int(v), 2) for v in rng.integers(1, 1000, count)),
                                        shape))
    return ModelInput(tuple(numbers), tuple(strings))


def _rotating_medians(paths: dict[str, Callable[[], Any]], calls: int) -> dict[str, float]:
    """Median microseconds of each path, called in rotating order ``calls`` times."""
    names = list(paths)
    samples = {name: [] for name in names}
    for i in range(calls):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            start = time.perf_counter()
            paths[name]()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) * 1e6 for name, values in samples.items()}


def measure(names: list[str], calls: int, heavy_calls: int, on_model=lambda name: None) -> dict[str, Any]:
    chain = DevChain()
    state = chain.chain.get_vm(chain.chain.create_header_from_parent(chain.head)).state
    models = {}
    for name in names:
        info = chain.add_model(fixture_model(name))
        request_input = model_input(info)
        calldata = encode_run_model_inference(ModelInferenceRequest(InferenceMode.VANILLA, info.cid, request_input))
        feeds = bind_inputs(info, request_input)
        session = ort.InferenceSession(chain.models.load(info.cid), session_options(),
                                       providers=["CPUExecutionProvider"])
        computation = execute_call(state, INFERENCE_PRECOMPILE_ADDRESS, calldata)
        if computation.is_error:
            raise RuntimeError(f"{name}: the precompile reverted: {computation.output!r}")
        decoded = decode_run_model_inference(calldata)
        raw = session.run(None, feeds)
        output = encode_outputs(info, raw)
        request_id = RequestId(b"\x11" * 32, 0)
        paths = {
            "direct": lambda: session.run(None, feeds),
            "precompile": lambda: execute_call(state, INFERENCE_PRECOMPILE_ADDRESS, calldata),
            "identity": lambda: execute_call(state, IDENTITY_PRECOMPILE, calldata),
        }
        stages = {
            "decode": lambda: decode_run_model_inference(calldata),
            "check_structure": lambda: check_structure(decoded.input),
            "bind_inputs": lambda: bind_inputs(info, decoded.input),
            "encode_outputs": lambda: encode_outputs(info, raw),
            "encode_output": lambda: encode_output(output),
            "encode_event": lambda: encode_event(str(request_id), calldata[4:], output),
        }
        n = heavy_calls if name == "heavy" else calls
        for _ in range(min(5, n)):  # warm every path
            for fn in (*paths.values(), *stages.values()):
                fn()
        us = _rotating_medians(paths, n)
        stage_us = _rotating_medians(stages, max(3, n // 2))
        overhead = us["precompile"] - us["direct"]
        models[name] = {
            "calls": n, "calldata_bytes": len(calldata), "gas_used": computation.get_gas_used(),
            "direct_us": us["direct"], "precompile_us": us["precompile"], "identity_dispatch_us": us["identity"],
            "overhead_us": overhead, "ogevm_own_us": overhead - us["identity"],
            "ratio_precompile_vs_direct": ratio(us["precompile"], us["direct"]),
            "stages_us": stage_us,
            "stages_total_us": sum(stage_us.values()),
        }
        on_model(name)
    return models


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    names = config["models"]
    reporter.total(len(names) + 1)
    models = measure(names, config["calls"], config["heavy_calls"], on_model=lambda name: reporter.step(name))
    targets, table = [], []
    small = models.get("small_mlp")
    if small is not None:
        targets.append(target(
            "small_mlp_overhead", f"small_mlp: precompile - direct ORT <= {OVERHEAD_MAX_US:g} us", "<=",
            OVERHEAD_MAX_US, small["overhead_us"],
            f"dispatch (identity 0x04) {small['identity_dispatch_us']:.0f} us + ogevm's own "
            f"{small['ogevm_own_us']:.0f} us; direct {small['direct_us']:.0f} us", unit="us"))
    for name, m in models.items():
        biggest = max(m["stages_us"], key=m["stages_us"].get)
        table.append(row(f"{name}: overhead per call", m["overhead_us"], "us",
                         f"= dispatch {m['identity_dispatch_us']:.0f} + ogevm {m['ogevm_own_us']:.0f} us "
                         f"(largest stage {biggest} {m['stages_us'][biggest]:.0f} us); direct ORT "
                         f"{m['direct_us']:.0f} us, precompile/direct {m['ratio_precompile_vs_direct']:.2f}x"))
    result: dict[str, Any] = {"results": {"models": models}, "targets": targets, "table": table}
    if any(t["met"] is False for t in targets):
        reporter.note("profiling small_mlp calls")
        chain = DevChain()
        info = chain.add_model(fixture_model("small_mlp"))
        state = chain.chain.get_vm(chain.chain.create_header_from_parent(chain.head)).state
        calldata = encode_run_model_inference(ModelInferenceRequest(InferenceMode.VANILLA, info.cid, model_input(info)))
        execute_call(state, INFERENCE_PRECOMPILE_ADDRESS, calldata)
        calls = max(20, config["calls"])
        _, profile = profile_call(lambda: [execute_call(state, INFERENCE_PRECOMPILE_ADDRESS, calldata)
                                           for _ in range(calls)], f"{calls} precompile calls, small_mlp",
                                    cpu_clock=True)
        result["profile"] = {"small_mlp": profile}
    reporter.step("done", max(0.0, reporter.steps - reporter.done))
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    models = result["results"]["models"]
    names = sorted(models, key=lambda n: models[n]["precompile_us"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 2]})
    y = np.arange(len(names))
    direct = np.array([models[n]["direct_us"] for n in names])
    dispatch = np.array([models[n]["identity_dispatch_us"] for n in names])
    own = np.array([max(0.0, models[n]["ogevm_own_us"]) for n in names])
    left.barh(y, direct, color="tab:gray", label="direct onnxruntime")
    left.barh(y, dispatch, left=direct, color="tab:orange", label="py-evm dispatch (identity 0x04)")
    left.barh(y, own, left=direct + dispatch, color="tab:blue", label="ogevm's own work")
    left.set_yticks(y, names)
    left.set_xscale("log")
    left.set_xlim(left=1)
    left.set_xlabel("microseconds per call (log)")
    left.set_title(f"Precompile call = direct + dispatch + ogevm (target overhead <= {OVERHEAD_MAX_US:g} us "
                   f"on small_mlp)", fontsize=9)
    left.legend(fontsize=8)
    colors = plt.get_cmap("tab10")
    bottom = np.zeros(len(names))
    for i, stage in enumerate(STAGES):
        values = np.array([models[n]["stages_us"][stage] for n in names])
        right.barh(y, values, left=bottom, color=colors(i), label=stage)
        bottom += values
    right.set_yticks(y, names)
    right.set_xlabel("microseconds per call")
    right.set_title("ogevm's stages, timed one by one", fontsize=9)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
