"""Every ``ogevm bench`` scenario runs at its smallest size and reports every number."""

from __future__ import annotations

import importlib.util
import json
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ogevm.abi.llm import LLMChatRequest, decode_chat_response
from ogevm.bench import load_scenario, run_scenario, scenario_names, summary_markdown, summary_rows, write_result
from ogevm.cli import main
from ogevm.constants import INFERENCE_PRECOMPILE_ADDRESS
from ogevm.models.store import ModelStore
from ogevm.vm.chain import DevChain

SCENARIOS = (
    "block_building",
    "end_to_end",
    "model_sweep",
    "llm_point",
    "executor_scaling",
    "precompile_overhead",
    "mempool_simulation",
    "validator",
    "verification",
    "ray_executor",
    "gas_calibration",
    "rpc_burst",
)
MACHINE_KEYS = ("date", "cpu_count", "cpu_model", "python", "numpy", "onnxruntime", "py-evm", "git_commit")
TARGET_KEYS = ("key", "target", "op", "threshold", "value", "unit", "met", "status", "context")
_results: dict[str, dict] = {}


def positive(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def result(name: str) -> dict:
    """The scenario's smoke-size result, run once per test session."""
    if name not in _results:
        _results[name] = run_scenario(name, "smoke")
    return _results[name]


def test_every_scenario_is_listed():
    assert scenario_names() == SCENARIOS
    for name in SCENARIOS:
        module = load_scenario(name)
        assert set(module.SIZES) == {"smoke", "quick", "full"} and module.TITLE


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_reports_every_key(name):
    r = result(name)
    assert r["scenario"] == name and r["size"] == "smoke" and positive(r["wall_s"])
    for key in MACHINE_KEYS:
        assert key in r["machine"], key
    for key in ("date", "python", "numpy", "onnxruntime", "py-evm"):
        assert r["machine"][key], key
    assert positive(r["machine"]["cpu_count"])
    assert r["targets"], "every scenario states at least one target"
    for t in r["targets"]:
        assert set(TARGET_KEYS) <= set(t), t
        assert t["status"] in ("met", "not met", "n/a") and (t["met"] is None) == (t["status"] == "n/a")
        assert t["met"] is None or positive(t["value"]), t
    for line in r["table"]:
        assert line["label"] and (line["value"] is None or positive(line["value"])), line
    missed = any(t["met"] is False for t in r["targets"])
    assert ("profile" in r) == missed, "a profile exactly when a target is not met"
    if missed:
        assert all(p for p in r["profile"].values())
    json.loads(json.dumps(r))  # what the runner writes


def test_block_building_numbers():
    runs = result("block_building")["results"]["runs"]
    assert set(runs) == {"small_mlp/4", "heavy/4"}
    for run in runs.values():
        for key in ("inline_s", "pipe_build_s", "evm_only_s", "inline_vs_pipe", "pipe_vs_evm_only", "prepare_s",
                    "prepare_simulation_s", "prepare_executor_s", "pipe_vs_evm_only_median_block",
                    "pipe_vs_evm_only_paired", "inline_vs_pipe_paired"):
            assert positive(run[key]), key
        assert run["identical_blocks"] is True and run["prepare_requests_executed"] == 4
        assert sum(b["txs"] for b in run["per_block"]) == 4


def test_end_to_end_numbers():
    w = result("end_to_end")["results"]["workloads"]["direct"]
    for mode in ("pipe", "inline_one_by_one", "inline_packed"):
        m = w["median"][mode]
        assert positive(m["throughput_tx_s"]) and positive(m["latency_p50_s"]), mode
        assert m["latency_p99_s"] >= m["latency_p50_s"]
    assert positive(w["throughput_vs_inline_one_by_one"]) and positive(w["throughput_vs_inline_packed"])
    assert 2.0 <= w["median"]["pipe"]["evm_passes_per_tx"] < 4  # one simulation + the replay, at least


def test_model_sweep_numbers():
    r = result("model_sweep")["results"]
    (point,) = r["workloads"]["direct"]["points"]
    assert point["model"] == "sweep_1ms" and point["n"] == 4
    for key in ("model_ms", "executor_ms", "evm_ms", "cpu_work_per_tx_ms", "bound_tx_s", "pipe_tx_s",
                "inline_one_by_one_tx_s", "inline_packed_tx_s", "pipe_vs_bound", "pipe_vs_inline_one_by_one"):
        assert positive(point[key]), key
    # The bound is the formula of the measured times: the replay thread, or the work on every core.
    work_ms = 2 * point["evm_ms"] + point["executor_ms"]
    assert point["cpu_work_per_tx_ms"] == pytest.approx(work_ms)
    assert point["bound_tx_s"] == pytest.approx(1e3 / max(point["evm_ms"], work_ms / r["cores"]))
    assert 2.0 <= point["evm_passes_per_tx"] < 4


def test_model_sweep_crossover():
    crossover = load_scenario("model_sweep")._crossover

    def points(*gaps):
        return [{"model_ms": m, "pipe_tx_s": 10 + gap, "inline_one_by_one_tx_s": 10} for m, gap in gaps]

    # Unsorted on purpose: the crossing is found by model time, linearly between the points around it.
    assert crossover(points((20, 3), (1, -4), (5, -2)))["model_ms"] == pytest.approx(5 + 15 * 2 / 5)
    assert crossover(points((1, 0), (5, 1)))["model_ms"] is None  # ahead everywhere
    assert "behind at 5.0 ms" in crossover(points((1, -1), (5, -1)))["where"]
    assert crossover(points((1, 1), (5, -1)))["model_ms"] is None  # falls behind: no crossing from below


def test_llm_point_numbers():
    r = result("llm_point")["results"]
    points = r["points"]
    assert set(points) == {"tiny_chat", "tiny_chat_slow"} and r["bound"] == min(r["workers"], r["cores"])
    for p in points.values():
        assert p["n"] == 4
        for mode in ("pipe", "inline_one_by_one"):
            for key in ("throughput_tx_s", "cores_used", "cpu_ms_per_tx"):
                assert positive(p["median"][mode][key]), (mode, key)
        cpu = {mode: p["median"][mode]["cpu_ms_per_tx"] for mode in ("pipe", "inline_one_by_one")}
        assert p["cpu_ceiling"] == pytest.approx(r["bound"] * cpu["inline_one_by_one"] / cpu["pipe"])
        for key in ("model_s_per_call", "tokens_per_call", "tokens_per_s", "ms_per_token", "gas_per_token"):
            assert positive(p["raw"][key]), key
        assert p["pipe_vs_inline_one_by_one"] == pytest.approx(
            p["median"]["pipe"]["throughput_tx_s"] / p["median"]["inline_one_by_one"]["throughput_tx_s"])
        assert p["vs_bound"] == pytest.approx(p["pipe_vs_inline_one_by_one"] / r["bound"])
        assert 2.0 <= p["median"]["pipe"]["evm_passes_per_tx"] < 4
        assert 0 < p["median"]["pipe"]["cores_available"] <= r["workers"] + 0.2
    # The burn chain is paid for: gas per token follows the store's static cost.
    assert points["tiny_chat_slow"]["raw"]["gas_per_token"] > 10 * points["tiny_chat"]["raw"]["gas_per_token"]


@pytest.fixture(scope="module")
def llm_models():
    from ogevm.llm.model import WindowModel

    point = load_scenario("llm_point")
    base = point.fixture_bytes()
    return point, WindowModel(base), WindowModel(point.slow_variant(base))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(window=st.lists(st.integers(0, 259), min_size=6, max_size=6))
def test_llm_point_slow_variant_keeps_the_logits(llm_models, window):
    _, base, slow = llm_models
    assert np.array_equal(base.run(window), slow.run(window))  # -inf included, bit for bit


def test_llm_point_slow_variant_is_another_model_priced_for_its_work(llm_models):
    point, base, slow = llm_models
    assert (slow.name, slow.window) == (point.SLOW_MODEL, base.window) and slow.cid != base.cid
    # SLOW_ROUNDS products of [1, W] x [W, W] at 2 W^2 ops each, MODEL_OPS_PER_GAS ops per gas
    assert slow.cost_per_token - base.cost_per_token >= point.SLOW_ROUNDS * 2 * point.SLOW_WIDTH ** 2 // 1000
    assert point.slow_variant(point.fixture_bytes()) == point.slow_variant(point.fixture_bytes())
    store = ModelStore()
    assert store.add_llm(point.slow_variant(point.fixture_bytes())).cid == slow.cid
    assert store.llms.model(point.SLOW_MODEL).cid == slow.cid


def test_llm_point_probe_counts_the_cores_its_threads_ran_on():
    # CPU time over wall time: one thread can run on at most one core.
    assert 0 < load_scenario("llm_point").available_cores(1, 0.05) <= 1.1


def test_llm_point_burst_mixes_completions_and_forced_tool_calls():
    point = load_scenario("llm_point")
    calls = point.llm_calls("tiny_chat", 8)
    chats = [k for k, c in enumerate(calls) if isinstance(c, LLMChatRequest)]
    assert chats == [3, 7] and all(calls[k].tool_choice == "required" and calls[k].tools for k in chats)
    assert all(64 <= c.max_tokens <= 128 for c in calls)
    chain = DevChain()
    for k, call in enumerate(calls):
        data = point.calldata(call)
        gas = point.transaction_gas(chain, call, data)
        # A transaction's gas limit covers what it spends, and it goes through INLINE.
        result = chain.send(0, INFERENCE_PRECOMPILE_ADDRESS, data, gas=gas)
        assert result.success and result.gas_used <= gas
        if k in chats:
            assert decode_chat_response(result.return_data).finish_reason == "tool_calls"


def test_executor_scaling_numbers():
    models = result("executor_scaling")["results"]["models"]
    assert set(models) == {"small_mlp", "heavy"}
    for m in models.values():
        for name in ("raw_loop/1", "raw_stacked/1", "executor_unbatched/1", "executor_batched/1", "sign"):
            assert positive(m["configs"][name]["requests_per_s"]), name
        for key in ("batched_vs_unbatched_1w", "unbatched_scaling", "best_executor_vs_best_raw",
                    "signing_us_per_record"):
            assert positive(m[key]), key


def test_precompile_overhead_numbers():
    models = result("precompile_overhead")["results"]["models"]
    for m in models.values():
        for key in ("direct_us", "precompile_us", "identity_dispatch_us", "stages_total_us"):
            assert positive(m[key]), key
        assert m["precompile_us"] > m["direct_us"]
        assert set(m["stages_us"]) == {"decode", "check_structure", "bind_inputs", "encode_outputs", "encode_output",
                                       "encode_event"}


def test_mempool_simulation_numbers():
    r = result("mempool_simulation")["results"]
    for key in ("capture_tx_s", "raw_tx_s", "capture_vs_raw", "capture_vs_raw_paired"):
        assert positive(r[key]), key


def test_validator_numbers():
    m = result("validator")["results"]["models"]["heavy"]
    assert m["blocks"] >= 1 and positive(m["import_s"]) and positive(m["build_s"])
    assert positive(m["import_vs_build"]) and positive(m["import_vs_build_paired"])


def test_verification_numbers():
    r = result("verification")
    modes = r["results"]["modes"]
    for mode in ("VANILLA", "TEE"):
        assert positive(modes[mode]["total_us"]) and positive(modes[mode]["total_vs_vanilla"])
    zkml = next(t for t in r["targets"] if t["key"] == "zkml_vs_vanilla")
    available = importlib.util.find_spec("ezkl") is not None
    assert ("ZKML" in modes) == available == r["results"]["zkml"]["available"]
    assert (zkml["status"] == "n/a") == (not available)


def test_gas_calibration_numbers():
    r = result("gas_calibration")["results"]
    assert set(r["cases"]) == {"small_mlp/1", "small_mlp/4", "heavy/1", "heavy/4"}
    for case in r["cases"].values():
        assert positive(case["ns_per_gas"]) and case["gas_used"] > case["model_gas"] > 0
    assert r["cases"]["heavy/4"]["model_gas"] > 3 * r["cases"]["heavy/1"]["model_gas"]
    assert r["spread"] >= 1


def test_outputs_and_table(tmp_path):
    r = dict(result("precompile_overhead"))
    paths = write_result(r, tmp_path)
    assert paths[0] == tmp_path / "precompile_overhead.json"
    written = json.loads(paths[0].read_text())
    assert written["targets"] == r["targets"]
    if importlib.util.find_spec("matplotlib") is not None:
        assert (tmp_path / "precompile_overhead.png").stat().st_size > 0 and written["plot"] == "precompile_overhead.png"
    rows = summary_rows([r])
    assert rows[0]["status"] in ("met", "not met") and "small_mlp" in rows[0]["measurement"]
    assert summary_markdown([r]).startswith("| scenario |")


def test_cli_rejects_unknown_scenario(tmp_path, capsys):
    assert main(["bench", "--scenario", "no_such_scenario", "--out", str(tmp_path)]) == 1
    assert "unknown scenario" in capsys.readouterr().err
