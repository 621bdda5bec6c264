"""What PIPE buys, measured side by side in one run.

1. Block building: N ``PriceForecast.forecast`` transactions on ``heavy.onnx`` (about
   5 ms per inference), from several senders, mined on three twin dev chains (same
   genesis, same deploys, same transactions, same block boundaries):

   * INLINE: ``DevChain.mine`` with the models running inside the EVM (the naive way);
   * PIPE: ``Pipeline.submit`` + ``prepare()`` (simulation and executor) first, then only
     ``build_block()`` is timed: the builder replays the transactions with precomputed
     results;
   * EVM-only: ``DevChain.mine`` with a results provider that hands back the results PIPE
     computed, without any check: everything but inference, the limit for the builder.

   Every block is checked: the three chains seal byte-identical blocks (same hash) and
   the PIPE blocks are imported by a model-free :class:`BlockValidator`.

2. Executor throughput on ``small_mlp`` and ``heavy``: ``InferenceExecutor`` with 1 and 2
   workers, batched and unbatched, against raw onnxruntime on the same inputs (one
   single-threaded session: a loop of runs, one stacked run, the loop split over two
   threads), plus the cost of signing the records.

3. The targets, each with its measured value.

Run from the repository root::

    python benchmarks/bench_pipe.py            # N=200, writes benchmarks/results/pipe_<date>.json
    python benchmarks/bench_pipe.py --quick    # N=20, smaller executor runs
    python benchmarks/bench_pipe.py --n 100 --out /tmp/pipe.json --profile
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib.metadata
import io
import json
import math
import os
import platform
import pstats
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import onnxruntime as ort
from eth.db.atomic import AtomicDB
from eth_keys import keys
from eth_utils import keccak

from ogevm.abi.codec import decode_run_model_inference, encode_run_model_inference
from ogevm.abi.types import InferenceMode, ModelInferenceRequest, ModelInput, Number, NumberTensor
from ogevm.constants import DEV_BLOCK_GAS_LIMIT
from ogevm.fixtures import fixture_contract, fixture_model
from ogevm.models.binding import bind_inputs, samples
from ogevm.models.runtime import ModelRuntime
from ogevm.models.store import ModelInfo, ModelStore
from ogevm.pipe.executor import InferenceExecutor, ThreadPoolBackend
from ogevm.pipe.mempool import TxState
from ogevm.pipe.pipeline import Pipeline
from ogevm.pipe.validator import BlockValidator
from ogevm.precompile.modes import CatalogueProvider, ReplayProvider
from ogevm.records import InferenceRequest, InferenceResult, RequestId
from ogevm.verify.vanilla import output_hash, sign_result, signing_hash
from ogevm.vm.accounts import DEV_ACCOUNTS, DEV_INFERENCE_NODE_KEY, DevAccount
from ogevm.vm.chain import DeployedContract, DevChain, chain_class, genesis_params, genesis_state

RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: The inference node the benchmark signs as: the dev node the genesis registry allows.
NODE_KEY = DEV_INFERENCE_NODE_KEY
#: Gas limit of each forecast transaction: a heavy.onnx forecast uses about 1.0M gas.
FORECAST_TX_GAS = 1_200_000
FEATURES = 64  # heavy.onnx takes x [batch, 64]

#: Targets: (key, description, comparison, threshold).
TARGETS = (
    ("pipe_vs_evm_only", "PIPE build_block <= 1.2x EVM-only (N=200)", "<=", 1.2),
    ("small_mlp_batched_vs_unbatched", "small_mlp batched / unbatched, 1 worker >= 5x", ">=", 5.0),
    ("heavy_2w_vs_1w_unbatched", "heavy unbatched, 2 workers / 1 worker >= 1.7x", ">=", 1.7),
)


# --- helpers -----------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_model": cpu_model or platform.processor() or None,
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "py-evm": version("py-evm"),
        "coincurve": version("coincurve"),
        "ogevm": version("ogevm"),
        "ogevm_commit": _git_head(),
    }


def _git_head() -> str | None:
    """The checked-out commit of the repository, if it is a git checkout (read-only)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, process CPU seconds, result) of ``fn()``, after a garbage collection.

    CPU seconds count every thread of this process; on a shared machine they show how
    much of the wall time this process actually ran.
    """
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    result = fn()
    return time.perf_counter() - start, time.process_time() - cpu, result


def interleaved_medians(measurements: dict[str, Callable[[], Any]], repeats: int
                        ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Run every measurement ``repeats`` times, round-robin with a rotating order, so noise
    from other processes spreads over all of them; median wall and CPU seconds of each,
    and each one's last result."""
    names = list(measurements)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    last = {}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu, last[name] = timed(measurements[name])
            runs[name].append((wall, cpu))
    stats = {name: {"seconds": statistics.median(w for w, _ in runs[name]),
                    "cpu_seconds": statistics.median(c for _, c in runs[name]),
                    "runs_s": [w for w, _ in runs[name]]} for name in names}
    return stats, last


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("inf")


def _excluding(slow: float, fast: float, common: float) -> float | None:
    """``slow / fast`` once a cost both include is taken out; None when noise makes it
    meaningless (the common cost measured at or above one of them)."""
    if slow <= common or fast <= common:
        return None
    return (slow - common) / (fast - common)


def fixture_store(names: Sequence[str]) -> tuple[ModelStore, dict[str, ModelInfo]]:
    """A model store with the named fixture models; their catalogue entries by name."""
    store = ModelStore()
    return store, {name: store.add_file(fixture_model(name)) for name in names}


def bench_accounts(senders: int) -> tuple[DevAccount, ...]:
    """The dev accounts, plus deterministic extra ones when more senders are needed."""
    extra = tuple(DevAccount(keys.PrivateKey(keccak(b"ogevm-bench-sender-%d" % i)))
                  for i in range(max(0, senders - len(DEV_ACCOUNTS))))
    return DEV_ACCOUNTS + extra


class _Profiles:
    """Optional cProfile of named sections."""

    def __init__(self, enabled: bool) -> None:
        self.profiles = {}
        self.enabled = enabled

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        if not self.enabled:
            return fn()
        profile = self.profiles.setdefault(name, cProfile.Profile())
        return profile.runcall(fn)

    def report(self, top: int = 18) -> dict[str, str]:
        out = {}
        for name, profile in self.profiles.items():
            for key in ("tottime", "cumulative"):
                buffer = io.StringIO()
                pstats.Stats(profile, stream=buffer).strip_dirs().sort_stats(key).print_stats(top)
                out[f"{name} by {key}"] = buffer.getvalue()
        return out


# --- 1. block building ----------------------------------------------------------------------
class _TimedExecutor(InferenceExecutor):
    """The project's executor, timed: for each batch of submitted requests, the span from
    the submission to the last of its jobs finishing (added up over the rounds)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.spans: list[list[float]] = []
        self.requests = 0

    def submit(self, requests):
        span = [time.perf_counter(), 0.0]
        futures = super().submit(requests)
        self.spans.append(span)
        self.requests += len(requests)

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

    def _simulate_all(self):
        start = time.perf_counter()
        try:
            return super()._simulate_all()
        finally:
            self.simulation_seconds += time.perf_counter() - start
            self.simulation_passes += 1


class KnownResultsProvider(CatalogueProvider):
    """Everything but inference: hands back the known result of a request id, unchecked."""

    def __init__(self, catalogue, results: dict[RequestId, InferenceResult]) -> None:
        super().__init__(catalogue)
        self.results = results

    def resolve(self, request: InferenceRequest) -> InferenceResult:
        return self.results[request.id]


def _twin_chain(store: ModelStore, heavy: ModelInfo, accounts) -> tuple[DevChain, DeployedContract]:
    """A dev chain with PriceForecast(heavy) deployed; twins get identical blocks.

    Every block gets an explicit timestamp (parent + 1): with the wall clock, twins built
    a second apart would differ.
    """
    chain = DevChain(store, accounts=accounts)
    interface = fixture_contract("PriceForecast")
    deploy = chain.sign(0, None, interface.bytecode + interface.constructor_args(heavy.cid, "x", "y"))
    _, (result,) = chain.mine([deploy], timestamp=chain.head.timestamp + 1)
    if not result.success:
        raise RuntimeError(f"PriceForecast deployment failed: {result.revert_reason}")
    return chain, DeployedContract(chain, interface, result.contract_address)


def forecast_transactions(chain: DevChain, forecast, n: int, senders: int, seed: int = 7) -> list:
    """``n`` signed forecast calls with distinct features, senders round-robin, nonces in order."""
    function = forecast.interface.function("forecast")
    rng = np.random.default_rng(seed)
    nonces = [chain.nonce(chain.accounts[s].address) for s in range(senders)]
    max_fee = 10 * chain.head.base_fee_per_gas  # full blocks raise the base fee 12.5% each
    txs = []
    for k in range(n):
        sender = k % senders
        features = [(int(v), 2) for v in rng.integers(-1000, 1000, FEATURES)]
        txs.append(chain.sign(sender, forecast.address, function.encode(features), gas=FORECAST_TX_GAS,
                              nonce=nonces[sender], max_fee_per_gas=max_fee))
        nonces[sender] += 1
    return txs


def bench_block_building(n: int = 200, senders: int = 10, workers: int = 2, validate: bool = True,
                         profile: bool = False, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Scenario 1: INLINE vs PIPE replay vs EVM-only on the same ``n`` transactions."""
    # Pipeline simulates all of a sender's pending txs in one pending block; past the
    # block gas limit it rejects the rest (though they would fit in a later block). Keep
    # every sender's run under one block's gas by adding senders when N is large.
    per_sender = DEV_BLOCK_GAS_LIMIT // FORECAST_TX_GAS
    senders = min(max(senders, math.ceil(n / per_sender)), n)
    accounts = bench_accounts(senders)
    store, infos = fixture_store(["heavy"])
    heavy = infos["heavy"]
    profiles = _Profiles(profile)

    log(f"block building: setting up 3 twin chains, {n} txs from {senders} senders")
    pipe_chain, pipe_forecast = _twin_chain(store, heavy, accounts)
    evm_chain, evm_forecast = _twin_chain(store, heavy, accounts)
    inline_chain, inline_forecast = _twin_chain(store, heavy, accounts)
    if not pipe_chain.head.hash == evm_chain.head.hash == inline_chain.head.hash:
        raise RuntimeError("the twin chains differ before the benchmark")
    txs = forecast_transactions(pipe_chain, pipe_forecast, n, senders)

    # Warm up: model sessions and the EVM paths, with eth_calls (no state change).
    warm = [(int(v), 2) for v in range(FEATURES)]
    for contract in (pipe_forecast, evm_forecast, inline_forecast):
        for _ in range(3):
            contract.call("forecastView", warm)

    executor = _TimedExecutor(pipe_chain.runtime, NODE_KEY, backend=ThreadPoolBackend(workers))
    pipeline = _TimedPipeline(pipe_chain, NODE_KEY, executor=executor)
    try:
        for tx in txs:
            pipeline.submit(tx)
        log("block building: PIPE prepare (simulation + inference)")
        prepare_s, prepare_cpu_s, executed = timed(lambda: profiles.run("PIPE prepare", pipeline.prepare))
        states = [pipeline.pool.status(tx.hash).state for tx in txs]
        if any(state is not TxState.READY for state in states):
            raise RuntimeError(f"after prepare not every tx is ready: {sorted(set(states))}")

        results: dict[RequestId, InferenceResult] = {}
        evm_vm = evm_chain.base_vm_class.with_provider(KnownResultsProvider(evm_chain.models, results))
        built_blocks, per_block = [], []
        log("block building: PIPE build_block / EVM-only / INLINE, block by block")
        while any(e.state is TxState.READY for e in pipeline.pool.entries()):
            timestamp = pipe_chain.head.timestamp + 1
            pipe_s, pipe_cpu, built = timed(
                lambda: profiles.run("PIPE build_block", lambda: pipeline.build_block(timestamp=timestamp)))
            if built.deferred or built.invalid or not built.included:
                raise RuntimeError(f"PIPE block {built.block.number}: deferred {built.deferred}, "
                                   f"invalid {built.invalid}, included {len(built.included)}")
            built_blocks.append(built)
            results.update({record.request_id: record.result for record in built.records})
            block_txs, extra = list(built.block.transactions), built.block.header.extra_data

            def evm_only():
                return profiles.run("EVM-only mine", lambda: evm_chain.mine(block_txs, vm_class=evm_vm,
                                                                              extra_data=extra,
                                                                              timestamp=timestamp))

            def inline():
                return inline_chain.mine(block_txs, extra_data=extra, timestamp=timestamp)

            # Alternate which of the two twins goes first, so drift hits both alike.
            if len(built_blocks) % 2:
                evm_s, evm_cpu, (evm_block, evm_results) = timed(evm_only)
                inline_s, inline_cpu, (inline_block, inline_results) = timed(inline)
            else:
                inline_s, inline_cpu, (inline_block, inline_results) = timed(inline)
                evm_s, evm_cpu, (evm_block, evm_results) = timed(evm_only)
            _check_same_block(built.block, evm_block, inline_block)
            failed = [r for r in (*evm_results, *inline_results) if not r.success]
            if failed:
                raise RuntimeError(f"block {built.block.number}: {len(failed)} txs reverted: "
                                   f"{failed[0].revert_reason}")
            per_block.append({"number": built.block.number, "txs": len(block_txs),
                              "gas_used": built.block.header.gas_used, "records": len(built.records),
                              "pipe_build_s": pipe_s, "evm_only_s": evm_s, "inline_s": inline_s,
                              "pipe_build_cpu_s": pipe_cpu, "evm_only_cpu_s": evm_cpu, "inline_cpu_s": inline_cpu})
            log(f"  block {built.block.number}: {len(block_txs)} txs  PIPE {pipe_s:.3f}s  "
                f"EVM-only {evm_s:.3f}s  INLINE {inline_s:.3f}s")
    finally:
        executor.backend.close()

    included = sum(b["txs"] for b in per_block)
    if included != n:
        raise RuntimeError(f"{included} of {n} txs were included")
    for contract in (pipe_forecast, evm_forecast, inline_forecast):
        if contract.call("predictionCount")[0] != n:
            raise RuntimeError("a chain did not store every prediction")

    validate_s = None
    if validate:
        log("block building: importing the PIPE blocks on a model-free validator")
        validate_s, _, _ = timed(lambda: _validate(pipe_chain, built_blocks))

    pipe_s = sum(b["pipe_build_s"] for b in per_block)
    evm_s = sum(b["evm_only_s"] for b in per_block)
    inline_s = sum(b["inline_s"] for b in per_block)
    sim_s, passes = pipeline.simulation_seconds, pipeline.simulation_passes
    result = {
        "n": n,
        "senders": senders,
        "blocks": len(per_block),
        "tx_gas_limit": FORECAST_TX_GAS,
        "gas_used": sum(b["gas_used"] for b in per_block),
        "inline_s": inline_s,
        "pipe_build_s": pipe_s,
        "evm_only_s": evm_s,
        "inline_cpu_s": sum(b["inline_cpu_s"] for b in per_block),
        "pipe_build_cpu_s": sum(b["pipe_build_cpu_s"] for b in per_block),
        "evm_only_cpu_s": sum(b["evm_only_cpu_s"] for b in per_block),
        "inline_vs_pipe": ratio(inline_s, pipe_s),
        "pipe_vs_evm_only": ratio(pipe_s, evm_s),
        "pipe_vs_evm_only_median_block": statistics.median(
            ratio(b["pipe_build_s"], b["evm_only_s"]) for b in per_block),
        "pipe_vs_evm_only_cpu": ratio(sum(b["pipe_build_cpu_s"] for b in per_block),
                                      sum(b["evm_only_cpu_s"] for b in per_block)),
        "inline_vs_pipe_cpu": ratio(sum(b["inline_cpu_s"] for b in per_block),
                                    sum(b["pipe_build_cpu_s"] for b in per_block)),
        "inline_vs_evm_only": ratio(inline_s, evm_s),
        "inference_saved_s": inline_s - pipe_s,
        "inline_inference_s": inline_s - evm_s,
        "prepare_s": prepare_s,
        "prepare_cpu_s": prepare_cpu_s,
        "prepare_requests_executed": executed,
        "prepare_simulation_s": sim_s,
        "prepare_simulation_passes": passes,
        "prepare_simulation_per_pass_s": sim_s / passes if passes else 0.0,
        "simulation_pass_vs_evm_only": ratio(sim_s / passes if passes else 0.0, evm_s),
        "prepare_executor_s": executor.seconds,
        "prepare_executor_workers": workers,
        "prepare_executor_rounds": len(executor.spans),
        "prepare_other_s": max(0.0, prepare_s - sim_s - executor.seconds),
        "validator_import_s": validate_s,
        "identical_blocks": True,
        "per_block": per_block,
    }
    if profile:
        result["profiles"] = profiles.report()
    return result


def _check_same_block(pipe_block, evm_block, inline_block) -> None:
    """The three chains must seal the same block; name the header fields that differ."""
    if pipe_block.hash == evm_block.hash == inline_block.hash:
        return
    fields = [name for name in pipe_block.header.as_dict()
              if len({getattr(h, name) for h in (pipe_block.header, evm_block.header, inline_block.header)}) > 1]
    raise RuntimeError(f"block {pipe_block.number}: PIPE, EVM-only and INLINE blocks differ in {fields}")


def _validate(chain: DevChain, built_blocks) -> None:
    """Import every block of ``chain`` on a model-free replica; raises InvalidBlock."""
    replica = chain_class(chain.base_vm_class.with_provider(ReplayProvider(chain.models, {}))).from_genesis(
        AtomicDB(), genesis_params(), genesis_state(chain.accounts))
    validator = BlockValidator(replica, chain.base_vm_class, dict(chain.models))
    bundles = {b.block.number: b.records for b in built_blocks}
    for number in range(1, chain.head.block_number + 1):
        validator.import_block(chain.chain.get_canonical_block_by_number(number), bundles.get(number, []))
    if replica.get_canonical_head().hash != chain.head.hash:
        raise RuntimeError("the validator did not reach the builder's head")


# --- 2. executor throughput -------------------------------------------------------------------
def inference_requests(info: ModelInfo, n: int, seed: int = 11) -> list[InferenceRequest]:
    """``n`` requests for ``info`` as the precompile builds them from real calldata."""
    rng = np.random.default_rng(seed)
    width = info.inputs[0].shape[1]
    requests = []
    for i in range(n):
        values = tuple(Number(int(v), 2) for v in rng.integers(-1000, 1000, width))
        call = ModelInferenceRequest(InferenceMode.VANILLA, info.cid,
                                     ModelInput((NumberTensor("x", values, (1, width)),), ()))
        calldata = encode_run_model_inference(call)
        decoded = decode_run_model_inference(calldata)
        requests.append(InferenceRequest(
            RequestId(keccak(b"bench-tx-%d" % i), 0), keccak(calldata), decoded,
            samples(info, decoded.input), bind_inputs(info, decoded.input)))
    return requests


def _plain_session(data: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def bench_executor(model: str, n: int, repeats: int = 3,
                   log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Scenario 2: executor configurations vs raw onnxruntime on ``n`` requests."""
    store, infos = fixture_store([model])
    info = infos[model]
    requests = inference_requests(info, n)
    feeds = [dict(r.feeds) for r in requests]
    stacked = {name: np.concatenate([f[name] for f in feeds]) for name in feeds[0]}

    # Raw onnxruntime, one single-threaded session: the physical limit on this machine.
    session = _plain_session(store.load(info.cid))
    runtime = ModelRuntime(store)
    backends = {workers: ThreadPoolBackend(workers) for workers in (1, 2)}
    raw_pool = ThreadPoolExecutor(max_workers=2)
    halves = [feeds[: n // 2], feeds[n // 2:]]
    measurements: dict[str, Callable[[], Any]] = {
        "raw_ort_loop": lambda: [session.run(None, f) for f in feeds],
        "raw_ort_stacked": lambda: session.run(None, stacked),
        # The parallel limit: the same loop split over two threads (ORT releases the GIL).
        "raw_ort_loop_2threads": lambda: list(raw_pool.map(lambda part: [session.run(None, f) for f in part],
                                                            halves)),
    }
    executors = {}
    for workers, backend in backends.items():
        for batching in (False, True):
            name = f"{workers}w_{'batched' if batching else 'unbatched'}"
            executors[name] = InferenceExecutor(runtime, NODE_KEY, backend=backend, batching=batching)
    try:
        # Warm up: sessions, threads, first-call paths; one full run gives the results
        # the signing measurements below sign.
        for f in feeds[:5]:
            session.run(None, f)
        session.run(None, stacked)
        for executor in executors.values():
            executor.execute(requests[:8])
        reference = [record.result for record in executors["1w_unbatched"].execute(requests)]
        if any(r.error is not None for r in reference):
            raise RuntimeError(f"{model}: some requests failed")
        for name, executor in executors.items():
            measurements[name] = (lambda ex: lambda: ex.execute(requests))(executor)
        # Signing alone: what every record costs on top of running the model, split into
        # hashing the output (ABI-encodes it) and the secp256k1 signature itself. Measured
        # in the same rotation as the executors, so it sees the same machine.
        hashes = [output_hash(result) for result in reference]
        messages = [signing_hash(r.request_id, r.digest, h) for r, h in zip(reference, hashes)]
        measurements["sign_result"] = lambda: [sign_result(NODE_KEY, result) for result in reference]
        measurements["sign_output_hash"] = lambda: [output_hash(result) for result in reference]
        measurements["sign_secp256k1"] = lambda: [NODE_KEY.sign_msg_hash(m) for m in messages]
        stats, last = interleaved_medians(measurements, repeats)
    finally:
        for backend in backends.values():
            backend.close()
        raw_pool.shutdown()

    for name in executors:
        if [record.result for record in last[name]] != reference:
            raise RuntimeError(f"{model}: executor results differ between configurations ({name})")
    for name, s in stats.items():
        s["requests_per_s"] = n / s["seconds"]
        s["cpu_utilisation"] = s["cpu_seconds"] / s["seconds"]
        log(f"executor {model}: {name} {s['seconds'] * 1e3:.1f} ms (cpu {s['cpu_seconds'] * 1e3:.1f} ms)")
    signing_s = stats["sign_result"]["seconds"]
    hashes_s, secp_s = stats["sign_output_hash"]["seconds"], stats["sign_secp256k1"]["seconds"]

    configs = {name: {"workers": int(name[0]), "batching": name.endswith("_batched"), **stats[name]}
               for name in executors}
    sec = {name: s["seconds"] for name, s in stats.items()}
    raw_loop_s, raw_stacked_s = sec["raw_ort_loop"], sec["raw_ort_stacked"]
    return {
        "model": model,
        "n": n,
        "repeats": repeats,
        "raw_ort_loop_s": raw_loop_s,
        "raw_ort_loop_cpu_s": stats["raw_ort_loop"]["cpu_seconds"],
        "raw_ort_loop_runs_s": stats["raw_ort_loop"]["runs_s"],
        "raw_ort_loop_requests_per_s": n / raw_loop_s,
        "raw_ort_stacked_s": raw_stacked_s,
        "raw_ort_stacked_cpu_s": stats["raw_ort_stacked"]["cpu_seconds"],
        "raw_ort_stacked_runs_s": stats["raw_ort_stacked"]["runs_s"],
        "raw_ort_stacked_requests_per_s": n / raw_stacked_s,
        "raw_ort_loop_2threads_s": sec["raw_ort_loop_2threads"],
        "raw_ort_loop_2threads_cpu_s": stats["raw_ort_loop_2threads"]["cpu_seconds"],
        "raw_ort_2threads_vs_1thread": ratio(raw_loop_s, sec["raw_ort_loop_2threads"]),
        "configs": configs,
        "batched_vs_unbatched_1w": ratio(sec["1w_unbatched"], sec["1w_batched"]),
        "batched_vs_unbatched_2w": ratio(sec["2w_unbatched"], sec["2w_batched"]),
        "batched_vs_unbatched_1w_excluding_signing": _excluding(sec["1w_unbatched"], sec["1w_batched"], signing_s),
        "unbatched_2w_vs_1w": ratio(sec["1w_unbatched"], sec["2w_unbatched"]),
        "batched_2w_vs_1w": ratio(sec["1w_batched"], sec["2w_batched"]),
        "executor_1w_unbatched_vs_raw_loop": ratio(sec["1w_unbatched"], raw_loop_s),
        "executor_1w_batched_vs_raw_stacked": ratio(sec["1w_batched"], raw_stacked_s),
        "best_executor_vs_best_raw": ratio(min(sec[name] for name in executors), min(raw_loop_s, raw_stacked_s)),
        "executor_overhead_per_request_us": (sec["1w_unbatched"] - signing_s - raw_loop_s) / n * 1e6,
        "signing_s": signing_s,
        "signing_cpu_s": stats["sign_result"]["cpu_seconds"],
        "signing_per_record_us": signing_s / n * 1e6,
        "signing_output_hash_s": hashes_s,
        "signing_secp256k1_s": secp_s,
        "signing_share": {name: signing_s / sec[name] for name in executors},
    }


# --- 3. targets, table -------------------------------------------------------------------
def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its measured value, whether it is met, and what bounds it here."""
    block, small, heavy = results["block_building"], results["executor"]["small_mlp"], results["executor"]["heavy"]
    measured = {
        "pipe_vs_evm_only": (block["pipe_vs_evm_only"],
                             f"CPU-time ratio {block['pipe_vs_evm_only_cpu']:.3f}x, median block "
                             f"{block['pipe_vs_evm_only_median_block']:.3f}x, N={block['n']}"),
        "small_mlp_batched_vs_unbatched": (small["batched_vs_unbatched_1w"],
                                           f"{_x(small['batched_vs_unbatched_1w_excluding_signing'])} with signing "
                                           f"excluded; signing is {small['signing_share']['1w_batched'] * 100:.0f}% "
                                           f"of batched executor time"),
        "heavy_2w_vs_1w_unbatched": (heavy["unbatched_2w_vs_1w"],
                                     f"raw ORT on 2 threads vs 1 on this machine: "
                                     f"{heavy['raw_ort_2threads_vs_1thread']:.2f}x"),
    }
    targets = []
    for key, description, op, threshold in TARGETS:
        value, context = measured[key]
        met = value <= threshold if op == "<=" else value >= threshold
        targets.append({"key": key, "target": description, "op": op, "threshold": threshold,
                        "value": value, "met": met, "context": context})
    return targets


def format_report(results: dict[str, Any]) -> str:
    """The human-readable table of ``results`` (what ``main`` prints)."""
    b, machine = results["block_building"], results["machine"]
    n = b["n"]
    out = [
        f"ogevm PIPE benchmark  {machine['date']}  {machine['cpu_model']}, {machine['cpus_available']} CPUs  "
        f"load avg {_load(machine['load_average'])} (start) / {_load(results.get('load_average_end'))} (end)",
        f"python {machine['python']}  numpy {machine['numpy']}  onnxruntime {machine['onnxruntime']}  "
        f"py-evm {machine['py-evm']}  coincurve {machine['coincurve']}  commit {(machine.get('ogevm_commit') or '?')[:10]}",
        "",
        f"1. Block building: {n} PriceForecast.forecast txs on heavy.onnx from {b['senders']} senders, "
        f"{b['blocks']} block(s), {b['gas_used'] / 1e6:.1f}M gas; the three chains sealed identical blocks"
        + (", validated by a model-free validator" if b.get("validator_import_s") is not None else ""),
        f"   {'':44}{'wall s':>9}{'ms/tx':>8}{'/EVM-only':>11}{'CPU s':>9}{'/EVM-only':>11}",
    ]

    def row(label, wall, cpu=None):
        cpu_text = f"{cpu:>9.3f}{ratio(cpu, b['evm_only_cpu_s']):>10.2f}x" if cpu is not None else ""
        out.append(f"   {label:<44}{wall:>9.3f}{wall / n * 1e3:>8.1f}{ratio(wall, b['evm_only_s']):>10.2f}x{cpu_text}")

    row("(a) INLINE  DevChain.mine", b["inline_s"], b["inline_cpu_s"])
    row("(b) PIPE    build_block (replay)", b["pipe_build_s"], b["pipe_build_cpu_s"])
    row("(c) EVM-only (inference stubbed)", b["evm_only_s"], b["evm_only_cpu_s"])
    row("PIPE prepare (before the block)", b["prepare_s"], b["prepare_cpu_s"])
    row(f"  simulation: {b['prepare_simulation_passes']} passes", b["prepare_simulation_s"])
    row(f"  executor: {b['prepare_requests_executed']} requests, {b['prepare_executor_workers']} workers",
        b["prepare_executor_s"])
    row("  pool bookkeeping", b["prepare_other_s"])
    if b.get("validator_import_s") is not None:
        row("validator import of the PIPE blocks", b["validator_import_s"])
    out += [
        f"   INLINE / PIPE = {b['inline_vs_pipe']:.2f}x (CPU {b['inline_vs_pipe_cpu']:.2f}x)   "
        f"PIPE / EVM-only = {b['pipe_vs_evm_only']:.3f}x (CPU {b['pipe_vs_evm_only_cpu']:.3f}x, "
        f"median block {b['pipe_vs_evm_only_median_block']:.3f}x)",
        f"   inference time off the block path: INLINE - PIPE = {b['inference_saved_s']:.3f} s; "
        f"INLINE - EVM-only = {b['inline_inference_s']:.3f} s",
        f"   one simulation pass = {b['prepare_simulation_per_pass_s']:.3f} s = "
        f"{b['simulation_pass_vs_evm_only']:.2f}x the EVM-only block time",
        "",
        f"2. Executor throughput (median of {results['config']['repeats']} interleaved runs)",
        f"   {'model':<10}{'N':>6}  {'configuration':<26}{'wall ms':>10}{'req/s':>10}{'/raw loop':>11}"
        f"{'CPU ms':>10}{'signing':>9}",
    ]
    for model, e in results["executor"].items():
        entries = [("raw ORT loop, 1 thread", e["raw_ort_loop_s"], e["raw_ort_loop_cpu_s"], None),
                   ("raw ORT, one stacked run", e["raw_ort_stacked_s"], e["raw_ort_stacked_cpu_s"], None),
                   ("raw ORT loop, 2 threads", e["raw_ort_loop_2threads_s"], e["raw_ort_loop_2threads_cpu_s"], None)]
        entries += [(f"executor {name.replace('_', ' ')}", c["seconds"], c["cpu_seconds"], e["signing_share"][name])
                    for name, c in e["configs"].items()]
        for i, (label, wall, cpu, share) in enumerate(entries):
            head = f"{model:<10}{e['n']:>6}" if i == 0 else " " * 16
            share_text = f"{share * 100:>8.0f}%" if share is not None else ""
            out.append(f"   {head}  {label:<26}{wall * 1e3:>10.1f}{e['n'] / wall:>10.0f}"
                       f"{ratio(wall, e['raw_ort_loop_s']):>10.2f}x{cpu * 1e3:>10.1f}{share_text}")
        out += [
            f"   {'':16}  batched/unbatched {e['batched_vs_unbatched_1w']:.2f}x (1w), {e['batched_vs_unbatched_2w']:.2f}x "
            f"(2w), {_x(e['batched_vs_unbatched_1w_excluding_signing'])} (1w, signing excluded)",
            f"   {'':16}  2w/1w {e['unbatched_2w_vs_1w']:.2f}x unbatched, {e['batched_2w_vs_1w']:.2f}x batched "
            f"(raw ORT 2 threads/1 thread {e['raw_ort_2threads_vs_1thread']:.2f}x)",
            f"   {'':16}  executor/raw: 1w unbatched / loop {e['executor_1w_unbatched_vs_raw_loop']:.2f}x, "
            f"1w batched / stacked {e['executor_1w_batched_vs_raw_stacked']:.2f}x, "
            f"best / best {e['best_executor_vs_best_raw']:.2f}x",
            f"   {'':16}  signing {e['n']} records alone: {e['signing_s'] * 1e3:.1f} ms, "
            f"{e['signing_per_record_us']:.0f} us each (output hash {e['signing_output_hash_s'] * 1e3:.1f} ms, "
            f"secp256k1 {e['signing_secp256k1_s'] * 1e3:.1f} ms); other executor overhead "
            f"{e['executor_overhead_per_request_us']:.0f} us/request",
        ]
    out += ["", "3. Targets"]
    for t in results["targets"]:
        out.append(f"   {t['target']:<50}measured {t['value']:>5.2f}x  {'met' if t['met'] else 'not met':<8}"
                   f"({t['context']})")
    if n != 200:
        out.append(f"   (the block-building target is defined at N=200; this run used N={n})")
    out.append(f"\ntotal wall time {results['wall_s']:.1f} s "
               f"(block building {b['wall_s']:.1f} s, executor {results['executor_wall_s']:.1f} s)")
    return "\n".join(out)


def _x(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _load(values) -> str:
    return "/".join(f"{v:.1f}" for v in values) if values else "?"


def run(n: int = 200, small_n: int = 2000, heavy_n: int = 200, repeats: int = 3, senders: int = 10,
        validate: bool = True, profile: bool = False, quick: bool = False,
        log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Every scenario; the results as one JSON-ready dict."""
    start = time.perf_counter()
    results: dict[str, Any] = {
        "machine": machine_info(),
        "config": {"n": n, "quick": quick, "small_mlp_n": small_n, "heavy_n": heavy_n, "repeats": repeats,
                   "senders": senders, "validate": validate, "profile": profile},
    }
    block_start = time.perf_counter()
    results["block_building"] = bench_block_building(n, senders, validate=validate, profile=profile, log=log)
    results["block_building"]["wall_s"] = time.perf_counter() - block_start
    executor_start = time.perf_counter()
    results["executor"] = {
        "small_mlp": bench_executor("small_mlp", small_n, repeats, log=log),
        "heavy": bench_executor("heavy", heavy_n, repeats, log=log),
    }
    results["executor_wall_s"] = time.perf_counter() - executor_start
    results["targets"] = evaluate_targets(results)
    results["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    results["wall_s"] = time.perf_counter() - start
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=None, help="block-building transactions (default 200; --quick 20)")
    parser.add_argument("--quick", action="store_true", help="small sizes: N=20, 200 small_mlp and 20 heavy requests")
    parser.add_argument("--small-n", type=int, default=None, help="small_mlp requests (default 2000; --quick 200)")
    parser.add_argument("--heavy-n", type=int, default=None, help="heavy requests (default 200; --quick 20)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per executor measurement (median)")
    parser.add_argument("--senders", type=int, default=10, help="distinct senders of the block-building txs")
    parser.add_argument("--no-validate", action="store_true", help="skip importing the PIPE blocks on a validator")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile prepare, build_block and EVM-only mining (slows them; ratios stay comparable)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON output (default benchmarks/results/pipe_<date>.json, -quick with --quick)")
    args = parser.parse_args(argv)

    n = args.n or (20 if args.quick else 200)
    small_n = args.small_n or (200 if args.quick else 2000)
    heavy_n = args.heavy_n or (20 if args.quick else 200)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    results = run(n, small_n, heavy_n, args.repeats, args.senders, validate=not args.no_validate,
                  profile=args.profile, quick=args.quick, log=log)
    report = format_report(results)
    print(report)
    for name, text in results["block_building"].get("profiles", {}).items():
        print(f"\n--- profile: {name} ---\n{text}")
    out = args.out
    if out is None:
        day = datetime.now(timezone.utc).strftime("%Y-%m-%d")
        out = RESULTS_DIR / f"pipe_{day}{'-quick' if args.quick else ''}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
