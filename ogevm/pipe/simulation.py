"""Simulation of pending transactions (CAPTURE), in this process or on worker processes.

A *run* is a sender's executable transactions in nonce order, with the inference results
known for them so far; simulating it on the head state tells, per transaction, which
requests it makes, or why it cannot be applied. :class:`RunSimulation` is that step; it keeps
each sender's simulated run so a transaction joining it later costs only its own pass.

Where it runs is a :class:`Simulator`:

* :class:`LocalSimulator` runs it in the calling thread, on the node's own chain;
* :class:`WorkerSimulator` spreads runs over workers (:class:`SimulationWorker`), each
  holding a copy of the chain's database, in a process of its own
  (:func:`process_workers`) or as Ray actors (:func:`ray_workers`) on other machines.

The worker protocol is four calls: ``load(contents)`` (a whole database, once),
``sync(changes)`` (what each new block wrote, from :class:`~ogevm.vm.recording_db.RecordingDB`,
so no block is executed again), ``models(infos)`` (catalogue entries), and
``simulate(runs)``. A worker that dies is started again from the database's contents and
its runs are redone; nothing is lost.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Type

from eth.abc import BlockHeaderAPI, ChainAPI, SignedTransactionAPI
from eth.db.atomic import AtomicDB
from eth.vm.base import VM

from ogevm.abc import Simulator
from ogevm.errors import InvalidModel, InvalidTransaction, OgevmError
from ogevm.llm import default_runtime
from ogevm.models.store import ModelInfo
from ogevm.precompile.modes import CaptureProvider
from ogevm.records import InferenceResult, RequestId
from ogevm.vm.blocks import PendingBlock
from ogevm.vm.recording_db import Changes, RecordingDB, apply_changes

log = logging.getLogger("ogevm.pipe")

#: Simulations are not blocks: a sender's whole queue runs in one, whatever its gas.
SIMULATION_GAS_LIMIT = 2**62

#: Per transaction of a run: the requests it made, or the reason it cannot be applied, and
#: whether it was executed for this outcome (False: known from an earlier simulation).
Outcome = list[tuple[tuple, "str | None", bool]]
Run = tuple[Sequence[SignedTransactionAPI], Mapping[RequestId, InferenceResult]]


#: How many blocks past its head a sender's simulated run may go on: a transaction joining it
#: then runs on that older state, which is a forecast like any simulation (the builder's
#: replay confirms it), rather than the whole run being executed again at every block.
MAX_FORECAST_BLOCKS = 4


class RunSimulation:
    """Simulates runs on ``chain``'s head and keeps each sender's simulated run, so that
    transactions that join a run later cost only their own EVM pass: the run's earlier
    transactions are not executed again while their order stays the same, also over the
    next ``MAX_FORECAST_BLOCKS`` blocks while some of them are still pending (those a block
    included leave the run). A transaction refused on such an older state is simulated
    again, with its run, on the head.

    Never raises for a transaction: a bug met by one sender's transactions rejects them,
    not the others'.
    """

    def __init__(self, chain: ChainAPI, vm_class: Type[VM], catalogue: Mapping[str, ModelInfo],
                 llms=None) -> None:
        self.chain = chain
        self.vm_class = vm_class
        self.catalogue = catalogue
        #: The language models LLM calls are priced on (the catalogue's by default).
        self.llms = llms
        self._runs: dict[bytes, _SimulatedRun] = {}

    def simulate(self, runs: Sequence[Run]) -> list[Outcome]:
        """The outcome of each run; simulated runs too far behind the head are forgotten."""
        head = self.chain.get_canonical_head()
        outcomes = []
        kept = {sender: run for sender, run in self._runs.items()
                if 0 <= head.block_number - run.number <= MAX_FORECAST_BLOCKS}
        for transactions, known in runs:
            sender = transactions[0].sender
            outcome, simulated = self._simulate(head, kept.pop(sender, None), transactions, known)
            outcomes.append(outcome)
            if simulated is not None:
                kept[sender] = simulated
        self._runs = kept
        return outcomes

    def _simulate(self, head: BlockHeaderAPI, simulated: "_SimulatedRun | None", transactions, known):
        try:
            if simulated is not None:
                simulated = simulated.continued_by(transactions)
            if simulated is None:
                provider = CaptureProvider(self.catalogue, known, self.llms)
                # A sender's queue may hold more gas than one block: simulate it as one sequence.
                pending = PendingBlock(self.chain, self.vm_class.with_provider(provider),
                                       gas_limit=SIMULATION_GAS_LIMIT)
                simulated = _SimulatedRun(head.hash, head.block_number, transactions[0].nonce, [], pending,
                                          provider, [])
            simulated.provider.known = known
            outcome = [(requests, None, False) for requests, _, _ in simulated.outcome]
            for position in range(len(simulated.hashes), len(transactions)):
                tx = transactions[position]
                try:
                    simulated.pending.apply(tx)
                except InvalidTransaction as exc:
                    if simulated.head != head.hash:  # maybe only on the older state: see on the head
                        return self._simulate(head, None, transactions, known)
                    outcome.append(((), str(exc), True))
                    outcome += [((), f"depends on rejected tx 0x{tx.hash.hex()}", False)] * (len(transactions) - position - 1)
                    return outcome, None
                step = (tuple(simulated.provider.requests.get(tx.hash, ())), None, True)
                outcome.append(step)
                simulated.outcome.append(step)
                simulated.hashes.append(tx.hash)
            return outcome, simulated
        except Exception as exc:
            log.exception("simulation of a run of %d transactions failed", len(transactions))
            return [((), f"internal error while simulating: {type(exc).__name__}", True)] * len(transactions), None


@dataclass
class _SimulatedRun:
    """A sender's run simulated so far on ``head`` (block ``number``), from nonce
    ``first_nonce``: the pending state after it."""

    head: bytes
    number: int
    first_nonce: int
    hashes: list[bytes]
    pending: PendingBlock
    provider: CaptureProvider
    outcome: Outcome

    def continued_by(self, transactions: Sequence[SignedTransactionAPI]) -> "_SimulatedRun | None":
        """This run, without the transactions included since (below the run's first nonce
        now), if ``transactions`` start with the rest of it in order; else None. None too when
        nothing is left of it: starting on the head then costs no more, and sees the head."""
        included = transactions[0].nonce - self.first_nonce
        if not 0 <= included < len(self.hashes):
            return None
        rest = self.hashes[included:]
        if [tx.hash for tx in transactions[:len(rest)]] != rest:
            return None
        del self.hashes[:included], self.outcome[:included]
        self.first_nonce += included
        return self


class LocalSimulator(Simulator):
    """Simulates in the calling thread on ``chain`` (an ``ogevm.vm.chain.DevChain``), holding
    ``chain_lock`` if given (a pipeline's: so that it never reads the chain mid-build)."""

    def __init__(self, chain, chain_lock: threading.Lock | None = None) -> None:
        self._simulation = RunSimulation(chain.chain, chain.base_vm_class, chain.models)
        self._chain_lock = chain_lock or contextlib.nullcontext()

    def simulate(self, runs: Sequence[Run]) -> list[Outcome]:
        with self._chain_lock:
            return self._simulation.simulate(runs)

    def close(self) -> None:
        pass


class SimulationWorker:
    """A copy of the chain's database and catalogue, simulating runs on its head.

    Runs in a worker process (:func:`process_workers`) or a Ray actor (:func:`ray_workers`).
    """

    def __init__(self, vm_class: Type[VM], chain_id: int) -> None:
        from ogevm.vm.chain import chain_class

        self.vm_class = vm_class
        self.db = AtomicDB()
        self._chain_class = chain_class(vm_class, chain_id)
        self.chain: ChainAPI | None = None
        self.catalogue: dict[str, ModelInfo] = {}
        self.llms = default_runtime()

    def load(self, contents: Changes) -> None:
        apply_changes(self.db, contents)
        self.chain = self._chain_class(self.db)
        self._simulation = RunSimulation(self.chain, self.vm_class, self.catalogue, self.llms)

    def sync(self, changes: Changes) -> None:
        apply_changes(self.db, changes)

    def models(self, infos: Sequence[ModelInfo], llm_files: Sequence[bytes] = (),
               llm_folders: Sequence[tuple[str, str]] = ()) -> None:
        """Catalogue entries, language model files and model folders ``(path, name)`` on this
        machine (LLM calls are priced on them). A folder this worker cannot load (a Ray actor on
        another machine) is left out: calls of its model then fail in simulation, readably."""
        from ogevm.llm.genai import GenaiModel
        from ogevm.llm.model import WindowModel

        self.catalogue.update((info.cid, info) for info in infos)
        for data in llm_files:
            self.llms.add(WindowModel(data))
        for path, name in llm_folders:
            try:
                self.llms.add(GenaiModel(path, name=name))
            except InvalidModel as exc:
                log.warning("simulation worker: language model folder %s left out: %s", path, exc.reason)

    def simulate(self, runs: Sequence[tuple[Sequence[bytes], Mapping]]) -> list[Outcome]:
        decode = self.vm_class.get_transaction_builder().decode
        return self._simulation.simulate([([decode(raw) for raw in raws], known) for raws, known in runs])


class WorkerDied(OgevmError):
    """A simulation worker stopped answering (its process died, its actor was lost)."""


class WorkerSimulator(Simulator):
    """Spreads runs over simulation workers that follow ``db`` (the chain's RecordingDB).

    ``start_worker()`` returns a handle with ``call(method, *args) -> wait()`` (an
    asynchronous call whose ``wait()`` returns the result or raises WorkerDied) and
    ``stop()``. Before each simulation every worker receives the changes committed since
    the last one and the models added since. A worker that died is started again and its
    runs are redone (``max_restarts`` times per simulation).
    """

    remote = True

    def __init__(self, chain, db: RecordingDB, start_worker: Callable[[], Any], count: int,
                 max_restarts: int = 2) -> None:
        if count < 1:
            raise ValueError("a WorkerSimulator needs at least one worker")
        self.chain = chain
        self.db = db
        self._start_worker = start_worker
        self.max_restarts = max_restarts
        self.restarts = 0
        self._models_sent: set[str] = set()
        self._owners: dict[bytes, int] = {}  # sender -> worker that simulated its run last
        self._lock = threading.Lock()
        db.drain()  # the contents each worker loads include everything so far
        self.workers = self._started(count)

    def _started(self, count: int) -> list:
        """``count`` new workers holding the database's contents and every model."""
        workers = [self._start_worker() for _ in range(count)]
        contents, infos = self.db.contents(), list(self.chain.models.values())
        files, folders = self._language_models()
        for call in ([w.call("load", contents) for w in workers]
                     + [w.call("models", infos, list(files.values()), list(folders.values())) for w in workers]):
            call.wait()
        return workers

    def _language_models(self) -> tuple[dict[str, bytes], dict[str, tuple[str, str]]]:
        """The chain's language model files and folders by CID (none for a plain catalogue)."""
        models = self.chain.models
        if not hasattr(models, "llm_files"):
            return {}, {}
        return models.llm_files(), models.llm_folders()

    def simulate(self, runs: Sequence[Run]) -> list[Outcome]:
        with self._lock:
            self._catch_up()
            shares = self._share(runs)
            outcomes: list[Outcome | None] = [None] * len(runs)
            pending = [(w, share) for w, share in enumerate(shares) if share]
            for _ in range(self.max_restarts + 1):
                calls = [(w, share, self.workers[w].call("simulate", [_wire(runs[i]) for i in share]))
                         for w, share in pending]
                pending = []
                for w, share, call in calls:
                    try:
                        for i, outcome in zip(share, call.wait()):
                            outcomes[i] = outcome
                    except WorkerDied:
                        self._replace(w)
                        pending.append((w, share))
                if not pending:
                    return outcomes
            raise WorkerDied(f"simulation workers kept dying ({self.max_restarts} restarts)")

    def _share(self, runs: Sequence[Run]) -> list[list[int]]:
        """Run indices per worker: a sender's run goes back to the worker that simulated it
        last (which keeps it simulated so far), the others to the least loaded worker."""
        shares: list[list[int]] = [[] for _ in self.workers]
        load = [0] * len(self.workers)
        for index in sorted(range(len(runs)), key=lambda i: -len(runs[i][0])):
            sender = runs[index][0][0].sender
            w = self._owners.get(sender)
            if w is None or load[w] > min(load) + len(runs[index][0]):
                w = load.index(min(load))
            self._owners[sender] = w
            shares[w].append(index)
            load[w] += len(runs[index][0])
        return shares

    def _catch_up(self) -> None:
        changes = self.db.drain()
        new_models = [info for cid, info in self.chain.models.items() if cid not in self._models_sent]
        files, folders = self._language_models()
        new_files = {cid: data for cid, data in files.items() if cid not in self._models_sent}
        new_folders = {cid: folder for cid, folder in folders.items() if cid not in self._models_sent}
        for w in range(len(self.workers)):
            try:
                if changes:
                    self.workers[w].call("sync", changes).wait()
                if new_models or new_files or new_folders:
                    self.workers[w].call("models", new_models, list(new_files.values()),
                                         list(new_folders.values())).wait()
            except WorkerDied:
                self._replace(w)  # a new worker loads everything, these changes included
        self._models_sent.update([info.cid for info in new_models] + list(new_files) + list(new_folders))

    def _replace(self, w: int) -> None:
        self.restarts += 1
        self.workers[w].stop()
        (self.workers[w],) = self._started(1)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()


def _wire(run: Run) -> tuple[list[bytes], dict]:
    """A run as it travels to a worker: raw transactions and the known results."""
    txs, known = run
    return [tx.encode() for tx in txs], dict(known)


# --- worker processes ----------------------------------------------------------------------

def process_workers(vm_class: Type[VM], chain_id: int) -> Callable[[], "_ProcessWorker"]:
    """Starts simulation workers as processes of this machine (``python -m ogevm.pipe.simulation``
    on one end of a socket pair: no import of the caller's main module, as spawning would)."""
    return lambda: _ProcessWorker(vm_class, chain_id)


class _ProcessWorker:
    def __init__(self, vm_class: Type[VM], chain_id: int) -> None:
        self._connection, child = multiprocessing.Pipe()
        self.process = subprocess.Popen([sys.executable, "-m", "ogevm.pipe.simulation", str(child.fileno())],
                                        pass_fds=[child.fileno()], stdin=subprocess.DEVNULL)
        child.close()
        self._connection.send((vm_class, chain_id))

    def call(self, method: str, *args) -> "_Reply":
        try:
            self._connection.send((method, args))
        except (OSError, ValueError) as exc:
            return _Reply(error=WorkerDied(f"simulation worker {self.process.pid} is gone: {exc}"))
        return _Reply(self._connection, self.process.pid)

    def stop(self) -> None:
        self._connection.close()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class _Reply:
    def __init__(self, connection=None, pid: int | None = None, error: Exception | None = None) -> None:
        self._connection, self._pid, self._error = connection, pid, error

    def wait(self):
        if self._error is not None:
            raise self._error
        try:
            status, value = self._connection.recv()
        except (EOFError, OSError) as exc:
            raise WorkerDied(f"simulation worker {self._pid} died: {type(exc).__name__}") from exc
        if status == "error":
            raise OgevmError(f"simulation worker {self._pid} failed: {value}")
        return value


def _serve(fd: int) -> None:
    """A worker process: answer calls until the node closes the connection (or dies)."""
    connection = multiprocessing.connection.Connection(fd)
    try:
        vm_class, chain_id = connection.recv()
    except (EOFError, OSError):
        return
    worker = SimulationWorker(vm_class, chain_id)
    while True:
        try:
            method, args = connection.recv()
        except (EOFError, OSError):
            return
        try:
            connection.send(("ok", getattr(worker, method)(*args)))
        except Exception as exc:  # report, keep serving: the node decides what to do
            connection.send(("error", repr(exc)))


# --- Ray actors --------------------------------------------------------------------------------

def ray_workers(vm_class: Type[VM], chain_id: int, num_cpus: float = 1.0) -> Callable[[], "_RayWorker"]:
    """Starts simulation workers as Ray actors (``ray.init`` must have been called)."""
    import ray

    actor_class = ray.remote(num_cpus=num_cpus, max_restarts=0)(SimulationWorker)
    return lambda: _RayWorker(actor_class.remote(vm_class, chain_id))


class _RayWorker:
    def __init__(self, actor) -> None:
        self.actor = actor

    def call(self, method: str, *args) -> "_RayReply":
        return _RayReply(getattr(self.actor, method).remote(*args))

    def stop(self) -> None:
        import ray

        ray.kill(self.actor)


class _RayReply:
    def __init__(self, ref) -> None:
        self._ref = ref

    def wait(self):
        import ray
        from ray.exceptions import RayActorError

        try:
            return ray.get(self._ref)
        except RayActorError as exc:
            raise WorkerDied(f"simulation actor died: {type(exc).__name__}") from exc


if __name__ == "__main__":
    from ogevm.pipe.simulation import _serve as serve  # the module's own copy, not __main__'s

    serve(int(sys.argv[1]))
