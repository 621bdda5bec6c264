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

import os
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import MODELS, SENDERS, compare_bursts, pipe_burst, ratio, row, target

TITLE = "End to end: submit -> included through a DevNode (PIPE) vs INLINE"
SIZES = {
    "smoke": {"model": "heavy", "workloads": {"direct": 4}, "repeats": 1, "profile_n": 4},
    "quick": {"model": "heavy", "workloads": {"direct": 40, "forecast": 20}, "repeats": 1, "profile_n": 20},
    "full": {"model": "heavy", "workloads": {"direct": 200, "forecast": 100}, "repeats": 3, "profile_n": 40},
}
#: PIPE must at least keep up with INLINE one by one on heavy (its model time is above the
#: EVM time of a direct transaction). The throughput targets against the bound PIPE can
#: reach on this machine, over a sweep of model times, are model_sweep's (README).
THROUGHPUT_MIN = 1.0


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    workers = config.get("workers") or os.cpu_count() or 1
    model = config["model"]
    bench_model = MODELS[model]
    repeats = config["repeats"]
    reporter.total(sum(config["workloads"].values()) * repeats * 4)
    workloads: dict[str, Any] = {}
    for workload, n in config["workloads"].items():
        runs, summary = compare_bursts(bench_model, workload, n, repeats, workers, reporter)
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
        result["profile"] = {workload: pipe_burst(bench_model, workload, min(config["profile_n"], config["workloads"][workload]),
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
