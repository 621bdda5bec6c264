"""Model-time sweep: PIPE and INLINE throughput against the bound PIPE can reach here.

The sweep models (``fixtures/models/sweep/``) do heavy's per-sample work with a number of
rounds chosen for about 1, 5, 20 and 50 ms per sample, behind heavy's interface, so the
transactions are the same at every point: ``direct`` (straight to ``0x…F4``) and
``forecast`` (``PriceForecast.forecast``). At each point, the burst of the end-to-end
scenario runs in its four modes (PIPE through a real ``DevNode`` with its default
simulation workers, INLINE one by one, INLINE packed, EVM-only packed), and beside it:

* ``M``: the raw model time, ``session.run`` of a plain single-threaded session;
* ``X``: the executor's time per request, one worker, unbatched: ``M`` plus signing the
  record and the executor's own work;
* ``E``: the EVM-only time per transaction (packed blocks, every request answered at once:
  execution, sealing, persisting), which is what the builder's replay costs.

The **bound** of PIPE on this machine, in transactions per second, is
``1 / max(E, (2 E + X) / cores)``: the replay runs on the producer's one Python thread
(``E`` per transaction at best), and every transaction needs at least two EVM passes (its
simulation, at raw py-evm speed, and the replay) plus its inference, on ``cores`` cores.
The crossover is the model time where PIPE's throughput meets INLINE one by one's,
interpolated between the two points around it.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

from benchmarks.common import (
    NODE_KEY,
    BenchModel,
    compare_bursts,
    inference_requests,
    interleaved_medians,
    pipe_burst,
    plain_session,
    ratio,
    row,
    target,
)
from ogevm.fixtures import fixture_model
from ogevm.models.runtime import ModelRuntime
from ogevm.models.store import ModelStore
from ogevm.pipe.executor import InferenceExecutor, ThreadPoolBackend
from ogevm.pipe.worker import InferenceWorker

TITLE = "Model-time sweep: PIPE and INLINE throughput vs model time, against PIPE's bound"
SWEEP_MODELS = ("sweep_1ms", "sweep_5ms", "sweep_20ms", "sweep_50ms")
SIZES = {
    "smoke": {"models": ["sweep_1ms"], "workloads": {"direct": 4}, "repeats": 1, "raw_calls": 5, "raw_repeats": 1,
              "profile_n": 4},
    "quick": {"models": list(SWEEP_MODELS), "workloads": {"direct": 40, "forecast": 40}, "repeats": 1,
              "raw_calls": 20, "raw_repeats": 3, "profile_n": 20},
    "full": {"models": list(SWEEP_MODELS), "workloads": {"direct": 200, "forecast": 200}, "repeats": 1,
             "raw_calls": 40, "raw_repeats": 5, "profile_n": 40},
}
FOLDER = "sweep"
BOUND_SHARE_MIN = 0.8
VS_INLINE_MIN = 1.0
#: PIPE / INLINE one by one on direct transactions at the 50 ms point.
VS_INLINE_50MS_MIN = 1.5
#: Gas headroom above the model's gas, as heavy's limits in benchmarks/common.py have.
DIRECT_GAS_HEADROOM = 300_000
FORECAST_GAS_HEADROOM = 400_000


def _bench_model(name: str, store: ModelStore):
    """The sweep model ``name`` (added to ``store``) and its transactions' gas limits."""
    info = store.add_file(fixture_model(f"{FOLDER}/{name}"))
    model_gas = info.cost.gas({"batch": 1}, 1)
    return BenchModel(name, info.inputs[0].shape[1], forecast_gas=model_gas + FORECAST_GAS_HEADROOM,
                      direct_gas=model_gas + DIRECT_GAS_HEADROOM, folder=FOLDER), info


def _model_times(store: ModelStore, info, calls: int, repeats: int) -> dict[str, float]:
    """Seconds per sample of raw onnxruntime in a loop (``M``) and of the executor, one
    worker, unbatched (``X``: M, signing the records and the executor's own work), on the
    same requests; medians of ``repeats`` interleaved runs."""
    requests = inference_requests(info, calls)
    feeds = [dict(request.feeds) for request in requests]
    session = plain_session(store.load(info.cid))
    backend = ThreadPoolBackend(InferenceWorker(ModelRuntime(store), NODE_KEY), 1)
    try:
        executor = InferenceExecutor(backend, store, batching=False)
        records = executor.execute(requests[:2])  # warms the runtime's session
        failed = [record.result.error for record in records if record.result.error is not None]
        if failed:
            raise RuntimeError(f"{info.cid}: {failed[0]}")
        session.run(None, feeds[0])
        stats, _ = interleaved_medians({"model_s": lambda: [session.run(None, f) for f in feeds],
                                        "executor_s": lambda: executor.execute(requests)}, repeats)
    finally:
        backend.close()
    return {name: stat["seconds"] / calls for name, stat in stats.items()}


def _bound(evm_s: float, executor_s: float, cores: int) -> dict[str, Any]:
    """PIPE's bound here: the replay's one thread, or 2 EVM passes + inference on every core."""
    work_s = 2 * evm_s + executor_s
    return {"cpu_work_per_tx_s": work_s, "bound_tx_s": 1 / max(evm_s, work_s / cores),
            "bound_by": "replay thread" if evm_s >= work_s / cores else "cores"}


def _crossover(points: list[dict[str, Any]]) -> dict[str, Any]:
    """Where PIPE's throughput meets INLINE one by one's, by model time (linear between the
    two points around the first crossing from below)."""
    gaps = sorted((p["model_ms"], p["pipe_tx_s"] - p["inline_one_by_one_tx_s"]) for p in points)
    if all(gap >= 0 for _, gap in gaps):
        return {"model_ms": None, "where": f"PIPE ahead at every point (from {gaps[0][0]:.1f} ms)"}
    for (m0, g0), (m1, g1) in zip(gaps, gaps[1:]):
        if g0 < 0 <= g1:
            return {"model_ms": m0 + (m1 - m0) * -g0 / (g1 - g0), "where": f"between {m0:.1f} and {m1:.1f} ms"}
    behind = max(m for m, gap in gaps if gap < 0)
    return {"model_ms": None, "where": f"PIPE never catches up from behind (behind at {behind:.1f} ms)"}


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    workers = config.get("workers") or cores
    repeats = config["repeats"]
    reporter.total(len(config["models"]) * sum(config["workloads"].values()) * repeats * 4)
    store = ModelStore()
    models, times = {}, {}
    points: dict[str, list[dict[str, Any]]] = {workload: [] for workload in config["workloads"]}
    for name in config["models"]:
        # M and X next to the point's bursts: this machine's speed drifts over minutes.
        reporter.note(f"{name}: raw model and executor times")
        models[name], info = _bench_model(name, store)
        times[name] = _model_times(store, info, config["raw_calls"], config["raw_repeats"])
        for workload, n in config["workloads"].items():
            # PIPE needs every core and INLINE one: other processes' load weighs on PIPE more.
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
            runs, m = compare_bursts(models[name], workload, n, repeats, workers, reporter)
            evm_s = m["evm_only_packed"]["seconds"] / n
            bound = _bound(evm_s, times[name]["executor_s"], cores)
            points[workload].append({
                "model": name, "n": n, "runs": runs, "median": m, "load_average_1min": load,
                "model_ms": times[name]["model_s"] * 1e3, "executor_ms": times[name]["executor_s"] * 1e3,
                "evm_ms": evm_s * 1e3, "cpu_work_per_tx_ms": bound["cpu_work_per_tx_s"] * 1e3,
                "bound_tx_s": bound["bound_tx_s"], "bound_by": bound["bound_by"],
                "pipe_tx_s": m["pipe"]["throughput_tx_s"],
                "inline_one_by_one_tx_s": m["inline_one_by_one"]["throughput_tx_s"],
                "inline_packed_tx_s": m["inline_packed"]["throughput_tx_s"],
                "pipe_vs_bound": ratio(m["pipe"]["throughput_tx_s"], bound["bound_tx_s"]),
                "pipe_vs_inline_one_by_one": ratio(m["pipe"]["throughput_tx_s"],
                                                   m["inline_one_by_one"]["throughput_tx_s"]),
                "pipe_vs_inline_packed": ratio(m["pipe"]["throughput_tx_s"], m["inline_packed"]["throughput_tx_s"]),
                "evm_passes_per_tx": m["pipe"]["evm_passes_per_tx"],
            })
    crossovers = {workload: _crossover(ps) for workload, ps in points.items()}
    targets, table, profile_points = [], [], {}
    for workload, ps in points.items():
        worst = min(ps, key=lambda p: p["pipe_vs_bound"])
        targets.append(target(
            f"bound/{workload}", f"PIPE throughput >= {BOUND_SHARE_MIN:g}x its bound at every model time "
                                 f"({workload}, N={ps[0]['n']}, {cores} cores)",
            ">=", BOUND_SHARE_MIN, worst["pipe_vs_bound"],
            "; ".join(f"{p['model_ms']:.1f} ms: {p['pipe_tx_s']:.1f} of {p['bound_tx_s']:.1f} tx/s "
                      f"({p['pipe_vs_bound']:.2f}x, bound by the {p['bound_by']})" for p in ps)))
        profile_points[f"bound/{workload}"] = worst
        above_evm = [p for p in ps if p["model_ms"] >= p["evm_ms"]]
        worst_above = min(above_evm, key=lambda p: p["pipe_vs_inline_one_by_one"]) if above_evm else None
        targets.append(target(
            f"vs_inline/{workload}", f"PIPE >= INLINE one by one at every model time >= E ({workload}; "
                                     f"crossover at or below M = E)",
            ">=", VS_INLINE_MIN, worst_above["pipe_vs_inline_one_by_one"] if worst_above else None,
            f"crossover {_ms(crossovers[workload]['model_ms'])} ({crossovers[workload]['where']}); E "
            + ", ".join(f"{p['evm_ms']:.1f} ms at M = {p['model_ms']:.1f} ms "
                        f"(PIPE/INLINE {p['pipe_vs_inline_one_by_one']:.2f}x)" for p in ps)))
        if worst_above is not None:
            profile_points[f"vs_inline/{workload}"] = worst_above
        for p in ps:
            table.append(row(f"{workload}, M = {p['model_ms']:.1f} ms: PIPE / INLINE one by one",
                             p["pipe_vs_inline_one_by_one"], "x",
                             f"PIPE {p['pipe_tx_s']:.1f}, INLINE one by one {p['inline_one_by_one_tx_s']:.1f}, "
                             f"packed {p['inline_packed_tx_s']:.1f}, bound {p['bound_tx_s']:.1f} tx/s; "
                             f"E {p['evm_ms']:.1f} ms, executor {p['executor_ms']:.1f} ms per tx; "
                             f"{p['evm_passes_per_tx']:.2f} EVM passes per tx"))
    direct = points.get("direct", [])
    at_50 = next((p for p in direct if p["model"] == "sweep_50ms"), None)
    targets.append(target(
        "vs_inline/direct/50ms", f"PIPE >= {VS_INLINE_50MS_MIN:g}x INLINE one by one on direct transactions "
                                 "at the 50 ms point",
        ">=", VS_INLINE_50MS_MIN, at_50["pipe_vs_inline_one_by_one"] if at_50 else None,
        f"{at_50['pipe_tx_s']:.1f} vs {at_50['inline_one_by_one_tx_s']:.1f} tx/s (M = {at_50['model_ms']:.1f} ms)"
        if at_50 else "sweep_50ms not in this size"))
    if at_50 is not None:
        profile_points["vs_inline/direct/50ms"] = at_50
    result: dict[str, Any] = {"results": {"cores": cores, "workers": workers,
                                          "model_times_ms": {name: {key.replace("_s", "_ms"): value * 1e3
                                                                    for key, value in t.items()}
                                                             for name, t in times.items()},
                                          "workloads": {workload: {"points": ps, "crossover": crossovers[workload]}
                                                        for workload, ps in points.items()}},
                              "targets": targets, "table": table}
    missed = {}
    for t in targets:
        if t["met"] is False:
            p = profile_points[t["key"]]
            workload = t["key"].split("/")[1]
            missed.setdefault((p["model"], workload), p)
    if missed:
        reporter.note("profiling the producer thread")
        result["profile"] = {f"{name}/{workload}": pipe_burst(models[name], workload, min(config["profile_n"], p["n"]),
                                                               workers, profile=True)["profile"]
                             for (name, workload), p in missed.items()}
    reporter.step("done", max(0.0, reporter.steps - reporter.done))
    return result


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:g}")  # 20, not 2 x 10^1, on log axes

    workloads = result["results"]["workloads"]
    lines = (("pipe_tx_s", "PIPE dev node", "tab:green", "o-"),
             ("inline_one_by_one_tx_s", "INLINE, one tx per block", "tab:red", "s-"),
             ("inline_packed_tx_s", "INLINE, packed blocks", "tab:orange", "^-"),
             ("bound_tx_s", f"PIPE bound on {result['results']['cores']} cores", "black", "--"))
    fig, axes = plt.subplots(1, len(workloads), figsize=(6 * len(workloads), 4.5), squeeze=False)
    for ax, (workload, w) in zip(axes[0], workloads.items()):
        ps = w["points"]
        model_ms = [p["model_ms"] for p in ps]
        for key, label, color, style in lines:
            ax.plot(model_ms, [p[key] for p in ps], style, color=color, label=label)
        evm_ms = statistics.median(p["evm_ms"] for p in ps)
        ax.axvline(evm_ms, color="tab:gray", linestyle=":", label=f"E = {evm_ms:.1f} ms (EVM-only per tx)")
        crossing = w["crossover"]["model_ms"]
        if crossing is not None:
            ax.axvline(crossing, color="tab:purple", label=f"crossover M = {crossing:.1f} ms")
        if len(ps) > 1:
            ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(model_ms, [f"{m:.1f}" for m in model_ms])  # the sweep's points
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.set_xlabel("model time M per sample, ms (raw onnxruntime, one thread)")
        ax.set_ylabel("transactions per second")
        ax.set_title(f"{workload}, N={ps[0]['n']}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
