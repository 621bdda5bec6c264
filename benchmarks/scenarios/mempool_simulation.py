"""5. Mempool simulation: the pipeline's CAPTURE simulation vs raw py-evm on the same txs.

N ``PriceForecast.forecast`` transactions on ``heavy`` from several senders sit in a
``Pipeline``'s pool. Measured in rotating order (median of repeats), each over all N:

* ``CAPTURE``: ``Pipeline._simulate_step`` (one step for all N) with nothing known yet, the
  one simulation a transaction gets (each sender's run in a pending block of its own, every
  inference answered with the simulation output and recorded); the builder's replay
  confirms it;
* ``raw``, the limit: py-evm's own ``VM.apply_all_transactions`` of the same runs, each in
  a VM of its own on the head state made beforehand, with a provider that answers the
  same simulation output and records nothing.

A simulated transaction is not simulated again, so the entries are marked unsimulated
before every CAPTURE pass. Simulated transactions per second = N / time; the ratio is
CAPTURE / raw throughput, the median over the rounds (each runs CAPTURE and raw back to
back) of their ratio.

Simulation workers: the same runs simulated by a ``WorkerSimulator`` of one worker process
and of two (as ``ogevm node --sim-workers``), back to back in rotating order; each pass gets
new workers (started, loaded and warmed on one forecast call outside the timing), since a
worker keeps the runs it simulated. The ratio is two workers' throughput over one's.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

from eth.db.atomic import AtomicDB
from eth.vm.chain_context import ChainContext

from benchmarks.common import (
    MODELS,
    NODE_KEY,
    SimulationOutputProvider,
    bench_accounts,
    fixture_store,
    forecast_chain,
    forecast_transactions,
    interleaved_medians,
    profile_call,
    ratio,
    row,
    target,
)
from ogevm.pipe.executor import local_executor
from ogevm.pipe.pipeline import PipeConfig, Pipeline
from ogevm.pipe.simulation import SIMULATION_GAS_LIMIT, LocalSimulator, WorkerSimulator, process_workers
from ogevm.vm.chain import DevChain
from ogevm.vm.recording_db import RecordingDB

TITLE = "Mempool simulation: CAPTURE vs raw py-evm"
SIZES = {
    "smoke": {"model": "heavy", "n": 4, "senders": 2, "repeats": 1},
    "quick": {"model": "heavy", "n": 40, "senders": 10, "repeats": 3},
    "full": {"model": "heavy", "n": 200, "senders": 10, "repeats": 5},
}
SIMULATION_VS_RAW_MIN = 0.8
TWO_WORKERS_MIN = 1.6


def _raw(chain, provider, runs):
    """py-evm's own ``VM.apply_all_transactions`` of each sender's run, each in a VM of its
    own on the head state (as the simulation partitions them), with a pending header with
    the simulation gas limit; VMs made and pre-processed beforehand (not timed)."""
    vm_class = chain.base_vm_class.with_provider(provider)
    vms = []
    for txs in runs:
        header = vm_class.create_header_from_parent(chain.head, gas_limit=SIMULATION_GAS_LIMIT,
                                                    timestamp=chain.head.timestamp + 1)
        vm = vm_class(header=header, chaindb=chain.chain.chaindb, chain_context=ChainContext(chain.chain.chain_id),
                      consensus_context=chain.chain.consensus_context)
        vm.block_preprocessing(vm.get_block())
        vms.append((vm, vm.get_header(), txs))
    return lambda: [vm.apply_all_transactions(txs, header) for vm, header, txs in vms]


def measure(model_name: str, n: int, senders: int, repeats: int, workers: int, on_run=lambda name: None,
            profile: bool = False) -> dict[str, Any]:
    model = MODELS[model_name]
    store, infos = fixture_store([model_name])
    chain, forecast = forecast_chain(store, infos[model_name], bench_accounts(senders))
    txs = forecast_transactions(chain, forecast, model, n, senders)
    executor = local_executor(chain.runtime, NODE_KEY, workers)
    pipeline = Pipeline(chain, NODE_KEY, executor=executor, config=PipeConfig(simulation_step_txs=n))
    try:
        for tx in txs:
            pipeline.submit(tx)
        # The runs the simulation makes: sender by sender, by nonce.
        state = chain.state()
        ordered = [[entry.tx for entry in run] for run in pipeline.pool.executable(state.get_nonce)]

        def capture():
            with pipeline.pool.lock:
                # time the simulation, not the settling of simulated txs or the reuse of runs
                for entry in pipeline.pool.entries():
                    entry.simulated = False
                pipeline.simulator = LocalSimulator(chain)
                missing = pipeline._simulate_step()
            return missing

        forecast.call("forecastView", [(k, 2) for k in range(model.width)])  # warm the model session
        capture()  # warm
        if profile:
            _, capture_profile = profile_call(capture, f"Pipeline._simulate_step, N={n}")
            _, raw_profile = profile_call(_raw(chain, SimulationOutputProvider(chain.models), ordered),
                                          f"VM.apply_all_transactions, N={n}")
            return {"capture": capture_profile, "raw": raw_profile}
        stats, last = _measure_pairs(
            capture, lambda: _raw(chain, SimulationOutputProvider(chain.models), ordered), repeats, on_run,
            "simulation")
        if sum(len(requests) for _, requests in last["capture"]) != n:
            raise RuntimeError("the CAPTURE pass did not find one request per transaction")
    finally:
        executor.close()
    capture_s, raw_s = stats["capture"]["seconds"], stats["raw"]["seconds"]
    pairs = [r / c for r, c in zip(stats["raw"]["runs_s"], stats["capture"]["runs_s"])]
    return {"model": model_name, "n": n, "senders": senders, "repeats": repeats,
            "capture_s": capture_s, "raw_s": raw_s, "capture_runs_s": stats["capture"]["runs_s"],
            "raw_runs_s": stats["raw"]["runs_s"], "capture_tx_s": n / capture_s, "raw_tx_s": n / raw_s,
            "capture_vs_raw": ratio(raw_s, capture_s),
            # each round runs both back to back: the median of their ratios (the target)
            "capture_vs_raw_paired": statistics.median(pairs),
            "capture_cpu_s": stats["capture"]["cpu_seconds"], "raw_cpu_s": stats["raw"]["cpu_seconds"]}


def measure_workers(model_name: str, n: int, senders: int, repeats: int, on_run=lambda name: None) -> dict[str, Any]:
    """Throughput of one simulation of the pool's runs by one worker process and by two."""
    model = MODELS[model_name]
    store, infos = fixture_store([model_name])
    db = RecordingDB(AtomicDB())
    chain, forecast = forecast_chain(store, infos[model_name], bench_accounts(senders),
                                     DevChain(store, accounts=bench_accounts(senders), db=db))
    txs = forecast_transactions(chain, forecast, model, n, senders)
    by_sender: dict[bytes, list] = {}
    for tx in txs:
        by_sender.setdefault(tx.sender, []).append(tx)
    runs = [(run, {}) for run in by_sender.values()]
    start = process_workers(chain.base_vm_class, chain.chain.chain_id)
    ready = {count: [WorkerSimulator(chain, db, start, count) for _ in range(repeats)] for count in (1, 2)}
    # Warm every worker as a node's long-lived ones are: imports, and a forecast call (other
    # features than any timed tx) so the contract's code and the model's entry are in use;
    # else each new worker pays that once inside the timing, and two workers pay it twice.
    (warm,) = forecast_transactions(chain, forecast, model, 1, 1, seed=99)
    try:
        for simulator in (s for group in ready.values() for s in group):
            simulator.simulate([([warm], {})])
        pending = {count: iter(group) for count, group in ready.items()}
        stats, last = interleaved_medians({f"{count} worker(s)": (lambda c=count: next(pending[c]).simulate(runs))
                                           for count in (1, 2)}, repeats,
                                          on_run=lambda name: on_run(f"simulation workers: {name}"))
    finally:
        for simulator in (s for group in ready.values() for s in group):
            simulator.close()
    if any(why for outcome in last["2 worker(s)"] for _, why, _ in outcome):
        raise RuntimeError("a worker rejected a transaction the pool admitted")
    one, two = stats["1 worker(s)"]["seconds"], stats["2 worker(s)"]["seconds"]
    pairs = [a / b for a, b in zip(stats["1 worker(s)"]["runs_s"], stats["2 worker(s)"]["runs_s"])]
    return {"n": n, "senders": senders, "one_worker_tx_s": n / one, "two_workers_tx_s": n / two,
            "two_vs_one_paired": statistics.median(pairs), "cpus": os.cpu_count()}


def _measure_pairs(capture, make_raw, repeats: int, on_run, label: str):
    """Interleaved medians of a CAPTURE pass and raw execution; each raw run gets a fresh VM
    (made outside the timing)."""
    raws = [make_raw() for _ in range(repeats)]
    queue = iter(raws)
    stats, last = interleaved_medians({"capture": capture, "raw": lambda: next(queue)()}, repeats,
                                      on_run=lambda name: on_run(f"{label}: {name}"))
    return stats, last


def run(config: dict[str, Any], reporter) -> dict[str, Any]:
    workers = config.get("workers") or os.cpu_count() or 1
    repeats = config["repeats"]
    reporter.total(4 * repeats + 1)
    r = measure(config["model"], config["n"], config["senders"], repeats, workers,
                on_run=lambda name: reporter.step(name))
    w = measure_workers(config["model"], config["n"], config["senders"], repeats,
                        on_run=lambda name: reporter.step(name))
    targets = [target("capture_vs_raw", f"CAPTURE simulation >= {SIMULATION_VS_RAW_MIN:g}x raw py-evm throughput "
                                        f"(N={r['n']})", ">=", SIMULATION_VS_RAW_MIN, r["capture_vs_raw_paired"],
                      f"median of back-to-back pairs; medians {r['capture_tx_s']:.1f} vs "
                      f"{r['raw_tx_s']:.1f} simulated tx/s"),
               target("two_workers", f"simulation with 2 worker processes >= {TWO_WORKERS_MIN:g}x one "
                                     f"(N={w['n']}, {w['senders']} senders, {w['cpus']} CPUs)", ">=",
                      TWO_WORKERS_MIN, w["two_vs_one_paired"],
                      f"median of back-to-back pairs; medians {w['two_workers_tx_s']:.1f} vs "
                      f"{w['one_worker_tx_s']:.1f} simulated tx/s")]
    table = [row("CAPTURE / raw", r["capture_vs_raw_paired"], "x",
                 f"a transaction is simulated once before it is ready: {r['capture_s'] / r['n'] * 1e3:.1f} ms/tx")]
    result: dict[str, Any] = {"results": r, "workers": w, "targets": targets, "table": table}
    if any(t["met"] is False for t in targets):
        reporter.note("profiling the simulation")
        result["profile"] = measure(config["model"], min(config["n"], 60), config["senders"], 1, workers,
                                    profile=True)
    reporter.step("done", max(0.0, reporter.steps - reporter.done))
    return result


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    r = result["results"]
    fig, ax = plt.subplots(figsize=(6, 4.2))
    bars = ax.bar(["Pipeline CAPTURE simulation", "raw py-evm apply_all_transactions"],
                  [r["capture_tx_s"], r["raw_tx_s"]], 0.5, color=["tab:blue", "tab:gray"])
    ax.text(bars[0].get_x() + bars[0].get_width() / 2, r["capture_tx_s"], f"{r['capture_vs_raw_paired']:.2f}x",
            ha="center", va="bottom", fontsize=9)
    ax.set_ylabel("simulated transactions per second")
    ax.set_title(f"{r['model']} PriceForecast, N={r['n']} (target CAPTURE >= {SIMULATION_VS_RAW_MIN:g}x raw)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
