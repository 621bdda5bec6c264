"""2. End to end: a burst of inference transactions through a real dev node.

PIPE: a :class:`~ogevm.node.node.DevNode` in process (in memory, automine, executor with
one worker per CPU). The burst's transactions are signed beforehand, then sent one after
the other with ``DevNode.send_raw_transaction``; the client polls ``DevNode.status``
until every one is ``included``. The whole burst arrives at once, as for INLINE: a
transaction's latency is from the first send to the moment the node marks it included
(the node's own finish callback, so polling does not add its interval; the sends
themselves wait for the node, which is part of the latency); the latency from a
transaction's own ``send_raw_transaction`` call is reported too. Throughput is N over the
span from the first send to the last inclusion.

INLINE, the baseline: the same signed transactions on a twin node's chain (same setup,
producer not started), all arriving at once and executed one after the other with the
model inside the precompile:

* ``one by one``: ``DevChain.mine([tx])`` for each, one block per transaction, what
  ``DevChain.send`` (automine) does; the target compares with this;
* ``packed``: ``DevChain.mine`` of as many transactions as the block gas limit allows,
  the best an INLINE builder can do (a transaction's latency is its block's end);
* ``EVM-only packed``: the same blocks with a provider that answers every request with
  one precomputed output, instantly: the EVM work alone. It gives the ceiling of any
  design that executes each transaction's EVM ``k`` times on one Python thread, with all
  inference overlapped: INLINE one-by-one time / (k x EVM-only time); PIPE executes a
  single-round transaction twice (one CAPTURE simulation, the replay); the measured EVM
  passes per included transaction are reported.

Workloads on ``heavy`` (about 5 ms per inference): ``forecast`` (``PriceForecast.forecast``,
contract code around the call) and ``direct`` (transactions straight to the precompile,
no contract code: the least EVM work an inference transaction can have).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    MODELS,
    chunk_by_gas,
    direct_calldata,
    direct_transactions,
    features,
    forecast_chain,
    forecast_transactions,
    inference_requests,
    percentile,
    ratio,
    row,
    summarize_profile,
    target,
)
from ogevm.constants import DEV_BLOCK_GAS_LIMIT, INFERENCE_PRECOMPILE_ADDRESS
from ogevm.fixtures import fixture_model
from ogevm.node.node import DevNode, NodeConfig
from ogevm.precompile.modes import CatalogueProvider
from ogevm.records import InferenceRequest, InferenceResult

TITLE = "End to end: submit -> included through a DevNode (PIPE) vs INLINE"
SIZES = {
    "smoke": {"model": "heavy", "workloads": {"direct": 4}, "repeats": 1, "profile_n": 4},
    "quick": {"model": "heavy", "workloads": {"direct": 40, "forecast": 20}, "repeats": 1, "profile_n": 20},
    "full": {"model": "heavy", "workloads": {"direct": 200, "forecast": 100}, "repeats": 3, "profile_n": 40},
}
THROUGHPUT_MIN = 3.0
SENDERS = 10
POLL_SECONDS = 0.02
TIMEOUT_SECONDS = 900.0


class _ObservedNode(DevNode):
    """The dev node, with the time each transaction reached a terminal state, its
    simulation passes counted and timed, and optionally its producer thread profiled."""

    def __init__(self, config: NodeConfig, profile: bool = False) -> None:
        self.finished_at: dict[bytes, float] = {}
        self.profiler = cProfile.Profile() if profile else None
        super().__init__(config)
        self.simulation = {"calls": 0, "seconds": 0.0}
        simulate = self.pipeline._simulate_all

        def counted():
            self.simulation["calls"] += 1
            start = time.perf_counter()
            try:
                return simulate()
            finally:
                self.simulation["seconds"] += time.perf_counter() - start

        self.pipeline._simulate_all = counted

    def _finished(self, entry) -> None:
        self.finished_at[entry.hash] = time.perf_counter()
        super()._finished(entry)

    def _produce(self) -> None:
        if self.profiler is None:
            return super()._produce()
        return self.profiler.runcall(super()._produce)


def _setup(node: DevNode, model_name: str, workload: str, n: int):
    """Add the model, deploy what the workload needs, warm the model; the signed burst and
    the model's catalogue entry."""
    model = MODELS[model_name]
    chain = node.chain
    with node.lock:
        info = chain.add_model(fixture_model(model_name))
        if workload == "forecast":
            _, forecast = forecast_chain(chain.models, info, chain.accounts, chain=chain)
            forecast.call("forecastView", features(np.random.default_rng(0), model.width))
            txs = forecast_transactions(chain, forecast, model, n, SENDERS)
        else:
            chain.call(INFERENCE_PRECOMPILE_ADDRESS, direct_calldata(info, model.width, np.random.default_rng(0)))
            txs = direct_transactions(chain, info, model, n, SENDERS)
    return txs, info


def _pipe_run(model_name: str, workload: str, n: int, workers: int, profile: bool = False) -> dict[str, Any]:
    node = _ObservedNode(NodeConfig(workers=workers), profile=profile)
    try:
        txs, _ = _setup(node, model_name, workload, n)
        first_block = node.chain.head.block_number + 1
        raws = [tx.encode() for tx in txs]
        node.start()
        sent_at = []
        start = time.perf_counter()
        hashes = []
        for raw in raws:
            sent_at.append(time.perf_counter())
            hashes.append(node.send_raw_transaction(raw))
        submitted = time.perf_counter()
        pending = set(hashes)
        states = {}
        while pending and time.perf_counter() - start < TIMEOUT_SECONDS:
            for tx_hash in list(pending):
                status = node.status(tx_hash)
                if status is not None and status["state"] in ("included", "rejected"):
                    states[tx_hash] = status
                    pending.discard(tx_hash)
            if pending:
                time.sleep(POLL_SECONDS)
        if pending:
            raise RuntimeError(f"{len(pending)} of {n} txs not settled after {TIMEOUT_SECONDS:.0f} s")
        rejected = [s["reason"] for s in states.values() if s["state"] != "included"]
        if rejected:
            raise RuntimeError(f"{len(rejected)} txs rejected: {rejected[0]}")
        done = [node.finished_at[h] for h in hashes]
        latencies = [d - start for d in done]  # the burst arrived at ``start``, as for INLINE
        from_send = [d - s for d, s in zip(done, sent_at)]
        span = max(done) - start
        blocks = [b for b in node.block_log if b.number >= first_block]
    finally:
        node.stop()
    out = {
        "n": n,
        "seconds": span,
        "throughput_tx_s": n / span,
        "submit_seconds": submitted - start,
        "latency_p50_s": percentile(latencies, 50),
        "latency_p99_s": percentile(latencies, 99),
        "latency_max_s": max(latencies),
        "latency_from_send_p50_s": percentile(from_send, 50),
        "latency_from_send_p99_s": percentile(from_send, 99),
        "blocks": len(blocks),
        "txs_per_block": n / len(blocks) if blocks else None,
        "build_seconds": sum(b.build_seconds for b in blocks),
        "inference_seconds_off_block_path": sum(b.inference_seconds_saved for b in blocks),
        "simulation_calls": node.simulation["calls"],
        "simulation_seconds": node.simulation["seconds"],
        "evm_passes_per_tx": node.pipeline.passes_per_included_tx(),
        "workers": workers,
    }
    if profile:
        out["profile"] = summarize_profile(pstats.Stats(node.profiler),
                                           f"DevNode producer thread, {workload} N={n}")
    return out


class _FixedOutputProvider(CatalogueProvider):
    """Answers every request at once with one precomputed output: no inference at all."""

    def __init__(self, catalogue, output) -> None:
        super().__init__(catalogue)
        self.output = output

    def resolve(self, request: InferenceRequest) -> InferenceResult:
        return InferenceResult(request.id, request.digest, output=self.output)


def _inline_run(model_name: str, workload: str, n: int, packed: bool, evm_only: bool = False) -> dict[str, Any]:
    node = DevNode(NodeConfig())  # a twin of the PIPE node's setup; its producer never starts
    try:
        txs, info = _setup(node, model_name, workload, n)
        chain = node.chain
        vm_class = None
        if evm_only:
            sample = inference_requests(info, 1)[0]
            vm_class = chain.base_vm_class.with_provider(
                _FixedOutputProvider(chain.models, chain.runtime.run(info, sample.feeds)))
        groups = chunk_by_gas(txs, DEV_BLOCK_GAS_LIMIT) if packed else [[tx] for tx in txs]
        done = []
        start = time.perf_counter()
        for group in groups:
            _, results = chain.mine(group, vm_class=vm_class)
            finished = time.perf_counter()
            failed = [r for r in results if not r.success]
            if failed:
                raise RuntimeError(f"INLINE: {len(failed)} txs reverted: {failed[0].revert_reason}")
            done += [finished] * len(group)
    finally:
        node.stop()
    latencies = [d - start for d in done]  # the whole burst arrived at ``start``
    span = max(done) - start
    return {"n": n, "seconds": span, "throughput_tx_s": n / span, "latency_p50_s": percentile(latencies, 50),
            "latency_p99_s": percentile(latencies, 99), "latency_max_s": max(latencies), "blocks": len(groups)}


def _median(runs: list[dict[str, Any]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    workers = config.get("workers") or os.cpu_count() or 1
    model = config["model"]
    repeats = config["repeats"]
    reporter.total(sum(config["workloads"].values()) * repeats * 4)
    workloads: dict[str, Any] = {}
    for workload, n in config["workloads"].items():
        runs = {"pipe": [], "inline_one_by_one": [], "inline_packed": [], "evm_only_packed": []}
        for r in range(repeats):
            order = list(runs)
            order = order[r % len(order):] + order[:r % len(order)]  # take turns going first
            for mode in order:
                reporter.note(f"{workload} N={n}: {mode.replace('_', ' ')} ({r + 1}/{repeats})")
                if mode == "pipe":
                    runs[mode].append(_pipe_run(model, workload, n, workers))
                else:
                    runs[mode].append(_inline_run(model, workload, n, packed=mode != "inline_one_by_one",
                                                  evm_only=mode == "evm_only_packed"))
                reporter.step(None, n)
        summary = {mode: {key: _median(rs, key) for key in ("throughput_tx_s", "latency_p50_s", "latency_p99_s",
                                                             "seconds", "blocks")}
                   for mode, rs in runs.items()}
        pipe_runs = runs["pipe"]
        summary["pipe"].update({key: _median(pipe_runs, key) for key in (
            "submit_seconds", "latency_from_send_p50_s", "latency_from_send_p99_s", "txs_per_block", "build_seconds", "simulation_seconds",
            "evm_passes_per_tx",
            "inference_seconds_off_block_path")})
        workloads[workload] = {
            "n": n, "repeats": repeats, "runs": runs, "median": summary,
            "throughput_vs_inline_one_by_one": ratio(summary["pipe"]["throughput_tx_s"],
                                                     summary["inline_one_by_one"]["throughput_tx_s"]),
            "throughput_vs_inline_packed": ratio(summary["pipe"]["throughput_tx_s"],
                                                 summary["inline_packed"]["throughput_tx_s"]),
            "p50_latency_vs_inline_one_by_one": ratio(summary["pipe"]["latency_p50_s"],
                                                      summary["inline_one_by_one"]["latency_p50_s"]),
            "p99_latency_vs_inline_one_by_one": ratio(summary["pipe"]["latency_p99_s"],
                                                      summary["inline_one_by_one"]["latency_p99_s"]),
            "inference_share_of_inline_packed": 1 - summary["evm_only_packed"]["seconds"]
                                                / summary["inline_packed"]["seconds"],
            # INLINE one by one / (k x EVM-only): what executing each tx's EVM k times on one
            # thread allows at best, inference fully overlapped and blocks packed.
            "ceiling_1_evm_pass": ratio(summary["inline_one_by_one"]["seconds"], summary["evm_only_packed"]["seconds"]),
            "ceiling_2_evm_passes": ratio(summary["inline_one_by_one"]["seconds"],
                                          2 * summary["evm_only_packed"]["seconds"]),
        }

    targets, table = [], []
    for workload, w in workloads.items():
        m = w["median"]
        targets.append(target(
            f"throughput/{workload}", f"PIPE node throughput >= {THROUGHPUT_MIN:g}x INLINE one by one "
                                      f"({model}, {workload}, N={w['n']}, {workers} workers)",
            ">=", THROUGHPUT_MIN, w["throughput_vs_inline_one_by_one"],
            f"{m['pipe']['throughput_tx_s']:.1f} vs {m['inline_one_by_one']['throughput_tx_s']:.1f} tx/s; "
            f"vs INLINE packed blocks {w['throughput_vs_inline_packed']:.2f}x; ceiling on one EVM thread: "
            f"{w['ceiling_2_evm_passes']:.2f}x with PIPE's 2 EVM passes per tx, {w['ceiling_1_evm_pass']:.2f}x with 1"))
        table.append(row(f"{workload}: PIPE p50 latency (burst at t0)", m["pipe"]["latency_p50_s"] * 1e3, "ms",
                         f"p99 {m['pipe']['latency_p99_s'] * 1e3:,.0f} ms (from each tx's own send: p50 "
                         f"{m['pipe']['latency_from_send_p50_s'] * 1e3:,.0f} ms, sends took "
                         f"{m['pipe']['submit_seconds']:.1f} s); INLINE one by one p50 "
                         f"{m['inline_one_by_one']['latency_p50_s'] * 1e3:,.0f} / p99 "
                         f"{m['inline_one_by_one']['latency_p99_s'] * 1e3:,.0f} ms; packed p50 "
                         f"{m['inline_packed']['latency_p50_s'] * 1e3:,.0f} ms"))
        table.append(row(f"{workload}: PIPE throughput / INLINE packed", w["throughput_vs_inline_packed"], "x",
                         f"PIPE {m['pipe']['blocks']:.0f} blocks ({m['pipe']['txs_per_block']:.1f} tx/block), "
                         f"{m['pipe']['evm_passes_per_tx']:.2f} EVM passes per tx (simulation + replays); "
                         f"simulation took {m['pipe']['simulation_seconds']:.1f} of {m['pipe']['seconds']:.1f} s"))
        table.append(row(f"{workload}: inference share of INLINE packed", w["inference_share_of_inline_packed"] * 100,
                         "%", f"EVM-only packed {m['evm_only_packed']['throughput_tx_s']:.1f} tx/s vs INLINE packed "
                              f"{m['inline_packed']['throughput_tx_s']:.1f} tx/s"))
    result: dict[str, Any] = {"results": {"model": model, "workers": workers, "senders": SENDERS,
                                          "workloads": workloads},
                              "targets": targets, "table": table}
    missed = [t["key"].split("/")[1] for t in targets if t["met"] is False]
    if missed:
        reporter.note("profiling the producer thread")
        result["profile"] = {workload: _pipe_run(model, workload, min(config["profile_n"], config["workloads"][workload]),
                                                 workers, profile=True)["profile"] for workload in missed}
    reporter.step("done", max(0.0, reporter.steps - reporter.done))
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    workloads = result["results"]["workloads"]
    modes = (("pipe", "PIPE dev node", "tab:green"), ("inline_one_by_one", "INLINE, one tx per block", "tab:red"),
             ("inline_packed", "INLINE, packed blocks", "tab:orange"),
             ("evm_only_packed", "EVM only (no inference), packed", "tab:gray"))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = list(workloads)
    width = 0.2
    x = np.arange(len(names))
    for i, (mode, label, color) in enumerate(modes):
        offset = (i - 1.5) * width
        left.bar(x + offset, [workloads[w]["median"][mode]["throughput_tx_s"] for w in names], width,
                 label=label, color=color)
        p50 = [workloads[w]["median"][mode]["latency_p50_s"] for w in names]
        p99 = [workloads[w]["median"][mode]["latency_p99_s"] for w in names]
        right.bar(x + offset, p99, width, color=color, alpha=0.35)
        right.bar(x + offset, p50, width, color=color, label=f"{label} (p50; light: p99)")
    labels = [f"{w}\nN={workloads[w]['n']}" for w in names]
    left.set_xticks(x, labels)
    left.set_ylabel("transactions per second")
    left.set_title(f"Throughput ({result['results']['model']}, target PIPE >= {THROUGHPUT_MIN:g}x INLINE)")
    left.legend(fontsize=8)
    right.set_xticks(x, labels)
    right.set_ylabel("submit -> included, s")
    right.set_title("Latency p50 (dark) and p99 (light)")
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
