"""The dev node: a chain in an embedded database, PIPE inside, blocks in the background.

Like anvil: ten funded accounts, chain id 31337, automine (a block as soon as ready
transactions exist), a fixed block time, both or neither (blocks on demand). Transactions go
through the PIPE pool; a background producer simulates, starts inference, and builds blocks
from whatever is ready, so a slow inference never holds back other transactions. Calls run
INLINE. The dev controls of anvil and Hardhat (snapshots, time travel, state setters,
impersonation) are methods here; ``ogevm.node.rpc.dev`` serves them.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import onnx
from eth.abc import SignedTransactionAPI, StateAPI
from eth.db.atomic import AtomicDB
from eth.exceptions import TransactionNotFound

from ogevm.abc import ExecutorBackend, Simulator
from ogevm.errors import OgevmError, TransactionRejected
from ogevm.node.clock import DevClock
from ogevm.node.dump import dump_state, load_state, parse_state
from ogevm.node.head import reseal_head, set_head
from ogevm.node.impersonation import SplitSimulator, decode_stored, impersonated
from ogevm.node.leveldb import LevelDB
from ogevm.node.preimages import with_preimages
from ogevm.node.snapshots import DevModelStore, Snapshot, Snapshots, pending_copy
from ogevm.node.storage import NodeStorage
from ogevm.pipe.builder import BuiltBlock
from ogevm.pipe.executor import InferenceExecutor, ThreadPoolBackend
from ogevm.pipe.worker import InferenceWorker, WorkerIdentity
from ogevm.pipe.mempool import TxState
from ogevm.pipe.pipeline import Pipeline, default_prover
from ogevm.pipe.simulation import LocalSimulator, WorkerSimulator, process_workers, ray_workers
from ogevm.verify.tee import SimulatedEnclave
from ogevm.vm.chain import DevChain
from ogevm.vm.forks import InferencePragueVM
from ogevm.vm.recording_db import RecordingDB
from ogevm.vm.tracing import revert_reason

log = logging.getLogger("ogevm.node")

#: Pause after an unexpected failure of the producer before it tries again.
PRODUCER_RETRY_SECONDS = 0.5
#: Longest wait of automine for running inference before it seals what is ready.
AUTOMINE_LINGER_SECONDS = 0.1


@dataclass(frozen=True)
class BlockStats:
    """A built block: its size, how long replay took, and the model time it did not spend."""

    number: int
    transactions: int
    records: int
    build_seconds: float
    inference_seconds_saved: float


@dataclass(frozen=True)
class NodeConfig:
    """How to run a node. ``data_dir=None`` keeps everything in memory.

    ``executor`` is ``"threads"`` (``workers`` threads of this process, one node identity)
    or ``"ray"`` (``workers`` Ray actors, one node identity each, on the cluster at
    ``ray_address``, each reserving ``ray_num_cpus`` and ``ray_num_gpus``).

    ``sim_workers`` simulation workers run the pool's simulation (worker processes; Ray
    actors with the Ray executor); ``None`` is one per core beyond the first, 0 simulates in
    the node's own process.
    """

    data_dir: Path | None = None
    block_time: float = 0.0
    models_dir: Path | None = None
    workers: int = 2
    executor: str = "threads"
    ray_address: str = "auto"
    ray_num_cpus: float = 1.0
    ray_num_gpus: float = 0.0
    sim_workers: int | None = None

    def simulation_workers(self) -> int:
        """How many simulation workers ``sim_workers`` asks for on this machine."""
        if self.sim_workers is not None:
            return self.sim_workers
        return max(0, (os.cpu_count() or 1) - 1)


class DevNode:
    """A running development node (start with :meth:`start`, stop with :meth:`stop`)."""

    def __init__(self, config: NodeConfig = NodeConfig()) -> None:
        self.config = config
        if config.data_dir is not None:
            data_dir = Path(config.data_dir)
            self.db = LevelDB(data_dir / "chain")
            models = DevModelStore(data_dir / "models")
        else:
            self.db = AtomicDB()
            models = DevModelStore()
        self.storage = NodeStorage(self.db)
        sim_workers = config.simulation_workers()
        # with simulation workers, the chain's writes are recorded to keep their copies in sync
        chain_db = RecordingDB(self.db) if sim_workers else self.db
        self.chain = DevChain(models, vm_class=with_preimages(InferencePragueVM), db=chain_db,
                              circuits=_circuit_store(config))
        if config.models_dir is not None:
            for path in sorted(Path(config.models_dir).glob("*.onnx")):
                data = path.read_bytes()
                if _declares_language_model(data):
                    models.add_llm(data)
                else:
                    models.add(data)
        try:
            backend = _backend(config, self.chain)
            chain_lock = threading.Lock()
            simulator = _simulator(config, self.chain, chain_db, sim_workers, chain_lock)
        except Exception:
            self._close_db()
            raise
        executor = InferenceExecutor(backend, models, mocks=self.chain.mocks)
        self.pipeline = Pipeline(self.chain, executor=executor, simulator=simulator, chain_lock=chain_lock,
                                 next_timestamp=lambda parent: self.clock.next_block(parent))
        self.lock = threading.RLock()
        self._wake = threading.Event()
        self.pipeline.on_progress = self._wake.set
        self.pipeline.pool.on_finish = self._finished
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self.blocks_built = 0
        #: Producer steps that failed unexpectedly (logged; the producer went on).
        self.producer_failures = 0
        #: One entry per block this node built (for ``og_pipeStats`` and the demo).
        self.block_log: list[BlockStats] = []
        #: Called with each :class:`BuiltBlock` that has a block, by the thread that built it, under
        #: ``lock``: listeners must be quick and must not raise (WebSocket subscriptions).
        self.block_listeners: list[Callable[[BuiltBlock], None]] = []
        #: Mining: automine (a block as soon as transactions are ready) and/or a block every
        #: ``interval`` seconds (0: none); neither: blocks only on demand (``evm_mine``).
        self.automine = config.block_time == 0
        self.interval = config.block_time
        self.clock = DevClock()
        self.snapshots = Snapshots()
        #: Hashes of the transactions finished while a snapshot is live (``evm_revert`` forgets them).
        self._finish_log: list[bytes] = []
        self._impersonated: set[bytes] = set()
        with self.lock:
            self.pipeline.register_nodes()
            if config.data_dir is not None:
                self._restore_pool()

    # --- lifecycle --------------------------------------------------------------
    def start(self) -> "DevNode":
        self._thread = threading.Thread(target=self._produce, name="ogevm-producer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.pipeline.close()
        self._close_db()

    def _close_db(self) -> None:
        if isinstance(self.db, LevelDB):
            self.db.close()

    @property
    def identities(self) -> list[WorkerIdentity]:
        """The inference nodes (and their SIMULATED enclaves) whose results this node commits."""
        return self.pipeline.executor.identities()

    # --- transactions --------------------------------------------------------------
    def send_raw_transaction(self, raw: bytes) -> bytes:
        """Decode and admit a signed transaction; persist it before answering.

        Only admission and the write: it never waits for a simulation pass or a block (the
        pool has its own short lock). Raises :class:`TransactionRejected` with the reason
        (also for undecodable bytes).
        """
        return self.send_transaction(self._decode(raw))

    def send_transaction(self, tx: SignedTransactionAPI) -> bytes:
        """Admit ``tx`` (decoded, or made by this node) and persist it before answering.
        Raises :class:`TransactionRejected` with the reason."""
        # admission runs outside the pool's lock; the tx is stored before the producer can see it
        tx_hash = self.pipeline.submit(tx, on_admit=lambda entry: self.storage.put_pooled(entry.hash, tx.encode()))
        self._wake.set()
        return tx_hash

    def _decode(self, raw: bytes, stored: bool = False):
        """The transaction in ``raw``; ``stored``: a copy this node wrote itself, whose
        impersonation marker it honours (:func:`~ogevm.node.impersonation.decode_stored`)."""
        builder = self.chain.vm_class.get_transaction_builder()
        try:
            return decode_stored(builder, raw) if stored else builder.decode(raw)
        except Exception as exc:  # rlp and py-evm raise many unrelated types for bad bytes
            raise TransactionRejected(f"invalid raw transaction: {type(exc).__name__}") from exc

    def status(self, tx_hash: bytes) -> dict | None:
        """``{state, reason, requests, block}`` of a transaction this node accepted."""
        status = self.pipeline.pool.status(tx_hash)
        if status is not None:
            return {"state": status.state.value, "reason": status.reason,
                    "requests": list(status.requests), "block": status.block_number,
                    "history": [t.to_json() for t in status.history]}
        stored = self.storage.status(tx_hash)
        return None if stored is None else {**stored, "requests": [], "history": []}

    # --- production -------------------------------------------------------------------
    def _produce(self) -> None:
        """The producer loop. It never dies: a transaction that fails is rejected inside the
        pipeline, and anything else is logged and the loop goes on after a pause.

        Automine seals as soon as something is ready and no inference is running; while
        some is, it lingers up to ``AUTOMINE_LINGER_SECONDS`` after the first ready tx so
        that a burst fills blocks instead of sealing one or two txs each."""
        last_block = time.monotonic()
        ready_since = None
        while not self._stopped.is_set():
            interval = self.interval
            self._wake.wait(timeout=interval if interval > 0 and not self.automine else AUTOMINE_LINGER_SECONDS)
            self._wake.clear()
            if self._stopped.is_set():
                break
            try:
                with self.lock:
                    self.pipeline.advance()
                    now = time.monotonic()
                    ready = any(e.state is TxState.READY for e in self.pipeline.pool.entries())
                    ready_since = (ready_since or now) if ready else None
                    settled = ready and (not self.pipeline.running()
                                         or now - ready_since >= AUTOMINE_LINGER_SECONDS)
                    due = interval > 0 and now - last_block >= interval
                    if (self.automine and settled) or due:
                        self._build(seal_empty=due)
                        last_block, ready_since = time.monotonic(), None
                        self._wake.set()  # deferred txs and dependants: look again at once
            except Exception:
                self.producer_failures += 1
                log.exception("block producer step failed; going on")
                self._stopped.wait(PRODUCER_RETRY_SECONDS)

    def mine(self, count: int = 1, interval: int = 1, timestamp: int | None = None) -> None:
        """Build ``count`` blocks now (``evm_mine``, ``anvil_mine``): the first holds the pool's
        transactions once their inference has run (a transaction still inferring after its
        rounds waits for a later block), at ``timestamp`` if given; each next one comes
        ``interval`` seconds after the previous one. Later blocks follow on in time."""
        with self.lock:
            self._join_background()
            self.pipeline.prepare()
            if timestamp is not None:
                self.clock.fixed = timestamp
            for index in range(count):
                if index:
                    self.clock.fixed = self.chain.head.timestamp + interval
                self._build()

    def _build(self, seal_empty: bool = True) -> BuiltBlock:
        """Build a block from what is ready; automine seals none when nothing was included."""
        start = time.perf_counter()
        built = self.pipeline.build_block(timestamp=self.clock.next_block(self.chain.head.timestamp),
                                          before_seal=self.storage.put_bundle, seal_empty=seal_empty)
        if built.block is None:
            return built
        self.clock.sealed(built.block.header.timestamp)
        for tx, computation in zip(built.block.transactions, built.computations):
            if computation.is_error:  # receipts keep no return data: keep the reason now
                self.storage.put_revert_reason(tx.hash, revert_reason(computation))
        elapsed = time.perf_counter() - start
        run_seconds = self.pipeline.executor.run_seconds
        saved = sum(run_seconds.pop(record.request_id, 0.0) for record in built.records)
        self.block_log.append(BlockStats(built.block.number, len(built.block.transactions),
                                         len(built.records), elapsed, saved))
        self.blocks_built += 1
        for listener in self.block_listeners:
            listener(built)
        return built

    def _finished(self, entry) -> None:
        """A tx reached ``included`` or ``rejected``: keep its status, drop its pooled copy."""
        self.storage.finish(entry.hash, entry.state.value, entry.reason, entry.block_number)
        if self.snapshots:
            self._finish_log.append(entry.hash)

    # --- dev controls (anvil / Hardhat) -------------------------------------------------
    def snapshot(self) -> int:
        """Take a snapshot (``evm_snapshot``); returns its id."""
        with self.lock, self.pipeline.pool.lock:
            entries = tuple(pending_copy(e) for e in self.pipeline.pool.entries())
            return self.snapshots.add(Snapshot(self.chain.head, entries, frozenset(self.chain.models),
                                               replace(self.clock), len(self._finish_log)))

    def revert(self, snapshot_id: int) -> bool:
        """Go back to snapshot ``snapshot_id`` (``evm_revert``), using it up with the later
        ones: its head, pool, models and clock. False (nothing changes) if it is unknown."""
        with self.lock:
            snapshot = self.snapshots.pop(snapshot_id)
            if snapshot is None:
                return False
            self._join_background()  # its outcomes are for the pool being replaced
            set_head(self.chain.chain.chaindb, snapshot.head)
            pool = self.pipeline.pool
            with pool.lock:
                undone = self._finish_log[snapshot.finished:] + [e.hash for e in pool.entries()]
                entries = [pending_copy(e) for e in snapshot.entries]
                pool.restore(entries, undone)
                for tx_hash in undone:
                    self.storage.forget(tx_hash)
                for entry in entries:
                    self.storage.put_pooled(entry.hash, entry.tx.encode())
            del self._finish_log[snapshot.finished if self.snapshots else 0:]
            self.chain.models.hide(set(self.chain.models) - snapshot.models)
            self.clock = replace(snapshot.clock)
        self._wake.set()
        return True

    def _join_background(self) -> None:
        """Wait for the pipeline's background simulation step. Its error, if any, is not
        lost: the producer's next step raises and logs it."""
        try:
            self.pipeline.join()
        except Exception:
            pass

    def edit_state(self, edit: Callable[[StateAPI], None]) -> None:
        """Apply ``edit`` to the head's state at once, without a block (``anvil_setBalance``
        and the other setters): the head is re-sealed with the new state root
        (:func:`~ogevm.node.head.reseal_head`)."""
        with self.lock:
            reseal_head(self.chain.chain, edit)
        self._wake.set()

    def dump_state(self) -> dict:
        """The head state's accounts, in anvil's dump shape (:mod:`ogevm.node.dump`)."""
        return dump_state(self.chain.chain.chaindb.db, self.chain.head.state_root)

    def load_state(self, raw: bytes, name: str = "state") -> None:
        """Set the accounts of a dump (gzip or plain JSON bytes) in the head state at once.
        Raises :class:`~ogevm.node.params.ParamError` (named ``name``) for a bad document."""
        accounts = parse_state(raw, name)
        self.edit_state(lambda state: load_state(state, accounts))

    def set_mining(self, automine: bool | None = None, interval: float | None = None) -> None:
        """Turn automine on or off, and/or set the block interval in seconds (0: none)."""
        if automine is not None:
            self.automine = automine
        if interval is not None:
            self.interval = interval
        self._wake.set()

    def impersonate(self, address: bytes, on: bool = True) -> bool:
        """Start (or stop) sending transactions from ``address`` without its key; returns
        whether it was impersonated before."""
        was = address in self._impersonated
        if on:
            self._impersonated.add(address)
        else:
            self._impersonated.discard(address)
        return was

    def impersonating(self, address: bytes) -> bool:
        return address in self._impersonated

    def impersonated_transaction(self, sender: bytes, to: bytes | None, data: bytes, value: int, gas: int,
                                 nonce: int, max_fee: int, tip: int):
        """An EIP-1559 transaction from the impersonated ``sender``
        (:mod:`ogevm.node.impersonation`), ready for :meth:`send_transaction`."""
        return impersonated(self.chain.vm_class.get_transaction_builder(), sender, self.chain.chain.chain_id, to,
                            data, value, gas, nonce, max_fee, tip)

    def _restore_pool(self) -> None:
        """Re-admit the transactions accepted before a restart that are not on chain yet."""
        for tx_hash, raw in list(self.storage.pooled()):
            try:
                block_number, _ = self.chain.chain.get_canonical_transaction_index(tx_hash)
            except TransactionNotFound:
                try:
                    self.pipeline.submit(self._decode(raw, stored=True))
                except TransactionRejected as exc:
                    self.storage.finish(tx_hash, TxState.REJECTED.value, f"after restart: {exc.reason}", None)
            else:
                self.storage.finish(tx_hash, TxState.INCLUDED.value, None, block_number)


def _backend(config: NodeConfig, chain: DevChain) -> ExecutorBackend:
    """The executor backend ``config`` asks for; every worker has a SIMULATED enclave."""
    if config.executor == "ray":
        from ogevm.pipe.ray_backend import RayBackend, WorkerGroup

        group = WorkerGroup(config.workers, config.ray_num_cpus, config.ray_num_gpus)
        return RayBackend(chain.models, config.ray_address, (group,), enclaves=True, circuits=chain.circuits)
    if config.executor != "threads":
        raise OgevmError(f"unknown executor {config.executor!r}: threads or ray")
    worker = InferenceWorker(chain.runtime, enclave=SimulatedEnclave(), prover=default_prover(chain))
    return ThreadPoolBackend(worker, config.workers)


def _simulator(config: NodeConfig, chain: DevChain, db, workers: int, chain_lock: threading.Lock) -> Simulator:
    """Simulation workers as ``config`` asks: processes, Ray actors with the Ray executor,
    or none (this process). Beside workers, the runs they cannot take (impersonated txs) are
    simulated here, in the background, so never during a build (``chain_lock``)."""
    if not workers:
        return LocalSimulator(chain)
    vm_class, chain_id = InferencePragueVM, chain.chain.chain_id  # workers persist nothing: no preimages
    start = ray_workers(vm_class, chain_id) if config.executor == "ray" else process_workers(vm_class, chain_id)
    return SplitSimulator(WorkerSimulator(chain, db, start, workers), LocalSimulator(chain, chain_lock))


def _declares_language_model(data: bytes) -> bool:
    """Whether ONNX bytes carry the ``ogevm.llm.format`` metadata of a language model file
    (then the model store checks them as one); bytes that are not ONNX are not."""
    try:
        metadata = onnx.load_model_from_string(data).metadata_props
    except Exception:  # the ONNX parser raises several unrelated types; the store says why
        return False
    return any(entry.key == "ogevm.llm.format" for entry in metadata)


def _circuit_store(config: NodeConfig):
    """ZKML circuits under the data dir (a temporary dir in memory mode); None without ezkl."""
    from importlib.util import find_spec

    if find_spec("ezkl") is None:  # the zkml extra is not installed
        return None
    from ogevm.verify.zkml import CircuitStore

    if config.data_dir is None:
        return CircuitStore(tempfile.mkdtemp(prefix="ogevm-circuits-"))
    return CircuitStore(Path(config.data_dir) / "circuits")
