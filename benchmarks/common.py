"""What the scenarios share: timing, targets, profiles, twin chains, transactions, requests,
bursts through a dev node in PIPE and INLINE modes.

Everything measured goes through the project's own components (DevChain, Pipeline,
BlockBuilder, InferenceExecutor, ModelRuntime, BlockValidator, the precompile); the
helpers here only build inputs, time, and summarise.
"""

from __future__ import annotations

import cProfile
import gc
import math
import pstats
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import onnxruntime as ort
from eth_keys import keys
from eth_utils import keccak

from ogevm.abi.codec import decode_run_model_inference, encode_run_model_inference
from ogevm.abi.types import (
    SIMULATION_OUTPUT,
    InferenceMode,
    ModelInferenceRequest,
    ModelInput,
    Number,
    NumberTensor,
)
from ogevm.constants import DEV_BLOCK_GAS_LIMIT, INFERENCE_PRECOMPILE_ADDRESS
from ogevm.fixtures import fixture_contract, fixture_model
from ogevm.models.binding import bind_inputs, samples
from ogevm.models.store import ModelInfo, ModelStore
from ogevm.node.node import DevNode, NodeConfig
from ogevm.pipe.executor import ThreadPoolBackend
from ogevm.pipe.worker import InferenceWorker
from ogevm.precompile.modes import CatalogueProvider
from ogevm.records import InferenceRequest, InferenceResult, RequestId
from ogevm.vm.accounts import DEV_ACCOUNTS, DEV_INFERENCE_NODE_KEY, DevAccount
from ogevm.vm.chain import DeployedContract, DevChain

#: The inference node the benchmarks sign as: the dev node the genesis registry allows.
NODE_KEY = DEV_INFERENCE_NODE_KEY


@dataclass(frozen=True)
class BenchModel:
    """A fixture model the scenarios send transactions to: input ``x [1, width]``."""

    name: str
    width: int
    #: Gas limit of one ``PriceForecast.forecast`` transaction on it (with headroom).
    forecast_gas: int
    #: Gas limit of one transaction straight to the precompile.
    direct_gas: int
    #: Folder of the file under ``fixtures/models/`` ("" for the models the tests load).
    folder: str = ""

    @property
    def fixture(self) -> str:
        """The name :func:`~ogevm.fixtures.fixture_model` finds the file by."""
        return f"{self.folder}/{self.name}" if self.folder else self.name


#: small_mlp: about 10 us per inference; heavy: about 5 ms (fixtures/models/README.md).
MODELS = {
    "small_mlp": BenchModel("small_mlp", 8, forecast_gas=250_000, direct_gas=150_000),
    "heavy": BenchModel("heavy", 64, forecast_gas=1_200_000, direct_gas=1_100_000),
}


# --- timing --------------------------------------------------------------------------------
def timed(fn: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, process CPU seconds, result) of ``fn()``, after a garbage collection.

    CPU seconds count every thread of this process; on a shared machine they show how
    much of the wall time this process actually ran.
    """
    gc.collect()
    cpu, start = time.process_time(), time.perf_counter()
    result = fn()
    return time.perf_counter() - start, time.process_time() - cpu, result


def interleaved_medians(measurements: dict[str, Callable[[], Any]], repeats: int,
                        on_run: Callable[[str], None] | None = None
                        ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Run every measurement ``repeats`` times, round-robin with a rotating order, so noise
    from other processes spreads over all of them. Returns the median wall and CPU
    seconds of each (with every run's wall time) and each one's last result."""
    names = list(measurements)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    last = {}
    for r in range(repeats):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            wall, cpu, last[name] = timed(measurements[name])
            runs[name].append((wall, cpu))
            if on_run is not None:
                on_run(name)
    stats = {name: {"seconds": statistics.median(w for w, _ in runs[name]),
                    "cpu_seconds": statistics.median(c for _, c in runs[name]),
                    "runs_s": [w for w, _ in runs[name]]} for name in names}
    return stats, last


def ratio(a: float | None, b: float | None) -> float | None:
    """``a / b``; None when either is missing or ``b`` is not positive."""
    if a is None or b is None or b <= 0:
        return None
    return a / b


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values``, linearly interpolated."""
    return float(np.percentile(np.asarray(values, dtype=float), q))


# --- targets -------------------------------------------------------------------------------
def target(key: str, description: str, op: str, threshold: float | tuple[float, float],
           value: float | None, context: str = "", unit: str = "x") -> dict[str, Any]:
    """One target with its measured value: ``op`` is ``<=``, ``>=`` or ``between``.

    ``status`` is ``met``, ``not met`` or ``n/a`` (nothing measured: ``value`` is None).
    """
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        met = None
    elif op == "<=":
        met = value <= threshold
    elif op == ">=":
        met = value >= threshold
    elif op == "between":
        low, high = threshold
        met = low <= value <= high
    else:
        raise ValueError(f"unknown comparison {op!r}")
    status = "n/a" if met is None else ("met" if met else "not met")
    return {"key": key, "target": description, "op": op,
            "threshold": list(threshold) if isinstance(threshold, tuple) else threshold,
            "value": value, "unit": unit, "met": met, "status": status, "context": context}


def row(label: str, value: float | None, unit: str = "x", note: str = "") -> dict[str, Any]:
    """A line of the printed table: a ratio (``x``) or a quantity measured in this run."""
    return {"label": label, "value": value, "unit": unit, "note": note}


# --- profiles --------------------------------------------------------------------------------
def _package(filename: str) -> str:
    """Which library a profiled function belongs to (for the time-by-package summary)."""
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins / C"
    parts = filename.replace("\\", "/").split("/")
    if "site-packages" in parts:
        rest = parts[parts.index("site-packages") + 1:]
        name = rest[0] if rest else filename
        if name == "ogevm" and len(rest) > 1:
            return "ogevm." + rest[1].removesuffix(".py")
        return {"eth": "py-evm"}.get(name, name.removesuffix(".py"))
    if "ogevm" in parts:
        rest = parts[len(parts) - 1 - parts[::-1].index("ogevm") + 1:]
        return "ogevm." + rest[0].removesuffix(".py") if rest else "ogevm"
    if "benchmarks" in parts:
        return "benchmarks"
    if "python3" in "/".join(parts) or "lib/python" in "/".join(parts):
        return "stdlib"
    return parts[-1]


def summarize_profile(stats: pstats.Stats, what: str, top: int = 15, clock: str = "wall") -> dict[str, Any]:
    """The top functions (self and cumulative time), time by package, and short findings.

    ``clock`` says what the profiler timed: ``wall`` (cProfile's default: cheap, but a pause
    of the process on a busy machine lands on whatever function was running) or ``thread
    CPU`` (``time.thread_time``: immune to pauses, about 4x the profiling overhead).
    """
    entries = stats.stats  # type: ignore[attr-defined]
    total = sum(tt for (_, _, tt, _, _) in entries.values()) or 1e-12

    def describe(key, value) -> dict[str, Any]:
        filename, line, name = key
        cc, nc, tt, ct, _ = value
        short = "/".join(filename.replace("\\", "/").split("/")[-2:]) if not filename.startswith("~") else "~"
        return {"function": name, "where": f"{short}:{line}", "package": _package(filename), "calls": nc,
                "self_s": round(tt, 6), "cumulative_s": round(ct, 6),
                "self_share": round(tt / total, 4), "cumulative_share": round(min(ct / total, 1.0), 4)}

    by_self = sorted(entries.items(), key=lambda kv: kv[1][2], reverse=True)[:top]
    by_cumulative = sorted(entries.items(), key=lambda kv: kv[1][3], reverse=True)[:top * 2]
    packages: dict[str, float] = {}
    for (filename, _, _), (_, _, tt, _, _) in entries.items():
        packages[_package(filename)] = packages.get(_package(filename), 0.0) + tt
    shares = {name: round(seconds / total, 4)
              for name, seconds in sorted(packages.items(), key=lambda kv: kv[1], reverse=True) if seconds / total >= 0.005}
    top_self = [describe(k, v) for k, v in by_self]
    top_cumulative = [describe(k, v) for k, v in by_cumulative]
    # Cumulative listings start with generic frames (the profiled call, py-evm's
    # interpreter); ogevm's own functions by cumulative time say where its time goes.
    ogevm_cumulative = [describe(k, v) for k, v in sorted(entries.items(), key=lambda kv: kv[1][3], reverse=True)
                        if _package(k[0]).startswith("ogevm.")][:top]
    findings = [f"{what}: {total:.3f} s profiled ({clock} clock)"]
    findings.append("time by package (self): " + ", ".join(f"{name} {share * 100:.0f}%"
                                                          for name, share in list(shares.items())[:6]))
    findings += [f"self {e['self_share'] * 100:.1f}%: {e['function']} ({e['where']}, {e['calls']} calls)"
                 for e in top_self[:5]]
    findings += [f"cumulative {e['cumulative_share'] * 100:.1f}%: {e['function']} ({e['where']}, {e['calls']} calls)"
                 for e in ogevm_cumulative[:8]]
    return {"what": what, "clock": clock, "total_s": round(total, 6), "by_package": shares, "top_self": top_self,
            "top_cumulative": top_cumulative, "ogevm_cumulative": ogevm_cumulative, "findings": findings}


def profile_call(fn: Callable[[], Any], what: str, top: int = 15, cpu_clock: bool = False
                 ) -> tuple[Any, dict[str, Any]]:
    """Run ``fn`` under cProfile (this thread only); its result and the summary. With
    ``cpu_clock`` the profiler counts this thread's CPU time instead of wall time."""
    profiler = cProfile.Profile(time.thread_time) if cpu_clock else cProfile.Profile()
    result = profiler.runcall(fn)
    return result, summarize_profile(pstats.Stats(profiler), what, top, "thread CPU" if cpu_clock else "wall")


class ThreadProfiles:
    """cProfile of work run on other threads: wrap each callable with :meth:`wrap`; every
    thread gets its own profiler (cProfile is per thread), counting that thread's CPU
    time; :meth:`summary` merges them."""

    def __init__(self) -> None:
        self._local = threading.local()
        self._profilers: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args, **kwargs):
            profiler = getattr(self._local, "profiler", None)
            if profiler is None:
                profiler = self._local.profiler = cProfile.Profile(time.thread_time)
                with self._lock:
                    self._profilers.append(profiler)
            return profiler.runcall(fn, *args, **kwargs)
        return run

    def summary(self, what: str, top: int = 15) -> dict[str, Any] | None:
        with self._lock:
            profilers = [p for p in self._profilers if p.getstats()]
        if not profilers:
            return None
        stats = pstats.Stats(profilers[0])
        for profiler in profilers[1:]:
            stats.add(profiler)
        return summarize_profile(stats, what, top, "thread CPU")


class ProfiledBackend(ThreadPoolBackend):
    """The executor's thread backend with every job run under a per-thread cProfile."""

    def __init__(self, worker: InferenceWorker, workers: int, profiles: ThreadProfiles) -> None:
        super().__init__(worker, workers)
        self.profiles = profiles

    def _run(self, job):
        return self.profiles.wrap(self.worker.run)(job)


# --- models, accounts, chains ----------------------------------------------------------------
def fixture_store(names: Sequence[str]) -> tuple[ModelStore, dict[str, ModelInfo]]:
    """A model store with the named fixture models; their catalogue entries by name."""
    store = ModelStore()
    return store, {name: store.add_file(fixture_model(name)) for name in names}


def bench_accounts(senders: int) -> tuple[DevAccount, ...]:
    """The dev accounts, plus deterministic extra ones when more senders are needed (the
    extra ones are funded at genesis when passed to ``DevChain(accounts=...)``)."""
    extra = tuple(DevAccount(keys.PrivateKey(keccak(b"ogevm-bench-sender-%d" % i)))
                  for i in range(max(0, senders - len(DEV_ACCOUNTS))))
    return DEV_ACCOUNTS + extra


def senders_for(n: int, gas_per_tx: int, block_gas_limit: int, minimum: int = 10) -> int:
    """Enough senders that one sender's queue fits in a block (so block boundaries fall
    between senders' runs, as in a busy pool), at least ``minimum``, at most ``n``."""
    per_sender = max(1, block_gas_limit // gas_per_tx)
    return max(1, min(max(minimum, math.ceil(n / per_sender)), n))


def forecast_chain(store: ModelStore, info: ModelInfo, accounts: Sequence[DevAccount],
                   chain: DevChain | None = None) -> tuple[DevChain, DeployedContract]:
    """A dev chain with ``PriceForecast(info)`` deployed in block 1 at a fixed timestamp:
    chains made this way from the same store and accounts are twins (identical blocks)."""
    chain = chain or DevChain(store, accounts=accounts)
    interface = fixture_contract("PriceForecast")
    deploy = chain.sign(0, None, interface.bytecode + interface.constructor_args(info.cid, "x", "y"))
    _, (result,) = chain.mine([deploy], timestamp=chain.head.timestamp + 1)
    if not result.success:
        raise RuntimeError(f"PriceForecast deployment failed: {result.revert_reason}")
    return chain, DeployedContract(chain, interface, result.contract_address)


def features(rng: np.random.Generator, width: int) -> list[tuple[int, int]]:
    """``width`` Numbers (value, decimals) in [-10, 10) with 2 decimals."""
    return [(int(v), 2) for v in rng.integers(-1000, 1000, width)]


def _signed(chain: DevChain, n: int, senders: int, to_and_data: Callable[[int], tuple[bytes, bytes]],
            gas: int) -> list:
    nonces = [chain.nonce(chain.accounts[s].address) for s in range(senders)]
    # Full blocks raise the base fee by 12.5% each: cover every block these txs can fill.
    blocks = math.ceil(n * gas / chain.head.gas_limit)
    max_fee = int(chain.head.base_fee_per_gas * 1.125 ** (blocks + 4)) + 1
    txs = []
    for k in range(n):
        sender = k % senders
        to, data = to_and_data(k)
        txs.append(chain.sign(sender, to, data, gas=gas, nonce=nonces[sender], max_fee_per_gas=max_fee))
        nonces[sender] += 1
    return txs


def forecast_transactions(chain: DevChain, forecast: DeployedContract, model: BenchModel, n: int,
                          senders: int, seed: int = 7) -> list:
    """``n`` signed ``forecast`` calls with distinct features, senders round-robin, nonces in order."""
    function = forecast.interface.function("forecast")
    rng = np.random.default_rng(seed)
    return _signed(chain, n, senders, lambda _: (forecast.address, function.encode(features(rng, model.width))),
                   model.forecast_gas)


def direct_calldata(info: ModelInfo, width: int, rng: np.random.Generator,
                    mode: InferenceMode = InferenceMode.VANILLA) -> bytes:
    """``runModelInference`` calldata for ``x [1, width]`` with random Numbers."""
    values = tuple(Number(v, d) for v, d in features(rng, width))
    return encode_run_model_inference(
        ModelInferenceRequest(mode, info.cid, ModelInput((NumberTensor("x", values, (1, width)),), ())))


def direct_transactions(chain: DevChain, info: ModelInfo, model: BenchModel, n: int, senders: int,
                        seed: int = 7) -> list:
    """``n`` signed transactions sent straight to the precompile (no contract code)."""
    rng = np.random.default_rng(seed)
    return _signed(chain, n, senders,
                   lambda _: (INFERENCE_PRECOMPILE_ADDRESS, direct_calldata(info, model.width, rng)),
                   model.direct_gas)


def chunk_by_gas(txs: Sequence, gas_limit: int) -> list[list]:
    """Consecutive groups of ``txs`` whose gas limits fit in one block each."""
    blocks, current, used = [], [], 0
    for tx in txs:
        if current and used + tx.gas > gas_limit:
            blocks.append(current)
            current, used = [], 0
        current.append(tx)
        used += tx.gas
    if current:
        blocks.append(current)
    return blocks


# --- a burst through a dev node ---------------------------------------------------------------
SENDERS = 10
POLL_SECONDS = 0.02
TIMEOUT_SECONDS = 900.0


class ObservedNode(DevNode):
    """The dev node, with the time each transaction reached a terminal state, its
    simulation passes counted and timed, and optionally its producer thread profiled."""

    def __init__(self, config: NodeConfig, profile: bool = False) -> None:
        self.finished_at: dict[bytes, float] = {}
        self.profiler = cProfile.Profile() if profile else None
        super().__init__(config)
        self.simulation = {"calls": 0, "seconds": 0.0}
        simulate = self.pipeline._simulate_step

        def counted():
            self.simulation["calls"] += 1
            start = time.perf_counter()
            try:
                return simulate()
            finally:
                self.simulation["seconds"] += time.perf_counter() - start

        self.pipeline._simulate_step = counted

    def _finished(self, entry) -> None:
        self.finished_at[entry.hash] = time.perf_counter()
        super()._finished(entry)

    def _produce(self) -> None:
        if self.profiler is None:
            return super()._produce()
        return self.profiler.runcall(super()._produce)


def node_workload(node: DevNode, model: BenchModel, workload: str, n: int):
    """Add the model, deploy what the workload (``direct`` or ``forecast``) needs, warm the
    model; the signed burst and the model's catalogue entry."""
    chain = node.chain
    with node.lock:
        info = chain.add_model(fixture_model(model.fixture))
        if workload == "forecast":
            _, forecast = forecast_chain(chain.models, info, chain.accounts, chain=chain)
            forecast.call("forecastView", features(np.random.default_rng(0), model.width))
            txs = forecast_transactions(chain, forecast, model, n, SENDERS)
        else:
            chain.call(INFERENCE_PRECOMPILE_ADDRESS, direct_calldata(info, model.width, np.random.default_rng(0)))
            txs = direct_transactions(chain, info, model, n, SENDERS)
    return txs, info


def wait_settled(node, hashes: list[bytes], start: float) -> dict[bytes, dict]:
    """Each transaction's final status, polled until every one is included or rejected; raises
    if some are not ``TIMEOUT_SECONDS`` after ``start``."""
    pending, states = set(hashes), {}
    while pending and time.perf_counter() - start < TIMEOUT_SECONDS:
        for tx_hash in list(pending):
            status = node.status(tx_hash)
            if status is not None and status["state"] in ("included", "rejected"):
                states[tx_hash] = status
                pending.discard(tx_hash)
        if pending:
            time.sleep(POLL_SECONDS)
    if pending:
        raise RuntimeError(f"{len(pending)} of {len(hashes)} txs not settled after {TIMEOUT_SECONDS:.0f} s")
    return states


def pipe_burst(model: BenchModel, workload: str, n: int, workers: int, profile: bool = False) -> dict[str, Any]:
    """A burst of ``n`` signed transactions through a PIPE :class:`ObservedNode` (automine,
    ``workers`` executor threads): throughput, latencies, blocks, EVM passes per tx."""
    node = ObservedNode(NodeConfig(workers=workers), profile=profile)
    try:
        txs, _ = node_workload(node, model, workload, n)
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
        states = wait_settled(node, hashes, start)
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


class FixedOutputProvider(CatalogueProvider):
    """Answers every request at once with one precomputed output: no inference at all."""

    def __init__(self, catalogue, output) -> None:
        super().__init__(catalogue)
        self.output = output

    def resolve(self, request: InferenceRequest) -> InferenceResult:
        return InferenceResult(request.id, request.digest, output=self.output)


def inline_burst(model: BenchModel, workload: str, n: int, packed: bool, evm_only: bool = False) -> dict[str, Any]:
    """The same burst executed INLINE on a twin node's chain: one block per transaction, or
    packed blocks; with ``evm_only`` every request is answered at once (no inference)."""
    node = DevNode(NodeConfig())  # a twin of the PIPE node's setup; its producer never starts
    try:
        txs, info = node_workload(node, model, workload, n)
        chain = node.chain
        vm_class = None
        if evm_only:
            sample = inference_requests(info, 1)[0]
            vm_class = chain.base_vm_class.with_provider(
                FixedOutputProvider(chain.models, chain.runtime.run(info, sample.feeds)))
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


#: The modes :func:`compare_bursts` runs, in the order of the first repeat.
BURST_MODES = ("pipe", "inline_one_by_one", "inline_packed", "evm_only_packed")


def compare_bursts(model: BenchModel, workload: str, n: int, repeats: int, workers: int, reporter
                   ) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, float]]]:
    """The burst in every mode of :data:`BURST_MODES`, ``repeats`` rounds with the modes
    taking turns going first; every run, and the medians per mode."""
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in BURST_MODES}
    for r in range(repeats):
        order = BURST_MODES[r % len(BURST_MODES):] + BURST_MODES[:r % len(BURST_MODES)]
        for mode in order:
            reporter.note(f"{model.name} {workload} N={n}: {mode.replace('_', ' ')} ({r + 1}/{repeats})")
            if mode == "pipe":
                runs[mode].append(pipe_burst(model, workload, n, workers))
            else:
                runs[mode].append(inline_burst(model, workload, n, packed=mode != "inline_one_by_one",
                                               evm_only=mode == "evm_only_packed"))
            reporter.step(None, n)

    def median(mode: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[mode])

    summary = {mode: {key: median(mode, key) for key in ("throughput_tx_s", "latency_p50_s", "latency_p99_s",
                                                          "seconds", "blocks")}
               for mode in BURST_MODES}
    summary["pipe"].update({key: median("pipe", key) for key in (
        "submit_seconds", "latency_from_send_p50_s", "latency_from_send_p99_s", "txs_per_block", "build_seconds",
        "simulation_seconds", "evm_passes_per_tx", "inference_seconds_off_block_path")})
    return runs, summary


# --- providers: the limits ----------------------------------------------------------------------
class KnownResultsProvider(CatalogueProvider):
    """Everything but inference: hands back the known result of a request id, unchecked."""

    def __init__(self, catalogue, results: dict[RequestId, InferenceResult]) -> None:
        super().__init__(catalogue)
        self.results = results

    def resolve(self, request: InferenceRequest) -> InferenceResult:
        return self.results[request.id]


class SimulationOutputProvider(CatalogueProvider):
    """Answers every request with the simulation output, recording nothing: what CAPTURE
    answers on a first pass, without its bookkeeping."""

    def resolve(self, request: InferenceRequest) -> InferenceResult:
        return InferenceResult(request.id, request.digest, output=SIMULATION_OUTPUT)


# --- requests for the executor ---------------------------------------------------------------
def inference_requests(info: ModelInfo, n: int, seed: int = 11,
                       mode: InferenceMode = InferenceMode.VANILLA,
                       low: int = -1000, high: int = 1000) -> list[InferenceRequest]:
    """``n`` requests for ``info`` (input ``x [1, width]``) as the precompile builds them
    from real calldata: encode -> decode -> ``bind_inputs`` / ``samples``."""
    rng = np.random.default_rng(seed)
    width = info.inputs[0].shape[1]
    requests = []
    for i in range(n):
        values = tuple(Number(int(v), 2) for v in rng.integers(low, high, width))
        call = ModelInferenceRequest(mode, info.cid, ModelInput((NumberTensor("x", values, (1, width)),), ()))
        calldata = encode_run_model_inference(call)
        decoded = decode_run_model_inference(calldata)
        requests.append(InferenceRequest(
            RequestId(keccak(b"bench-tx-%d" % i), 0), keccak(calldata), decoded,
            samples(info, decoded.input), bind_inputs(info, decoded.input)))
    return requests


def plain_session(data: bytes) -> ort.InferenceSession:
    """A plain onnxruntime session, one intra-op thread: the raw limit."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
