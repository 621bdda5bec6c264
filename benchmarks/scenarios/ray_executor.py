"""8. The Ray backend against the thread pool: what shipping jobs to actors costs.

The same N requests per model, built as the precompile builds them, run through
``InferenceExecutor.execute`` on two backends with the same number of workers, batched
and unbatched, measured round-robin (median of repeats):

* ``ThreadPoolBackend``: threads of this process, one node identity;
* ``RayBackend``: Ray actors on a local cluster (started by the scenario), one node
  identity each; jobs are pickled to the actors (up to 8 per Ray call, the default) and
  their records back;
* raw onnxruntime in a loop on one thread: the floor no backend goes under.

The overhead per request is reported as a ratio (Ray / threads) and in microseconds
((Ray - threads) / N). On one machine Ray can only add cost; it pays off when the actors
run on other machines (docs/SPEC.md, "Inference nodes on several machines").
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    NODE_KEY,
    fixture_store,
    inference_requests,
    interleaved_medians,
    plain_session,
    profile_call,
    ratio,
    row,
    target,
)
from ogevm.models.runtime import ModelRuntime
from ogevm.pipe.executor import InferenceExecutor, local_executor

TITLE = "Ray backend vs thread pool: overhead per request"
SIZES = {
    "smoke": {"models": {"small_mlp": 8, "heavy": 4}, "repeats": 1, "workers": 2},
    "quick": {"models": {"small_mlp": 300, "heavy": 30}, "repeats": 3, "workers": 2},
    "full": {"models": {"small_mlp": 2000, "heavy": 200}, "repeats": 5, "workers": 2},
}
#: heavy (a ~5 ms model), unbatched: Ray may cost at most this much more than threads.
HEAVY_RAY_VS_THREADS_MAX = 1.25


def measure(model: str, n: int, repeats: int, workers: int, on_run=lambda name: None) -> dict[str, Any]:
    from ogevm.pipe.ray_backend import RayBackend, WorkerGroup

    store, infos = fixture_store([model])
    requests = inference_requests(infos[model], n)
    feeds = [dict(r.feeds) for r in requests]
    session = plain_session(store.load(infos[model].cid))
    ray_backend = RayBackend(store, groups=(WorkerGroup(workers),))
    executors = {}
    for batching in (False, True):
        kind = "batched" if batching else "unbatched"
        executors[f"threads_{kind}"] = local_executor(ModelRuntime(store), NODE_KEY, workers, batching=batching)
        executors[f"ray_{kind}"] = InferenceExecutor(ray_backend, store, batching=batching)
    try:
        for executor in executors.values():  # sessions, actors' model copies, first-call paths
            executor.execute(requests[:8])
        measurements = {name: (lambda ex=executor: ex.execute(requests)) for name, executor in executors.items()}
        measurements["raw_loop"] = lambda: [session.run(None, f) for f in feeds]
        stats, last = interleaved_medians(measurements, repeats, on_run)
        profile = _profile(executors["ray_unbatched"], requests, model, workers)
    finally:
        for name, executor in executors.items():
            if name.startswith("threads"):
                executor.close()
        ray_backend.close()
    reference = [r.result for r in last["threads_unbatched"]]
    for name in executors:
        if [r.result for r in last[name]] != reference:
            raise RuntimeError(f"{model}: {name} gave other results than the thread pool")
    us = {name: s["seconds"] / n * 1e6 for name, s in stats.items()}
    return {
        "model": model, "n": n, "repeats": repeats, "workers": workers,
        "us_per_request": us,
        "cpu_seconds": {name: s["cpu_seconds"] for name, s in stats.items()},
        "runs_s": {name: s["runs_s"] for name, s in stats.items()},
        "ray_vs_threads_unbatched": ratio(us["ray_unbatched"], us["threads_unbatched"]),
        "ray_vs_threads_batched": ratio(us["ray_batched"], us["threads_batched"]),
        "ray_overhead_us_unbatched": us["ray_unbatched"] - us["threads_unbatched"],
        "ray_overhead_us_batched": us["ray_batched"] - us["threads_batched"],
        "raw_us_per_request": us["raw_loop"],
        "profile": profile,
    }


def _profile(executor: InferenceExecutor, requests, model: str, workers: int) -> dict[str, Any]:
    """One more unbatched Ray run: the driver thread's CPU profile (submitting pickles each
    job), and how much of the wall time the actors spent running jobs (the rest is Ray's
    transport and scheduling, and the driver)."""
    executor.run_seconds.clear()
    start = time.perf_counter()
    _, summary = profile_call(lambda: executor.execute(requests), f"Ray executor, {model} unbatched (driver thread)",
                              cpu_clock=True)
    wall = time.perf_counter() - start
    busy = sum(executor.run_seconds.values())
    summary["findings"].insert(0, f"actors ran jobs {busy / (wall * workers) * 100:.0f}% of {workers} x "
                                  f"{wall * 1e3:.0f} ms wall ({busy / len(requests) * 1e6:.0f} us per request in the "
                                  f"worker, {wall / len(requests) * 1e6:.0f} us per request end to end)")
    return summary


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    from importlib.util import find_spec

    repeats, workers = config["repeats"], config["workers"]
    if find_spec("ray") is None:
        reporter.total(1)
        reporter.step("ray not installed")
        return {"results": {"skipped": "ray is not installed (pip install 'ogevm[ray]')"},
                "targets": [target("heavy_ray_vs_threads", "heavy unbatched: Ray / threads", "<=",
                                   HEAVY_RAY_VS_THREADS_MAX, None, "ray is not installed")],
                "table": []}
    reporter.total(repeats * 5 * len(config["models"]) + 1)
    models = {}
    for model, n in config["models"].items():
        reporter.note(f"{model} N={n}")
        models[model] = measure(model, n, repeats, workers, on_run=lambda name, m=model: reporter.step(f"{m}: {name}"))
    targets, table = [], []
    profiles = {f"{model} Ray unbatched": m.pop("profile") for model, m in models.items()}
    heavy = models.get("heavy")
    if heavy is not None:
        targets.append(target(
            "heavy_ray_vs_threads", f"heavy unbatched, {workers} workers: Ray / threads <= "
                                    f"{HEAVY_RAY_VS_THREADS_MAX:g}x", "<=", HEAVY_RAY_VS_THREADS_MAX,
            heavy["ray_vs_threads_unbatched"],
            f"+{heavy['ray_overhead_us_unbatched']:.0f} us per request on a "
            f"{heavy['raw_us_per_request']:.0f} us model"))
    for model, m in models.items():
        us = m["us_per_request"]
        for kind in ("unbatched", "batched"):
            table.append(row(f"{model}: Ray / threads ({kind}, {workers} workers)", m[f"ray_vs_threads_{kind}"], "x",
                             f"{us[f'ray_{kind}']:.0f} vs {us[f'threads_{kind}']:.0f} us/request "
                             f"(+{m[f'ray_overhead_us_{kind}']:.0f} us); raw ORT {m['raw_us_per_request']:.0f} us"))
    reporter.step("done", max(0.0, reporter.steps - reporter.done))
    result = {"results": {"models": models}, "targets": targets, "table": table}
    if any(t["met"] is False for t in targets):
        result["profile"] = profiles
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    models = result["results"].get("models", {})
    if not models:
        return
    names = ["raw_loop", "threads_unbatched", "ray_unbatched", "threads_batched", "ray_batched"]
    colors = ["gray", "tab:red", "tab:orange", "tab:blue", "tab:cyan"]
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    for ax, (model, m) in zip(axes[0], models.items()):
        values = [m["us_per_request"][name] for name in names]
        ax.bar(range(len(names)), values, color=colors)
        ax.set_xticks(range(len(names)), [name.replace("_", "\n") for name in names], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylabel("microseconds per request")
        ax.set_title(f"{model}, N={m['n']}, {m['workers']} workers")
        ax.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
