"""The PIPE benchmark runs end to end at its smallest size and reports every number."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_pipe.py"

BLOCK_KEYS = (
    "n", "senders", "blocks", "gas_used", "inline_s", "pipe_build_s", "evm_only_s", "inline_cpu_s",
    "pipe_build_cpu_s", "evm_only_cpu_s", "inline_vs_pipe", "pipe_vs_evm_only", "pipe_vs_evm_only_cpu",
    "pipe_vs_evm_only_median_block", "inline_vs_evm_only", "prepare_s", "prepare_simulation_s",
    "prepare_simulation_passes", "prepare_simulation_per_pass_s", "simulation_pass_vs_evm_only",
    "prepare_executor_s", "prepare_requests_executed", "validator_import_s", "per_block",
)
EXECUTOR_KEYS = (
    "n", "raw_ort_loop_s", "raw_ort_stacked_s", "raw_ort_loop_2threads_s", "raw_ort_2threads_vs_1thread",
    "batched_vs_unbatched_1w", "batched_vs_unbatched_2w", "unbatched_2w_vs_1w", "batched_2w_vs_1w",
    "executor_1w_unbatched_vs_raw_loop", "executor_1w_batched_vs_raw_stacked", "best_executor_vs_best_raw",
    "signing_s", "signing_per_record_us", "signing_output_hash_s", "signing_secp256k1_s",
)
CONFIGS = ("1w_unbatched", "1w_batched", "2w_unbatched", "2w_batched")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_pipe", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def results(bench):
    return bench.run(n=4, small_n=8, heavy_n=4, repeats=1, senders=2)


def test_block_building_reports_every_number(results):
    block = results["block_building"]
    for key in BLOCK_KEYS:
        assert key in block, key
        if key != "per_block":
            assert _positive(block[key]), (key, block[key])
    assert block["n"] == 4 and block["identical_blocks"] is True
    assert sum(b["txs"] for b in block["per_block"]) == 4
    assert block["prepare_requests_executed"] == 4  # one heavy inference per forecast


def test_executor_reports_every_number(results):
    for model in ("small_mlp", "heavy"):
        executor = results["executor"][model]
        for key in EXECUTOR_KEYS:
            assert _positive(executor[key]), (model, key, executor.get(key))
        for name in CONFIGS:
            config = executor["configs"][name]
            assert _positive(config["seconds"]) and _positive(config["requests_per_s"]), (model, name)
            assert 0 < executor["signing_share"][name]


def test_targets_report_and_json(bench, results):
    assert [t["key"] for t in results["targets"]] == [key for key, *_ in bench.TARGETS]
    for target in results["targets"]:
        assert _positive(target["value"]) and isinstance(target["met"], bool)
    for key in ("cpu_count", "python", "numpy", "onnxruntime", "py-evm", "date"):
        assert results["machine"][key], key
    json.loads(json.dumps(results, default=str))  # what main writes
    report = bench.format_report(results)
    assert "INLINE / PIPE" in report and "Targets" in report


def test_requests_come_from_calldata(bench):
    store, infos = bench.fixture_store(["small_mlp"])
    (request,) = bench.inference_requests(infos["small_mlp"], 1)
    assert request.feeds["x"].shape == (1, 8) and request.samples == 1 and len(request.digest) == 32
