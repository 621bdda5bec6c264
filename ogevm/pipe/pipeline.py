"""PIPE end to end on one node: pool -> simulate -> execute -> build.

:meth:`Pipeline.prepare` runs the rounds (simulate with the results known so far,
execute what is still missing) until every executable transaction is ready or has
used up its rounds; :meth:`Pipeline.build_block` replays the ready ones into a block.
Each step also requests the inference of the next block's scheduled calls
(:mod:`ogevm.pipe.scheduler`).
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from eth.abc import SignedTransactionAPI
from eth_keys import keys

from ogevm.abc import Simulator
from ogevm.errors import ExecutorUnavailable
from ogevm.verify.registry import register_nodes
from ogevm.pipe.admission import AdmissionRules
from ogevm.pipe.builder import BlockBuilder, BuiltBlock
from ogevm.pipe.executor import InferenceExecutor, local_executor
from ogevm.pipe.mempool import TERMINAL, PoolEntry, PoolLimits, TxPool, TxState
from ogevm.pipe.scheduler import ScheduledInference, wall_clock_next
from ogevm.pipe.simulation import LocalSimulator
from ogevm.vm.accounts import DEV_INFERENCE_NODE_KEY
from ogevm.vm.chain import DevChain



def default_prover(chain: DevChain):
    """A ZKML prover over the chain's circuits, if it has any (ezkl is an optional extra)."""
    if chain.circuits is None:
        return None
    from ogevm.verify.zkml import ZkProver

    return ZkProver(chain.circuits.directory)


@dataclass(frozen=True)
class PipeConfig:
    """Bounds of the pipeline: rounds per transaction, deferrals before rejection, the pool's
    limits, and how many never-simulated transactions one step simulates at most: a burst is
    simulated in steps, so that its first transactions are inferred and replayed into a block
    while the next ones are simulated."""

    max_rounds: int = 4
    max_deferrals: int = 3
    pool: PoolLimits = PoolLimits()
    simulation_step_txs: int = 8

    def __post_init__(self) -> None:
        if self.simulation_step_txs < 1:
            raise ValueError("simulation_step_txs must be at least 1")


def _answered(entry: PoolEntry, request) -> bool:
    """Whether ``entry`` holds a result computed for exactly ``request``."""
    record = entry.records.get(request.id)
    return record is not None and record.result.digest == request.digest


class Pipeline:
    """PIPE on ``chain``: its models feed the executor, its chain receives the blocks."""

    def __init__(self, chain: DevChain, node_key: keys.PrivateKey = DEV_INFERENCE_NODE_KEY,
                 executor: InferenceExecutor | None = None, config: PipeConfig = PipeConfig(),
                 simulator: Simulator | None = None, chain_lock: threading.Lock | None = None,
                 next_timestamp=wall_clock_next) -> None:
        self.chain = chain
        #: Held while a block is built: whatever else reads this process's chain from another
        #: thread (a simulation in process beside remote ones) holds it too.
        self.chain_lock = chain_lock or threading.Lock()
        self.config = config
        self.executor = executor or local_executor(chain.runtime, node_key, prover=default_prover(chain),
                                                   mocks=chain.mocks)
        #: Where simulations run: this thread by default (see :mod:`ogevm.pipe.simulation`).
        self.simulator = simulator or LocalSimulator(chain)
        head = chain.head
        self.pool = TxPool(AdmissionRules(chain.chain.chain_id, head.gas_limit), config.pool)
        self.builder = BlockBuilder(chain.chain, chain.base_vm_class, chain.models)
        self._in_flight: set = set()
        self._jobs = 0  # jobs started and not stored yet
        self._unsimulated = False  # runs left for the next step (see _simulate_step)
        self._executed = 0  # requests whose records were stored
        self._settled = threading.Condition()
        #: The background step of a remote simulator (see :meth:`advance`).
        self._background_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ogevm-simulate")
        self._background: Future | None = None
        self._background_lock = threading.Lock()
        #: (head hash, state, next base fee) admission reads (see :meth:`_admission_view`).
        self._admission = None
        #: Included txs, and the EVM passes they took (see :meth:`passes_per_included_tx`).
        self.included = 0
        self.included_passes = 0
        #: Called (from a worker thread) whenever inference results arrive.
        self.on_progress = None
        #: The next block's scheduled calls; ``next_timestamp(parent)`` predicts its timestamp.
        self.scheduled = ScheduledInference(chain, next_timestamp, config.max_rounds)

    def register_nodes(self) -> int:
        """Register the executor's nodes and enclaves not in the on-chain registry yet (a
        dev-chain shortcut, see :func:`~ogevm.verify.registry.register_nodes`)."""
        return register_nodes(self.chain, self.executor.identities())

    # --- intake -----------------------------------------------------------------
    def submit(self, tx: SignedTransactionAPI, on_admit=None) -> bytes:
        """Admit ``tx`` to the pool (``on_admit``: see :meth:`TxPool.add`). Raises
        TransactionRejected with the reason."""
        state, base_fee = self._admission_view()
        return self.pool.add(tx, state, base_fee, on_admit)

    def _admission_view(self):
        """The head's state and the next block's base fee, made once per head: admission
        only reads them, and making them costs more than the checks (a burst's sends share
        them)."""
        head = self.chain.head
        view = self._admission
        if view is None or view[0] != head.hash:
            base_fee = self.chain.base_vm_class.create_header_from_parent(head).base_fee_per_gas
            view = self._admission = (head.hash, self.chain.state(), base_fee)
        return view[1], view[2]

    # --- rounds -------------------------------------------------------------------
    def advance(self) -> None:
        """One step of the rounds, without waiting for inference: simulate the runs that need
        it, then start the missing requests that are not running yet.

        With a remote simulator the step runs on a background thread (one at a time) and
        this returns at once, so the caller can build a block while the next transactions
        are simulated elsewhere; ``on_progress`` is called when it ends. An error of the
        previous background step is raised here. When a job finishes its records are stored
        and ``on_progress`` is called; the next ``advance`` finds the txs whose requests all
        have results ready. The pool stays open to new transactions while simulations run.
        """
        if not self.simulator.remote:
            self.step()
            return
        with self._background_lock:
            previous = self._background
            if previous is not None and not previous.done():
                return
            self._background = self._background_thread.submit(self._background_step)
        if previous is not None:
            previous.result()

    def join(self) -> None:
        """Wait for the background step in progress, if any; raises its error."""
        with self._background_lock:
            background = self._background
        if background is not None:
            background.result()

    def _background_step(self) -> None:
        """:meth:`step` until no run is left unsimulated, waking the producer after each one
        in which a tx changed state (it builds from those while the next step simulates)."""
        while True:
            transitions = self.pool.transitions
            self.step()
            if self.pool.transitions != transitions and self.on_progress is not None:
                self.on_progress()
            if not self._unsimulated:
                return

    def step(self) -> list[Future]:
        """One step of the rounds in this thread; returns the inference jobs it started."""
        missing = self._simulate_step()
        if self._unsimulated and not self.simulator.remote and self.on_progress is not None:
            self.on_progress()  # come back for the rest at once
        with self.pool.lock:
            work = []
            for entry, requests in missing:
                if entry.state in TERMINAL:  # replaced or evicted meanwhile
                    continue
                fresh = [r for r in requests if r.id not in self._in_flight]
                if not fresh:
                    self.pool.set_state(entry, TxState.INFERRING)
                    continue
                if entry.rounds >= self.config.max_rounds:
                    reason = f"inference did not settle after {self.config.max_rounds} rounds"
                    if entry.executor_failure:
                        reason += f"; last executor failure: {entry.executor_failure}"
                    self.pool.set_state(entry, TxState.REJECTED, reason)
                    continue
                entry.rounds += 1
                self.pool.set_state(entry, TxState.INFERRING)
                work.extend(fresh)
                self._in_flight.update(r.id for r in fresh)
        futures = self.executor.submit(work) if work else []
        with self._settled:
            self._jobs += len(futures)
        for future in futures:
            future.add_done_callback(self._store)
        if self._unsimulated:  # the step that simulates the last runs asks for the scheduled calls:
            return futures     # that waits for a block being built, the simulation of the rest must not
        return futures + self._request_scheduled()

    def prepare(self) -> int:
        """Run the rounds to the end: every executable tx ready, rejected, or out of rounds.

        Waits for jobs started earlier too. Returns how many requests were executed.
        """
        start = self._executed
        while True:
            started = self.step()
            with self._settled:
                if not started and not self._jobs and not self._unsimulated:
                    return self._executed - start
                self._settled.wait_for(lambda: self._jobs == 0)

    def running(self) -> bool:
        """Whether inference jobs started by :meth:`advance` are still running."""
        with self._settled:
            return self._jobs > 0

    def _store(self, future: Future) -> None:
        try:
            records = future.result()  # a bad request is a result; only an outage raises
        except ExecutorUnavailable as exc:
            records = []
            self._release(exc)
        else:
            with self.pool.lock:
                for record in records:
                    self._in_flight.discard(record.request_id)
                    entry = self.pool.get(record.request_id.tx_hash)
                    if entry is not None and entry.state not in TERMINAL:
                        entry.records[record.request_id] = record
                        # ready now, not at the end of the next step (which may be simulating others)
                        if (entry.state is TxState.INFERRING and entry.simulated and not entry.building
                                and all(_answered(entry, r) for r in entry.requests)):
                            self.pool.set_state(entry, TxState.READY)
        self._job_done(len(records))

    def _job_done(self, executed: int) -> None:
        """Count a finished job and its executed requests; wake who waits for them."""
        with self._settled:
            self._jobs -= 1
            self._executed += executed
            self._settled.notify_all()
        if self.on_progress is not None:
            self.on_progress()

    # --- scheduled calls (see ogevm.pipe.scheduler) ------------------------------------
    def _request_scheduled(self) -> list[Future]:
        """Start the missing requests of the next block's scheduled calls."""
        with self.chain_lock:  # never reads the chain mid-build
            requests = self.scheduled.missing()
        futures = self.executor.submit(requests) if requests else []
        with self._settled:
            self._jobs += len(futures)
        for future in futures:
            future.add_done_callback(self._store_scheduled)
        return futures

    def _store_scheduled(self, future: Future) -> None:
        try:
            records = future.result()
        except ExecutorUnavailable as exc:
            records = []
            self.scheduled.release(exc.request_ids)
        else:
            self.scheduled.store(records)
        self._job_done(len(records))

    def _release(self, failure: ExecutorUnavailable) -> None:
        """Requests the executor could not run go back to the rounds; the reason shows in
        their transactions' status until the next round (which counts toward ``max_rounds``)."""
        with self.pool.lock:
            for request_id in failure.request_ids:
                self._in_flight.discard(request_id)
                entry = self.pool.get(request_id.tx_hash)
                if entry is not None and entry.state not in TERMINAL:
                    entry.executor_failure = failure.reason
                    self.pool.set_state(entry, TxState.SIMULATED, f"inference will be retried: {failure.reason}")

    def _simulate_step(self) -> list[tuple[PoolEntry, list]]:
        """Settle the executable txs and return those with requests still to run.

        A run of a sender's txs is simulated (CAPTURE) only when it holds a tx never
        simulated, oldest runs first, up to ``simulation_step_txs`` such txs per step (a run
        may stop part way; ``_unsimulated`` says whether some are left); a simulated tx is ready
        once each request it made has a result, and the builder's replay confirms it (or
        finds the request it still misses). So a tx costs two EVM passes, one more per extra
        round. The simulations run without the pool's lock: their outcomes only apply to txs
        still pooled when they end.
        """
        with self.pool.lock:
            head = self.chain.head.hash
            state = self.chain.state()
            self.pool.drop_stale(state.get_nonce)
            runs = list(self.pool.executable(state.get_nonce))
            unsimulated = sorted((run for run in runs if not all(entry.simulated for entry in run)),
                                 key=lambda run: min(entry.arrival for entry in run))
            chosen, budget = [], self.config.simulation_step_txs
            for run in unsimulated:  # each run up to its budget-th tx never simulated
                if budget <= 0:
                    break
                fresh = 0
                for end, entry in enumerate(run, 1):
                    fresh += not entry.simulated
                    if fresh == budget:
                        break
                chosen.append(run[:end])
                budget -= fresh
            left = sum(not entry.simulated for run in unsimulated for entry in run)
            self._unsimulated = left > self.config.simulation_step_txs - budget
            stale = [(run, {rid: rec.result for e in run for rid, rec in e.records.items()}) for run in chosen]
        outcomes = self.simulator.simulate([([e.tx for e in run], known) for run, known in stale])
        with self.pool.lock:
            # a block built meanwhile (a background step) makes the outcomes a forecast: their
            # requests still start the inference (the replay confirms them), but a rejection
            # may be the old head's and waits for a simulation on the new one
            moved = self.chain.head.hash != head
            for (run, _), outcome in zip(stale, outcomes):
                for entry, (requests, rejection, executed) in zip(run, outcome):
                    entry.passes += executed
                    if entry.state in TERMINAL or entry.building:
                        continue
                    if rejection is not None:
                        if moved:
                            break
                        self.pool.set_state(entry, TxState.REJECTED, rejection)
                    elif executed or not entry.simulated:  # a reused outcome may know less (replays add requests)
                        entry.requests, entry.simulated = requests, True
            missing = []
            for run in runs:
                for entry in run:
                    if entry.building:  # ready, and its replay is under way
                        continue
                    if entry.state in TERMINAL:  # rejected by the simulation, with the later ones
                        break
                    if not entry.simulated:  # joined the run during the simulation: next time
                        break
                    needed = [r for r in entry.requests if not _answered(entry, r)]
                    if needed:
                        if entry.state is not TxState.INFERRING:
                            self.pool.set_state(entry, TxState.SIMULATED, entry.reason)
                        missing.append((entry, needed))
                    else:
                        self.pool.set_state(entry, TxState.READY)
        return missing

    # --- blocks ---------------------------------------------------------------------
    def build_block(self, timestamp: int | None = None, before_seal=None, seal_empty: bool = True) -> BuiltBlock:
        """Replay the ready txs into a block and settle each one's state.

        ``before_seal(records)`` is passed to :meth:`BlockBuilder.build`; with
        ``seal_empty=False`` no block is sealed if nothing could be included. A tx whose
        replay met a request without a result goes back to the rounds with that request
        (``deferred``), up to ``max_deferrals`` times.
        """
        with self.pool.lock:
            candidates = self._includable()
            for entry in candidates:
                entry.building = True
        built = None
        try:
            with self.chain_lock:
                built = self.builder.build(candidates, timestamp=timestamp, before_seal=before_seal,
                                           seal_empty=seal_empty, scheduled=self.scheduled.records())
        finally:
            with self.pool.lock:  # one step: a background simulation never sees a half-settled build
                for entry in candidates:
                    entry.building = False
                if built is not None:
                    self._settle(built)
        if built.block is not None:
            self.scheduled.forget()
        return built

    def _settle(self, built: BuiltBlock) -> None:
        """Each candidate's state after the build."""
        for entry in built.included:
            entry.block_number = built.block.number
            self.pool.set_state(entry, TxState.INCLUDED)
            self.included += 1
            self.included_passes += entry.passes
        for tx_hash, reason in built.invalid.items():
            self._reject(self.pool.get(tx_hash), reason)
        for tx_hash, reason in built.deferred.items():
            entry = self.pool.get(tx_hash)
            entry.deferrals += 1
            if entry.deferrals > self.config.max_deferrals:
                self._reject(entry, f"diverged {entry.deferrals} times; last: {reason}")
                continue
            request = built.divergent[tx_hash]
            entry.requests = tuple(sorted((*(r for r in entry.requests if r.id != request.id), request),
                                          key=lambda r: r.id.index))
            self.pool.set_state(entry, TxState.DEFERRED, reason)

    def close(self) -> None:
        """Wait for a background step, then release the simulators and the executor."""
        self._background_thread.shutdown(wait=True)
        self.simulator.close()  # before the executor, which may shut Ray down
        self.executor.close()

    def passes_per_included_tx(self) -> float:
        """EVM passes (simulations and replays) per included tx, over this pipeline's life."""
        return self.included_passes / self.included if self.included else 0.0

    def _reject(self, entry: PoolEntry, reason: str) -> None:
        """Reject ``entry`` and the later txs of its sender, which depend on it."""
        self.pool.set_state(entry, TxState.REJECTED, reason)
        for later in self.pool.entries():
            if later.sender == entry.sender and later.nonce > entry.nonce:
                self.pool.set_state(later, TxState.REJECTED, f"depends on rejected tx 0x{entry.hash.hex()}")

    def _includable(self) -> list[PoolEntry]:
        """Per sender, the ready txs from the account's nonce on, up to the first one that is
        not ready: a later tx must not go in ahead of an earlier one still inferring."""
        nonce_of = self.chain.state().get_nonce
        includable = []
        for run in self.pool.executable(nonce_of):
            for entry in run:
                if entry.state is not TxState.READY:
                    break
                includable.append(entry)
        return includable

    def run_until_idle(self, max_blocks: int = 100) -> list[BuiltBlock]:
        """Prepare and build until the pool is empty or nothing more can be included."""
        blocks = []
        for _ in range(max_blocks):
            self.prepare()
            if not any(e.state is TxState.READY for e in self.pool.entries()):
                break
            built = self.build_block(seal_empty=False)
            if built.block is not None:
                blocks.append(built)
        return blocks
