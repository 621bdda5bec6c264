"""3. Executor scaling: workers 1..CPUs, batched vs unbatched, vs raw onnxruntime.

N requests per model, built the way the precompile builds them from real calldata.
Configurations, all on the same requests and measured round-robin (median of repeats):

* ``InferenceExecutor.execute`` with ``ThreadPoolBackend(w)`` for w = 1..CPU count, with
  ``batching=False`` (one onnxruntime run per request, each record signed alone) and
  ``batching=True`` (requests stacked up to ``max_batch`` rows, each job's records signed
  as one batch); each returns signed records;
* raw onnxruntime on the same feeds, the physical limit: one plain single-threaded
  session, the loop of runs split over w threads (``raw loop``) and the stacked feeds
  split in w chunks run on w threads (``raw stacked``);
* signing alone: ``ResultSigner.sign`` of every result (the unbatched executor's signing)
  and ``ResultSigner.sign_batch`` of the results in batches of the batched executor's jobs
  (its signing: one signature and a Merkle tree per job).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmarks.common import (
    NODE_KEY,
    ProfiledBackend,
    ThreadProfiles,
    fixture_store,
    inference_requests,
    interleaved_medians,
    plain_session,
    ratio,
    row,
    target,
)
from ogevm.models.runtime import ModelRuntime
from ogevm.pipe.executor import InferenceExecutor, ThreadPoolBackend
from ogevm.pipe.worker import InferenceWorker
from ogevm.verify.vanilla import ResultSigner

TITLE = "Executor scaling: workers, batching, vs raw onnxruntime"
SIZES = {
    "smoke": {"models": {"small_mlp": 8, "heavy": 4}, "repeats": 1},
    "quick": {"models": {"small_mlp": 300, "heavy": 30}, "repeats": 3},
    "full": {"models": {"small_mlp": 2000, "heavy": 200}, "repeats": 5},
}
#: Speed-up from 1 worker to all CPUs on heavy, per CPU (1.7x on 2 CPUs).
SCALING_PER_CPU_MIN = 0.85
#: The executor against raw onnxruntime with as many threads (heavy, unbatched).
EXECUTOR_VS_RAW_MIN = 0.8
#: Batched (batch-signed) vs unbatched (signed per record) executor on small_mlp, 1 worker.
BATCHING_MIN = 5.0


def _split(items: list, parts: int) -> list[list]:
    size = -(-len(items) // parts)
    return [items[i:i + size] for i in range(0, len(items), size)]


def measure(model: str, n: int, repeats: int, workers: list[int], on_run: Callable[[str], None] = lambda _: None,
            profile_config: tuple[int, bool] | None = None) -> dict[str, Any]:
    """Every configuration on ``n`` requests; with ``profile_config`` = (workers, batching),
    only that executor configuration, run once under cProfile in its worker threads."""
    store, infos = fixture_store([model])
    info = infos[model]
    requests = inference_requests(info, n)
    runtime = ModelRuntime(store)
    if profile_config is not None:
        profiles = ThreadProfiles()
        count, batching = profile_config
        backend = ProfiledBackend(InferenceWorker(runtime, NODE_KEY), count, profiles)
        try:
            executor = InferenceExecutor(backend, store, batching=batching)
            executor.execute(requests[:8])
            executor.execute(requests)
        finally:
            backend.close()
        return profiles.summary(f"executor {count} worker(s), {'batched' if batching else 'unbatched'}, {model} "
                                f"N={n} (worker threads)")

    feeds = [dict(r.feeds) for r in requests]
    stacked = {name: np.concatenate([f[name] for f in feeds]) for name in feeds[0]}
    session = plain_session(store.load(info.cid))
    pools = {w: ThreadPoolExecutor(max_workers=w) for w in workers if w > 1}
    backends = {w: ThreadPoolBackend(InferenceWorker(runtime, NODE_KEY), w) for w in workers}
    measurements: dict[str, Callable[[], Any]] = {}
    for w in workers:
        loop_parts = _split(feeds, w)
        stacked_parts = [{name: part for name, part in zip(stacked, chunk)}
                         for chunk in zip(*(np.array_split(array, w) for array in stacked.values()))]
        if w == 1:
            measurements["raw_loop/1"] = lambda: [session.run(None, f) for f in feeds]
            measurements["raw_stacked/1"] = lambda: session.run(None, stacked)
        else:
            pool = pools[w]
            measurements[f"raw_loop/{w}"] = (lambda pool=pool, parts=loop_parts: list(
                pool.map(lambda part: [session.run(None, f) for f in part], parts)))
            measurements[f"raw_stacked/{w}"] = (lambda pool=pool, parts=stacked_parts: list(
                pool.map(lambda part: session.run(None, part), parts)))
    executors = {}
    for w in workers:
        for batching in (False, True):
            name = f"executor_{'batched' if batching else 'unbatched'}/{w}"
            executors[name] = InferenceExecutor(backends[w], store, batching=batching)
    try:
        for f in feeds[:5]:  # warm up sessions, threads and first-call paths
            session.run(None, f)
        session.run(None, stacked)
        for executor in executors.values():
            executor.execute(requests[:8])
        reference = [record.result for record in executors["executor_unbatched/1"].execute(requests)]
        if any(r.error is not None for r in reference):
            raise RuntimeError(f"{model}: some requests failed")
        for name, executor in executors.items():
            measurements[name] = (lambda ex=executor: ex.execute(requests))
        signer = ResultSigner(NODE_KEY)
        measurements["sign"] = lambda: [signer.sign(result) for result in reference]
        jobs = [[record.result for record in records]
                for records in _batches(executors["executor_batched/1"].execute(requests))]
        measurements["sign_batch"] = lambda: [signer.sign_batch(job) for job in jobs]
        stats, last = interleaved_medians(measurements, repeats, on_run)
    finally:
        for backend in backends.values():
            backend.close()
        for pool in pools.values():
            pool.shutdown()
    for name in executors:
        if [record.result for record in last[name]] != reference:
            raise RuntimeError(f"{model}: executor results differ between configurations ({name})")
    configs = {}
    for name, s in stats.items():
        kind, _, count = name.partition("/")
        configs[name] = {"kind": kind, "workers": int(count) if count else None, "seconds": s["seconds"],
                         "cpu_seconds": s["cpu_seconds"], "runs_s": s["runs_s"], "requests_per_s": n / s["seconds"],
                         "us_per_request": s["seconds"] / n * 1e6}
    top = max(workers)
    sec = {name: c["seconds"] for name, c in configs.items()}
    return {
        "model": model,
        "n": n,
        "repeats": repeats,
        "workers": workers,
        "configs": configs,
        "signing_us_per_record": sec["sign"] / n * 1e6,
        "batch_signing_us_per_record": sec["sign_batch"] / n * 1e6,
        "records_per_batch_1w": n / len(jobs),
        "batched_vs_unbatched_1w": ratio(sec["executor_unbatched/1"], sec["executor_batched/1"]),
        f"batched_vs_unbatched_{top}w": ratio(sec[f"executor_unbatched/{top}"], sec[f"executor_batched/{top}"]),
        "unbatched_scaling": ratio(sec["executor_unbatched/1"], sec[f"executor_unbatched/{top}"]),
        "batched_scaling": ratio(sec["executor_batched/1"], sec[f"executor_batched/{top}"]),
        "raw_loop_scaling": ratio(sec["raw_loop/1"], sec[f"raw_loop/{top}"]),
        "raw_stacked_scaling": ratio(sec["raw_stacked/1"], sec[f"raw_stacked/{top}"]),
        "unbatched_vs_raw_loop_top": ratio(sec[f"raw_loop/{top}"], sec[f"executor_unbatched/{top}"]),
        "batched_vs_raw_stacked_top": ratio(sec[f"raw_stacked/{top}"], sec[f"executor_batched/{top}"]),
        "best_executor_vs_best_raw": ratio(min(sec[k] for k in sec if k.startswith("raw")),
                                           min(sec[k] for k in sec if k.startswith("executor"))),
        "signing_share_batched_1w": ratio(sec["sign_batch"], sec["executor_batched/1"]),
    }


def _batches(records) -> list[list]:
    """The records grouped by the batch their node signed (a record signed alone is its own)."""
    groups: dict[bytes, list] = {}
    for record in records:
        groups.setdefault(record.batch.root if record.batch else record.signature, []).append(record)
    return list(groups.values())


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    cpus = config.get("cpus") or os.cpu_count() or 1
    workers = list(range(1, cpus + 1))
    repeats = config["repeats"]
    per_model = repeats * (4 * len(workers) + 2)
    reporter.total(per_model * len(config["models"]) + 1)
    models = {}
    for model, n in config["models"].items():
        reporter.note(f"{model} N={n}")
        models[model] = measure(model, n, repeats, workers, on_run=lambda name, m=model: reporter.step(f"{m}: {name}"))
    top = max(workers)
    targets, table = [], []
    heavy, small = models.get("heavy"), models.get("small_mlp")
    if heavy is not None:
        threshold = round(SCALING_PER_CPU_MIN * top, 2)
        targets.append(target(
            "heavy_scaling", f"heavy unbatched: {top} workers / 1 worker >= {threshold:g}x", ">=", threshold,
            heavy["unbatched_scaling"] if top > 1 else None,
            f"raw ORT loop on {top} threads / 1: {heavy['raw_loop_scaling']:.2f}x (what this machine gave)"))
        targets.append(target(
            "heavy_vs_raw", f"heavy: executor ({top} workers, unbatched) >= {EXECUTOR_VS_RAW_MIN:g}x raw ORT "
                            f"({top} threads)", ">=", EXECUTOR_VS_RAW_MIN, heavy["unbatched_vs_raw_loop_top"],
            f"signing {heavy['signing_us_per_record']:.0f} us/record"))
    if small is not None:
        targets.append(target(
            "small_mlp_batching", f"small_mlp: batched, batch-signed / unbatched, signed per record, 1 worker "
                                  f">= {BATCHING_MIN:g}x", ">=", BATCHING_MIN, small["batched_vs_unbatched_1w"],
            f"signing is {small['signing_share_batched_1w'] * 100:.0f}% of the batched executor's time "
            f"({small['batch_signing_us_per_record']:.1f} us/record in batches of "
            f"{small['records_per_batch_1w']:.0f}; {small['signing_us_per_record']:.0f} us signed alone)"))
    for model, m in models.items():
        c = m["configs"]
        table.append(row(f"{model}: executor / raw ORT (best of each)", m["best_executor_vs_best_raw"], "x",
                         f"best executor {max(v['requests_per_s'] for k, v in c.items() if k.startswith('executor')):,.0f}"
                         f" req/s, best raw {max(v['requests_per_s'] for k, v in c.items() if k.startswith('raw')):,.0f}"
                         f" req/s"))
        table.append(row(f"{model}: {top} workers / 1 (unbatched, batched)", m["unbatched_scaling"], "x",
                         f"batched {m['batched_scaling']:.2f}x; raw loop {m['raw_loop_scaling']:.2f}x, "
                         f"raw stacked {m['raw_stacked_scaling']:.2f}x"))
        table.append(row(f"{model}: batched / unbatched (1 worker)", m["batched_vs_unbatched_1w"], "x",
                         f"{top} workers: {m[f'batched_vs_unbatched_{top}w']:.2f}x"))
    result: dict[str, Any] = {"results": {"cpus": cpus, "models": models}, "targets": targets, "table": table}
    profile = {}
    for t in targets:
        if t["met"] is False:
            model, config_ = ("small_mlp", (1, True)) if t["key"] == "small_mlp_batching" else ("heavy", (top, False))
            key = f"{model} {config_[0]}w {'batched' if config_[1] else 'unbatched'}"
            if key not in profile:
                reporter.note(f"profiling {key}")
                profile[key] = measure(model, config["models"][model], 1, workers, profile_config=config_)
    if profile:
        result["profile"] = profile
    reporter.step("done", max(0.0, reporter.steps - reporter.done))
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    models = result["results"]["models"]
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    styles = {"raw_loop": ("raw ORT loop", "k", "--", "o"), "raw_stacked": ("raw ORT stacked", "gray", ":", "^"),
              "executor_unbatched": ("executor unbatched", "tab:red", "-", "s"),
              "executor_batched": ("executor batched", "tab:blue", "-", "D")}
    for ax, (model, m) in zip(axes[0], models.items()):
        for kind, (label, color, style, marker) in styles.items():
            points = sorted((c["workers"], c["requests_per_s"]) for c in m["configs"].values() if c["kind"] == kind)
            ax.plot([p[0] for p in points], [p[1] for p in points], linestyle=style, marker=marker, color=color,
                    label=label)
        ax.set_yscale("log")
        ax.set_xticks(m["workers"])
        ax.set_xlabel("workers (threads)")
        ax.set_ylabel("requests per second")
        ax.set_title(f"{model}, N={m['n']} (signing {m['signing_us_per_record']:.0f} us/record)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
