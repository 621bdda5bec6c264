"""PIPE end to end on one node: pool -> simulate -> execute -> build.

:meth:`Pipeline.prepare` runs the rounds (simulate with the results known so far,
execute what is still missing) until every executable transaction is ready or has
used up its rounds; :meth:`Pipeline.build_block` replays the ready ones into a block.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future
from dataclasses import dataclass

from eth.abc import SignedTransactionAPI
from eth_keys import keys

from ogevm.errors import ExecutorUnavailable, InvalidTransaction
from ogevm.verify.registry import register_nodes
from ogevm.pipe.admission import AdmissionRules
from ogevm.pipe.builder import BlockBuilder, BuiltBlock
from ogevm.pipe.executor import InferenceExecutor, local_executor
from ogevm.pipe.mempool import TERMINAL, PoolEntry, PoolLimits, TxPool, TxState
from ogevm.precompile.modes import CaptureProvider
from ogevm.vm.blocks import PendingBlock
from ogevm.vm.accounts import DEV_INFERENCE_NODE_KEY
from ogevm.vm.chain import DevChain

log = logging.getLogger("ogevm.pipe")

#: Simulations are not blocks: a sender's whole queue runs in one, whatever its gas.
SIMULATION_GAS_LIMIT = 2**62


def default_prover(chain: DevChain):
    """A ZKML prover over the chain's circuits, if it has any (ezkl is an optional extra)."""
    if chain.circuits is None:
        return None
    from ogevm.verify.zkml import ZkProver

    return ZkProver(chain.circuits.directory)


@dataclass(frozen=True)
class PipeConfig:
    """Bounds of the pipeline: rounds per transaction, deferrals before rejection, the pool's
    limits."""

    max_rounds: int = 4
    max_deferrals: int = 3
    pool: PoolLimits = PoolLimits()


class Pipeline:
    """PIPE on ``chain``: its models feed the executor, its chain receives the blocks."""

    def __init__(self, chain: DevChain, node_key: keys.PrivateKey = DEV_INFERENCE_NODE_KEY,
                 executor: InferenceExecutor | None = None, config: PipeConfig = PipeConfig()) -> None:
        self.chain = chain
        self.config = config
        self.executor = executor or local_executor(chain.runtime, node_key, prover=default_prover(chain))
        head = chain.head
        self.pool = TxPool(AdmissionRules(chain.chain.chain_id, head.gas_limit), config.pool)
        self.builder = BlockBuilder(chain.chain, chain.base_vm_class, chain.models)
        self._in_flight: set = set()
        self._jobs = 0  # jobs started and not stored yet
        self._executed = 0  # requests whose records were stored
        self._settled = threading.Condition()
        self._simulations: dict = {}  # sender -> (inputs, outcome) of its run's last simulation
        #: Called (from a worker thread) whenever inference results arrive.
        self.on_progress = None

    def register_nodes(self) -> int:
        """Register the executor's nodes and enclaves not in the on-chain registry yet (a
        dev-chain shortcut, see :func:`~ogevm.verify.registry.register_nodes`)."""
        return register_nodes(self.chain, self.executor.identities())

    # --- intake -----------------------------------------------------------------
    def submit(self, tx: SignedTransactionAPI) -> bytes:
        """Admit ``tx`` to the pool. Raises TransactionRejected with the reason."""
        head = self.chain.head
        base_fee = self.chain.base_vm_class.create_header_from_parent(head).base_fee_per_gas
        return self.pool.add(tx, self.chain.state(), base_fee)

    # --- rounds -------------------------------------------------------------------
    def advance(self) -> list[Future]:
        """One step of the rounds, without waiting: simulate every executable tx, then
        start the missing requests that are not running yet. Returns their futures.

        When a job finishes its records are stored and ``on_progress`` is called; the next
        ``advance`` simulates again with them (dependent requests appear then).
        """
        with self.pool.lock:
            work = []
            for entry, requests in self._simulate_all():
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
        return futures

    def prepare(self) -> int:
        """Run the rounds to the end: every executable tx ready, rejected, or out of rounds.

        Waits for jobs started earlier too. Returns how many requests were executed.
        """
        start = self._executed
        while True:
            started = self.advance()
            with self._settled:
                if not started and not self._jobs:
                    return self._executed - start
                self._settled.wait_for(lambda: self._jobs == 0)

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
        with self._settled:
            self._jobs -= 1
            self._executed += len(records)
            self._settled.notify_all()
        if self.on_progress is not None:
            self.on_progress()

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

    def _simulate_all(self) -> list[tuple[PoolEntry, list]]:
        """One CAPTURE simulation of every executable run of txs; returns what is missing.

        A run whose inputs did not change since its last simulation (same head, same models,
        same txs, same results known) is not simulated again: the outcome would be the same.
        """
        head_hash = self.chain.head.hash
        state = self.chain.state()
        self.pool.drop_stale(state.get_nonce)
        missing = []
        simulations = {}
        for run in self.pool.executable(state.get_nonce):
            known = tuple((e.hash, frozenset((rid, rec.result) for rid, rec in e.records.items())) for e in run)
            key = (head_hash, len(self.chain.models), known)
            cached = self._simulations.get(run[0].sender)
            if cached is not None and cached[0] == key:
                outcome = cached[1]
            else:
                try:
                    outcome = self._simulate_run(run)
                except Exception as exc:  # a bug met by one sender's txs must not stop the others
                    log.exception("simulation of 0x%s's transactions failed", run[0].sender.hex())
                    for entry in run:
                        self.pool.set_state(entry, TxState.REJECTED,
                                            f"internal error while simulating: {type(exc).__name__}")
                    continue
            simulations[run[0].sender] = (key, outcome)
            for entry, (requests, needed) in zip(run, outcome):
                entry.requests = requests
                if needed:
                    self.pool.set_state(entry, TxState.SIMULATED)
                    missing.append((entry, needed))
                else:
                    self.pool.set_state(entry, TxState.READY)
        self._simulations = simulations
        return missing

    def _simulate_run(self, run: list[PoolEntry]) -> list[tuple[tuple, list]]:
        """Each tx's requests and the ones without a result yet, up to the first tx that cannot
        be applied (rejected with the reason, with the later ones)."""
        known = {rid: rec.result for entry in run for rid, rec in entry.records.items()}
        provider = CaptureProvider(self.chain.models, known)
        # A sender's queue may hold more gas than one block: simulate it as one sequence.
        pending = PendingBlock(self.chain.chain, self.chain.base_vm_class.with_provider(provider),
                               gas_limit=SIMULATION_GAS_LIMIT)
        outcome = []
        for position, entry in enumerate(run):
            try:
                pending.apply(entry.tx)
            except InvalidTransaction as exc:
                self.pool.set_state(entry, TxState.REJECTED, str(exc))
                for later in run[position + 1:]:
                    self.pool.set_state(later, TxState.REJECTED, f"depends on rejected tx 0x{entry.hash.hex()}")
                break
            outcome.append((tuple(provider.requests.get(entry.hash, ())), provider.missing(entry.hash)))
        return outcome

    # --- blocks ---------------------------------------------------------------------
    def build_block(self, timestamp: int | None = None, before_seal=None) -> BuiltBlock:
        """Replay the ready txs into a block and settle each one's state.

        ``before_seal(records)`` is passed to :meth:`BlockBuilder.build`.
        """
        built = self.builder.build(self._includable(), timestamp=timestamp, before_seal=before_seal)
        for entry in built.included:
            entry.block_number = built.block.number
            self.pool.set_state(entry, TxState.INCLUDED)
        for tx_hash, reason in built.invalid.items():
            self._reject(self.pool.get(tx_hash), reason)
        for tx_hash, reason in built.deferred.items():
            entry = self.pool.get(tx_hash)
            entry.deferrals += 1
            if entry.deferrals > self.config.max_deferrals:
                self._reject(entry, f"diverged {entry.deferrals} times; last: {reason}")
            else:
                self.pool.set_state(entry, TxState.DEFERRED, reason)
        return built

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
            blocks.append(self.build_block())
        return blocks
