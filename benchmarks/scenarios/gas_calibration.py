"""9. Gas tracks work: nanoseconds per unit of gas, for every fixture model and shape.

For each fixture model at several row counts, one precompile call (``execute_call`` of
``0x…F4`` with INLINE inference, as ``eth_call`` runs it: decoding, binding, the model
run with its watchdog, encoding and the event) is timed (median of repeated calls) and
divided by the gas it used, all of it charged before the model runs from the calldata and
the call's input shapes (spec §1.1, §2). If gas tracks work, ns per gas is about the same
for every model and shape: the figure is the spread, max / min over every case, with a
target of 10x. The largest ns per gas measured must stay below ``MODEL_RUN_NS_PER_GAS``,
the calibration of the time budget that stops runs far beyond what their gas pays for.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import ratio, row, target
from ogevm.abi.codec import encode_run_model_inference
from ogevm.abi.types import InferenceMode, ModelInferenceRequest
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS, MODEL_RUN_NS_PER_GAS
from ogevm.fixtures import FIXTURES, fixture_model
from ogevm.models.binding import bind_inputs, model_gas
from ogevm.models.store import ModelInfo
from ogevm.tensors import NUMERIC_DTYPES, STRING_DTYPE
from ogevm.testing.strategies import input_from_arrays
from ogevm.vm.calls import execute_call
from ogevm.vm.chain import DevChain

TITLE = "Gas tracks work: ns per gas across fixture models and shapes"
ALL_MODELS = sorted(p.stem for p in (FIXTURES / "models").glob("*.onnx"))
SIZES = {
    "smoke": {"models": ["small_mlp", "heavy"], "rows": [1, 4], "calls": 3, "heavy_calls": 2},
    "quick": {"models": ALL_MODELS, "rows": [1, 8, 64], "calls": 30, "heavy_calls": 3},
    "full": {"models": ALL_MODELS, "rows": [1, 8, 64, 256], "calls": 100, "heavy_calls": 5},
}
SPREAD_MAX = 10.0
#: Gas of each measured call: enough for heavy at 256 rows.
GAS_LIMIT = 1 << 40


def arrays(info: ModelInfo, rows: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inputs of ``rows`` rows (every free dimension takes ``rows``), as contracts send them."""
    result = {}
    for spec in info.inputs:
        shape = tuple(d if isinstance(d, int) else rows for d in spec.shape)
        if spec.type == STRING_DTYPE:
            result[spec.name] = rng.choice(["buy", "hold", "sell"], shape).astype(object)
            continue
        dtype = NUMERIC_DTYPES[spec.type]
        if dtype == np.bool_:
            result[spec.name] = rng.integers(0, 2, shape).astype(bool)
        elif np.issubdtype(dtype, np.integer):
            result[spec.name] = rng.integers(-50, 50, shape).astype(dtype)
        else:  # positive two-decimal values, so log_model stays finite
            result[spec.name] = (rng.integers(1, 1000, shape) / 100).astype(dtype)
    return result


def row_counts(info: ModelInfo, wanted: list[int]) -> list[int]:
    """The row counts the model takes: all of them with a free dimension, else one."""
    free = any(not isinstance(d, int) for spec in info.inputs for d in spec.shape)
    return wanted if free else [1]


def measure(config: dict[str, Any], on_model=lambda name: None) -> dict[str, Any]:
    chain = DevChain()
    state = chain.chain.get_vm(chain.chain.create_header_from_parent(chain.head)).state
    rng = np.random.default_rng(9)
    cases = {}
    for name in config["models"]:
        info = chain.add_model(fixture_model(name))
        calls = config["heavy_calls"] if name == "heavy" else config["calls"]
        for rows in row_counts(info, config["rows"]):
            request_input = input_from_arrays(info, arrays(info, rows, rng))
            calldata = encode_run_model_inference(ModelInferenceRequest(InferenceMode.VANILLA, info.cid, request_input))
            feeds = bind_inputs(info, request_input)
            computation = execute_call(state, INFERENCE_PRECOMPILE_ADDRESS, calldata, gas=GAS_LIMIT)
            if computation.is_error:
                raise RuntimeError(f"{name}/{rows}: the precompile reverted: {computation.output!r}")
            seconds = []
            for _ in range(calls):
                start = time.perf_counter()
                execute_call(state, INFERENCE_PRECOMPILE_ADDRESS, calldata, gas=GAS_LIMIT)
                seconds.append(time.perf_counter() - start)
            median = statistics.median(seconds)
            gas = computation.get_gas_used()
            cases[f"{name}/{rows}"] = {
                "model": name, "rows": rows, "calls": calls, "gas_used": gas,
                "model_gas": model_gas(info, feeds), "calldata_bytes": len(calldata),
                "median_us": median * 1e6, "ns_per_gas": median * 1e9 / gas,
            }
        on_model(name)
    return cases


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    reporter.total(len(config["models"]) + 1)
    cases = measure(config, on_model=lambda name: reporter.step(name))
    per_gas = {key: case["ns_per_gas"] for key, case in cases.items()}
    slowest, fastest = max(per_gas, key=per_gas.get), min(per_gas, key=per_gas.get)
    spread = ratio(per_gas[slowest], per_gas[fastest])
    targets = [
        target("ns_per_gas_spread", f"max / min ns per gas over every model and shape <= {SPREAD_MAX:g}x",
               "<=", SPREAD_MAX, spread,
               f"slowest {slowest} {per_gas[slowest]:.2f} ns/gas, cheapest {fastest} {per_gas[fastest]:.2f} ns/gas"),
        target("ns_per_gas_below_budget_calibration",
               f"largest ns per gas <= MODEL_RUN_NS_PER_GAS ({MODEL_RUN_NS_PER_GAS} ns)", "<=",
               MODEL_RUN_NS_PER_GAS, per_gas[slowest], f"at {slowest}", unit="ns"),
    ]
    table = [row(f"{key}: ns per gas", case["ns_per_gas"], "ns",
                 f"{case['gas_used']} gas (model {case['model_gas']}), {case['median_us']:.0f} us "
                 f"(median of {case['calls']})")
             for key, case in cases.items()]
    reporter.step("done", max(0.0, reporter.steps - reporter.done))
    return {"results": {"cases": cases, "spread": spread}, "targets": targets, "table": table}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    cases = result["results"]["cases"]
    fig, ax = plt.subplots(figsize=(8, 5))
    for name in sorted({case["model"] for case in cases.values()}):
        points = sorted((c["model_gas"], c["median_us"]) for c in cases.values() if c["model"] == name)
        ax.plot(*zip(*points), marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("gas used by the call")
    ax.set_ylabel("precompile call, median microseconds")
    ax.set_title(f"Time against gas (spread of ns/gas {result['results']['spread']:.1f}x, "
                 f"target <= {SPREAD_MAX:g}x)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
