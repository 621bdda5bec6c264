"""1. Block building: INLINE vs PIPE replay vs the EVM-only limit, on the same transactions.

N ``PriceForecast.forecast`` transactions (features ``x [1, width]``) from several senders
go to three twin dev chains (same genesis, same deployment, same transactions, same block
boundaries and timestamps):

* INLINE: ``DevChain.mine`` with the model running inside the precompile (the naive way);
* PIPE: ``Pipeline.submit`` + ``prepare()`` (CAPTURE simulation and the executor) first, off
  the block path; then only ``build_block()`` is timed: the builder replays the
  transactions with the precomputed results;
* EVM-only: ``DevChain.mine`` with a results provider that hands back the results PIPE
  computed, unchecked: everything but inference, the floor for the builder.

Block by block, PIPE builds block k, then EVM-only and INLINE mine exactly its
transactions. With ``repeats`` > 1 each mode has that many twin chains and the block is
made in rounds: each round runs the three modes back to back, in an order that rotates
(the other PIPE twins run ``BlockBuilder.build`` on the same ready entries, what
``build_block`` runs). Per block the median of the rounds counts; the ratio of the
back-to-back pairs (each round's PIPE / EVM-only) is what the target uses: it cancels
the machine changing speed between rounds. Every twin must seal the byte-identical block;
the run fails otherwise.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from pathlib import Path
from typing import Any

from benchmarks.common import (
    MODELS,
    NODE_KEY,
    KnownResultsProvider,
    bench_accounts,
    fixture_store,
    forecast_chain,
    forecast_transactions,
    profile_call,
    ratio,
    row,
    senders_for,
    target,
    timed,
)
from ogevm.constants import DEV_BLOCK_GAS_LIMIT
from ogevm.pipe.builder import BlockBuilder
from ogevm.pipe.executor import InferenceExecutor, local_executor
from ogevm.pipe.mempool import TxState
from ogevm.pipe.pipeline import Pipeline
from ogevm.records import InferenceResult, RequestId

TITLE = "Block building: INLINE vs PIPE replay vs EVM-only"
SIZES = {
    "smoke": {"models": ["small_mlp", "heavy"], "n": [4], "target_n": 4, "repeats": 1, "repeat_up_to": 4},
    "quick": {"models": ["small_mlp", "heavy"], "n": [20, 50], "target_n": 50, "repeats": 5, "repeat_up_to": 50},
    "full": {"models": ["small_mlp", "heavy"], "n": [50, 200, 1000], "target_n": 200, "repeats": 5,
             "repeat_up_to": 200},
}
#: PIPE's build_block may cost at most this much more than executing the block's EVM.
PIPE_VS_EVM_ONLY_MAX = 1.2
MODES = ("inline", "pipe", "evm_only")


class _TimedExecutor(InferenceExecutor):
    """The project's executor, timed: for each submission, the span from the submission
    to the last of its jobs finishing (added up over the rounds)."""

    def __init__(self, executor: InferenceExecutor) -> None:
        super().__init__(executor.backend, executor.models, executor.batching, executor.max_batch)
        self.spans: list[list[float]] = []

    def submit(self, requests):
        span = [time.perf_counter(), 0.0]
        futures = super().submit(requests)
        self.spans.append(span)

        def done(_future, span=span):
            span[1] = max(span[1], time.perf_counter())

        for future in futures:
            future.add_done_callback(done)
        return futures

    @property
    def seconds(self) -> float:
        return sum(max(0.0, end - start) for start, end in self.spans)


class _TimedPipeline(Pipeline):
    """The project's pipeline, with the time of its simulation passes added up."""

    simulation_seconds = 0.0
    simulation_passes = 0

    def _simulate_step(self):
        start = time.perf_counter()
        try:
            return super()._simulate_step()
        finally:
            self.simulation_seconds += time.perf_counter() - start
            self.simulation_passes += 1


def measure(model_name: str, n: int, workers: int, repeats: int = 1, profile: bool = False,
            on_phase=lambda phase: None) -> dict[str, Any]:
    """INLINE, PIPE and EVM-only on the same ``n`` transactions, each block built
    ``repeats`` times per mode on twin chains (median per block); with ``profile``, the
    cProfile summaries of PIPE's ``build_block``, EVM-only and INLINE mining (first block)."""
    model = MODELS[model_name]
    senders = senders_for(n, model.forecast_gas, DEV_BLOCK_GAS_LIMIT)
    accounts = bench_accounts(senders)
    store, infos = fixture_store([model_name])
    info = infos[model_name]
    # Twin chains: chains[mode][i]; chains["pipe"][0] is the pipeline's, the other PIPE twins
    # replay the same ready entries with their own BlockBuilder (what build_block runs).
    chains = {mode: [forecast_chain(store, info, accounts) for _ in range(repeats)] for mode in MODES}
    heads = {chain.head.hash for twins in chains.values() for chain, _ in twins}
    if len(heads) != 1:
        raise RuntimeError("the twin chains differ before the benchmark")
    pipe_chain, pipe_forecast = chains["pipe"][0]
    txs = forecast_transactions(pipe_chain, pipe_forecast, model, n, senders)
    warm = [(k, 2) for k in range(model.width)]  # model sessions and EVM paths, no state change
    for twins in chains.values():
        for _, contract in twins:
            contract.call("forecastView", warm)
    on_phase("setup")

    executor = _TimedExecutor(local_executor(pipe_chain.runtime, NODE_KEY, workers))
    pipeline = _TimedPipeline(pipe_chain, NODE_KEY, executor=executor)
    builders = [BlockBuilder(chain.chain, chain.base_vm_class, chain.models) for chain, _ in chains["pipe"][1:]]
    profiles: dict[str, Any] = {}
    try:
        for tx in txs:
            pipeline.submit(tx)
        prepare_s, prepare_cpu_s, executed = timed(pipeline.prepare)
        states = {pipeline.pool.status(tx.hash).state for tx in txs}
        if states != {TxState.READY}:
            raise RuntimeError(f"after prepare not every tx is ready: {sorted(states)}")
        on_phase("prepare")

        results: dict[RequestId, InferenceResult] = {}
        per_block = []
        while any(e.state is TxState.READY for e in pipeline.pool.entries()):
            candidates = [e for e in pipeline.pool.entries() if e.state is TxState.READY]
            results.update({rid: rec.result for e in candidates for rid, rec in e.records.items()})
            timestamp = pipe_chain.head.timestamp + 1

            def build():
                return pipeline.build_block(timestamp=timestamp)

            if profile:
                built, profiles["pipe_build_block"] = profile_call(build, f"PIPE build_block, {model_name}")
            else:
                build_s, build_cpu, built = timed(build)
            if built.deferred or built.invalid or not built.included:
                raise RuntimeError(f"PIPE block {built.block.number}: deferred {built.deferred}, "
                                   f"invalid {built.invalid}, included {len(built.included)}")
            block_txs, extra = list(built.block.transactions), built.block.header.extra_data
            measurements: dict[str, Any] = {}
            for i, builder in enumerate(builders, start=1):
                measurements[f"pipe/{i}"] = (lambda b=builder: b.build(candidates, timestamp=timestamp).block)
            for i, (chain, _) in enumerate(chains["evm_only"]):
                vm = chain.base_vm_class.with_provider(KnownResultsProvider(chain.models, results))
                measurements[f"evm_only/{i}"] = (lambda c=chain, vm=vm: c.mine(
                    block_txs, vm_class=vm, extra_data=extra, timestamp=timestamp))
            for i, (chain, _) in enumerate(chains["inline"]):
                measurements[f"inline/{i}"] = (lambda c=chain: c.mine(block_txs, extra_data=extra, timestamp=timestamp))
            if profile:  # the first block is enough for a profile
                _, profiles["evm_only_mine"] = profile_call(measurements["evm_only/0"],
                                                            f"EVM-only DevChain.mine, {model_name}")
                _, profiles["inline_mine"] = profile_call(measurements["inline/0"],
                                                          f"INLINE DevChain.mine, {model_name}")
                break
            # Rounds: round i runs PIPE, EVM-only and INLINE once each, back to back, in an
            # order that rotates; the pipeline's own build_block opened round 0.
            timings = {"pipe": [(build_s, build_cpu)], "evm_only": [], "inline": []}
            for i in range(repeats):
                order = [mode for mode in MODES if not (i == 0 and mode == "pipe")]
                shift = (i + len(per_block)) % len(order)
                for mode in order[shift:] + order[:shift]:
                    name = f"{mode}/{i}"
                    wall, cpu, outcome = timed(measurements[name])
                    block = outcome if mode == "pipe" else outcome[0]
                    if block.hash != built.block.hash:
                        _check_same_block(built.block, block, name)
                    if mode != "pipe":
                        failed = [r for r in outcome[1] if not r.success]
                        if failed:
                            raise RuntimeError(f"block {block.number} ({name}): {len(failed)} txs reverted: "
                                               f"{failed[0].revert_reason}")
                    timings[mode].append((wall, cpu))
            entry = {"number": built.block.number, "txs": len(block_txs), "gas_used": built.block.header.gas_used,
                     "records": len(built.records)}
            for mode in MODES:
                key = "pipe_build" if mode == "pipe" else mode
                entry[f"{key}_s"] = statistics.median(w for w, _ in timings[mode])
                entry[f"{key}_cpu_s"] = statistics.median(c for _, c in timings[mode])
                entry[f"{key}_runs_s"] = [w for w, _ in timings[mode]]
            entry["pipe_vs_evm_only_paired"] = statistics.median(
                p / e for (p, _), (e, _) in zip(timings["pipe"], timings["evm_only"]))
            entry["inline_vs_pipe_paired"] = statistics.median(
                i / p for (i, _), (p, _) in zip(timings["inline"], timings["pipe"]))
            per_block.append(entry)
            on_phase(None)
    finally:
        executor.close()
    on_phase("blocks")
    if profile:
        return profiles

    included = sum(b["txs"] for b in per_block)
    if included != n:
        raise RuntimeError(f"{included} of {n} txs were included")
    for contract in (contract for twins in chains.values() for _, contract in twins):
        if contract.call("predictionCount")[0] != n:
            raise RuntimeError("a chain did not store every prediction")

    total = {mode: sum(b[f"{'pipe_build' if mode == 'pipe' else mode}_s"] for b in per_block) for mode in MODES}
    cpu = {mode: sum(b[f"{'pipe_build' if mode == 'pipe' else mode}_cpu_s"] for b in per_block) for mode in MODES}
    sim_s, passes = pipeline.simulation_seconds, pipeline.simulation_passes
    return {
        "model": model_name,
        "n": n,
        "senders": senders,
        "blocks": len(per_block),
        "repeats": repeats,
        "tx_gas_limit": model.forecast_gas,
        "gas_used": sum(b["gas_used"] for b in per_block),
        "inline_s": total["inline"],
        "pipe_build_s": total["pipe"],
        "evm_only_s": total["evm_only"],
        "inline_cpu_s": cpu["inline"],
        "pipe_build_cpu_s": cpu["pipe"],
        "evm_only_cpu_s": cpu["evm_only"],
        "inline_ms_per_tx": total["inline"] / n * 1e3,
        "pipe_build_ms_per_tx": total["pipe"] / n * 1e3,
        "evm_only_ms_per_tx": total["evm_only"] / n * 1e3,
        "inline_vs_pipe": ratio(total["inline"], total["pipe"]),
        "inline_vs_pipe_cpu": ratio(cpu["inline"], cpu["pipe"]),
        "pipe_vs_evm_only": ratio(total["pipe"], total["evm_only"]),
        "pipe_vs_evm_only_cpu": ratio(cpu["pipe"], cpu["evm_only"]),
        "pipe_vs_evm_only_median_block": statistics.median(
            ratio(b["pipe_build_s"], b["evm_only_s"]) for b in per_block),
        # The median over blocks of each block's median ratio of back-to-back runs: what
        # the targets use (robust to the machine changing speed between rounds).
        "pipe_vs_evm_only_paired": statistics.median(b["pipe_vs_evm_only_paired"] for b in per_block),
        "inline_vs_pipe_paired": statistics.median(b["inline_vs_pipe_paired"] for b in per_block),
        "inline_vs_evm_only": ratio(total["inline"], total["evm_only"]),
        "inference_saved_s": total["inline"] - total["pipe"],
        "inline_inference_s": total["inline"] - total["evm_only"],
        "prepare_s": prepare_s,
        "prepare_cpu_s": prepare_cpu_s,
        "prepare_requests_executed": executed,
        "prepare_simulation_s": sim_s,
        "prepare_simulation_passes": passes,
        "prepare_simulation_per_pass_s": sim_s / passes if passes else 0.0,
        "simulation_pass_vs_evm_only": ratio(sim_s / passes if passes else 0.0, total["evm_only"]),
        "prepare_executor_s": executor.seconds,
        "prepare_executor_workers": workers,
        "prepare_other_s": max(0.0, prepare_s - sim_s - executor.seconds),
        "identical_blocks": True,
        "per_block": per_block,
    }


def _phases(reporter, model: str, n: int, repeats: int):
    """Progress of one measurement: setup and prepare count ``n`` steps each, every block
    its share of ``(3 + repeats) * n`` minus those."""
    blocks_share = (1 + repeats) * n

    def on_phase(phase):
        if phase == "setup":
            reporter.step(f"{model} N={n}: PIPE prepare", n)
        elif phase == "prepare":
            reporter.step(f"{model} N={n}: building blocks", n)
        elif phase is None:
            reporter.step(None, blocks_share / max(1, math.ceil(n * MODELS[model].forecast_gas / DEV_BLOCK_GAS_LIMIT)))
    return on_phase


def _check_same_block(expected, got, name: str) -> None:
    """Every twin must seal the PIPE block; name the header fields that differ."""
    fields = [field for field, value in expected.header.as_dict().items() if getattr(got.header, field) != value]
    raise RuntimeError(f"block {expected.number}: {name} sealed another block than PIPE (fields {fields})")


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    models, sizes = config["models"], config["n"]
    workers = config.get("workers") or os.cpu_count() or 1
    reporter.total(len(models) * sum(n * (3 + (config["repeats"] if n <= config["repeat_up_to"] else 1))
                                     for n in sizes))
    runs: dict[str, dict[str, Any]] = {}
    for model in models:
        for n in sizes:
            reporter.note(f"{model} N={n}")
            repeats = config["repeats"] if n <= config["repeat_up_to"] else 1
            runs[f"{model}/{n}"] = measure(model, n, workers, repeats, on_phase=_phases(reporter, model, n, repeats))

    targets, table = [], []
    for key, r in runs.items():
        model, n = r["model"], r["n"]
        if n == config["target_n"] or len(sizes) == 1:
            targets.append(target(
                f"pipe_vs_evm_only/{model}/{n}", f"PIPE build_block <= {PIPE_VS_EVM_ONLY_MAX}x EVM-only ({model}, N={n})",
                "<=", PIPE_VS_EVM_ONLY_MAX, r["pipe_vs_evm_only_paired"],
                f"median of back-to-back pairs; ratio of total times {r['pipe_vs_evm_only']:.3f}x; "
                f"{r['blocks']} block(s), {r['repeats']} round(s) each"))
        table.append(row(f"{model} N={n}: INLINE / PIPE build", r["inline_vs_pipe_paired"], "x",
                         f"INLINE {r['inline_ms_per_tx']:.1f} ms/tx, PIPE {r['pipe_build_ms_per_tx']:.1f} ms/tx "
                         f"(medians; ratio of totals {r['inline_vs_pipe']:.2f}x)"))
        table.append(row(f"{model} N={n}: PIPE build / EVM-only", r["pipe_vs_evm_only_paired"], "x",
                         f"EVM-only {r['evm_only_ms_per_tx']:.1f} ms/tx; ratio of totals {r['pipe_vs_evm_only']:.2f}x"))
        table.append(row(f"{model} N={n}: PIPE prepare / EVM-only", ratio(r["prepare_s"], r["evm_only_s"]), "x",
                         f"off the block path: {r['prepare_simulation_passes']} simulation passes "
                         f"{r['prepare_simulation_s']:.2f} s, executor {r['prepare_executor_s']:.2f} s"))
    result: dict[str, Any] = {"results": {"workers": workers, "runs": runs}, "targets": targets, "table": table}
    missed = sorted({t["key"].split("/")[1] for t in targets if t["met"] is False})
    if missed:
        reporter.note("profiling the missed targets")
        result["profile"] = {model: measure(model, min(sizes), workers, profile=True) for model in missed}
    reporter.step("done", max(0.0, reporter.steps - reporter.done))
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    runs = result["results"]["runs"]
    models = sorted({r["model"] for r in runs.values()})
    colors = {"small_mlp": "tab:blue", "heavy": "tab:red"}
    styles = {"inline": ("INLINE", "-", "o"), "pipe": ("PIPE build_block", "--", "s"),
              "evm_only": ("EVM-only (inference stubbed)", ":", "^")}
    keys = {"inline": "inline_s", "pipe": "pipe_build_s", "evm_only": "evm_only_s"}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for model in models:
        points = sorted((r for r in runs.values() if r["model"] == model), key=lambda r: r["n"])
        ns = [r["n"] for r in points]
        for mode, (label, style, marker) in styles.items():
            left.plot(ns, [r[keys[mode]] for r in points], linestyle=style, marker=marker,
                      color=colors.get(model), label=f"{model}: {label}")
        right.plot(ns, [r["inline_vs_pipe_paired"] for r in points], "-o", color=colors.get(model),
                   label=f"{model}: INLINE / PIPE")
        right.plot(ns, [r["pipe_vs_evm_only_paired"] for r in points], "--s", color=colors.get(model),
                   label=f"{model}: PIPE / EVM-only")
    left.set_xscale("log")
    left.set_yscale("log")
    left.set_xlabel("transactions N")
    left.set_ylabel("block building time, s (all blocks)")
    left.set_title("Build time vs N (PriceForecast.forecast)")
    left.grid(True, which="both", alpha=0.3)
    left.legend(fontsize=7)
    right.axhline(PIPE_VS_EVM_ONLY_MAX, color="gray", linewidth=0.8, linestyle=":")
    right.axhline(1.0, color="black", linewidth=0.6)
    right.set_xscale("log")
    right.set_xlabel("transactions N")
    right.set_ylabel("ratio (median of back-to-back pairs)")
    right.set_title(f"Ratios (target PIPE / EVM-only <= {PIPE_VS_EVM_ONLY_MAX})")
    right.grid(True, which="both", alpha=0.3)
    right.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
