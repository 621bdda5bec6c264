"""Precompile overhead per call: decode + gas + bind + encode + event + dispatch, against a
direct onnxruntime call on the same input (the limit), per fixture model, in one run.

    python benchmarks/bench_precompile.py [--calls 300] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import onnxruntime as ort

from ogevm.abi import InferenceMode, ModelInferenceRequest, encode_run_model_inference
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
from ogevm.fixtures import fixture_model
from ogevm.models.binding import bind_inputs
from ogevm.models.store import session_options
from ogevm.testing.strategies import input_from_arrays
from ogevm.vm.calls import execute_call
from ogevm.vm.chain import DevChain

MODELS = {
    "linear_regression": {"x": np.array([[1.5, -2.0, 3.25, 1.0]], dtype=np.float32)},
    "small_mlp": {"x": np.linspace(-1, 1, 8, dtype=np.float32).reshape(1, 8)},
    "two_inputs": {"a": np.array([[1, 2, 3]], dtype=np.float32), "b": np.array([[0.5, 0.25, 2]], dtype=np.float32)},
    "heavy": {"x": np.linspace(-3, 3, 64, dtype=np.float32).reshape(1, 64)},
}


def _median_time(fn, calls: int) -> float:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measure(calls: int = 300) -> dict:
    chain = DevChain()
    state = chain.chain.get_vm(chain.chain.create_header_from_parent(chain.head)).state
    results = {}
    for name, arrays in MODELS.items():
        info = chain.add_model(fixture_model(name))
        model_input = input_from_arrays(info, arrays)
        calldata = encode_run_model_inference(ModelInferenceRequest(InferenceMode.VANILLA, info.cid, model_input))
        feeds = bind_inputs(info, model_input)
        session = ort.InferenceSession(str(fixture_model(name)), session_options(), providers=["CPUExecutionProvider"])
        n = calls if name != "heavy" else max(20, calls // 10)
        for _ in range(5):  # warm both paths
            session.run(None, feeds)
            assert not execute_call(state, INFERENCE_PRECOMPILE_ADDRESS, calldata).is_error
        direct = _median_time(lambda: session.run(None, feeds), n)
        precompile = _median_time(lambda: execute_call(state, INFERENCE_PRECOMPILE_ADDRESS, calldata), n)
        results[name] = {"direct_ort_us": direct * 1e6, "precompile_us": precompile * 1e6,
                         "overhead_us": (precompile - direct) * 1e6, "ratio": precompile / direct,
                         "calldata_bytes": len(calldata)}
    return {"machine": {"python": platform.python_version(), "onnxruntime": ort.__version__,
                        "cpus": __import__("os").cpu_count()},
            "calls": calls, "models": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--out")
    args = parser.parse_args()
    report = measure(args.calls)
    print(f"{'model':20} {'direct ORT':>12} {'precompile':>12} {'overhead':>12} {'ratio':>7}")
    for name, r in report["models"].items():
        print(f"{name:20} {r['direct_ort_us']:10.1f}us {r['precompile_us']:10.1f}us "
              f"{r['overhead_us']:10.1f}us {r['ratio']:6.2f}x")
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(report, handle, indent=2)


if __name__ == "__main__":
    main()
