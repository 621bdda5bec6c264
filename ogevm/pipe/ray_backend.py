"""Inference workers as Ray actors: an executor backend that spans machines.

Each actor is an inference node of its own: its own onnxruntime sessions, its own node
key and, with ``enclaves=True``, its own SIMULATED enclave (the enclave key is made inside
the actor). Every actor must be registered like any other node
(:func:`~ogevm.verify.registry.register_nodes`) before its records count.

* **Models** travel through Ray's object store: the driver puts a model's bytes once, an
  actor fetches them on its first job for that model and checks them against the CID.
* **Routing**: a job goes to the least loaded live actor of its model's group; between
  equally loaded ones, to the model's own first choice (rendezvous hashing), so sessions
  stay warm and a burst of one model still spreads over the group.
* **Batching** is the executor's: a job arrives stacked and runs as one onnxruntime call.
  Jobs submitted together for one actor travel in calls of up to ``jobs_per_call`` jobs: a
  Ray call costs about a millisecond of the driver's CPU, more than a small model's job.
* **ZKML** proofs run as Ray tasks (``prove_cpus`` CPUs each), from circuit files the
  driver ships once per model, anywhere in the cluster.
* **Faults**: an actor that dies is dropped and its jobs are retried on another actor of
  the group, at most ``max_attempts`` runs in all. An actor runs one job at a time, so a
  call is due ``job_timeout`` per job it holds and per job sent to its actor before it;
  past that it counts as a fault of its actor (hung), which is killed. A job that cannot
  run ends in :class:`~ogevm.errors.ExecutorUnavailable`, and PIPE puts its transactions
  back in the rounds: none is lost, and none is included twice (a record is keyed by its
  request id, and a dead actor's answer never arrives). Dead actors are not replaced: a
  replacement would be a new, unregistered node.
"""

from __future__ import annotations

import itertools
import math
import queue
import os
import socket
import tempfile
import threading
import time
import zlib
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import ray
from eth_keys import keys
from ray.exceptions import RayActorError

from ogevm.abc import ExecutorBackend
from ogevm.abi.types import InferenceMode
from ogevm.errors import ExecutorUnavailable, OgevmError
from ogevm.models.runtime import ModelRuntime
from ogevm.models.store import ModelStore
from ogevm.pipe.worker import InferenceWorker, Job, JobOutcome, WorkerIdentity
from ogevm.vm.accounts import dev_inference_node_key

#: How long the backend waits for its actors to start (a cluster without the resources asked
#: for would never place them).
STARTUP_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class WorkerGroup:
    """``count`` identical actors, each reserving ``num_cpus`` and ``num_gpus``.

    ``models`` are the CIDs routed to this group; an empty set makes it the default group,
    which serves every model no other group claims. With a GPU, an actor runs models on
    onnxruntime's CUDA provider when its onnxruntime has one (and on the CPU otherwise).
    """

    count: int = 2
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    models: frozenset[str] = field(default_factory=frozenset)


class RayBackend(ExecutorBackend):
    """Runs jobs on Ray actors, one inference node each (see the module docstring).

    ``address``: ``"auto"`` joins the cluster ``RAY_ADDRESS`` names, or starts a local
    one; anything else is passed to ``ray.init`` (``"host:6379"``, ``"ray://host:10001"``).
    If Ray is already initialised in this process, its cluster is used as it is.
    ``node_keys``: one per actor, in group order; by default the development keys
    (public: development chains only). ``models`` is the store the driver ships models
    from; ``circuits`` (a :class:`~ogevm.verify.zkml.CircuitStore`) enables ZKML.
    """

    def __init__(self, models: ModelStore, address: str = "auto", groups: Sequence[WorkerGroup] = (WorkerGroup(),),
                 node_keys: Sequence[keys.PrivateKey] | None = None, enclaves: bool = False, circuits=None,
                 max_attempts: int = 3, job_timeout: float = 120.0, prove_cpus: float = 1.0,
                 jobs_per_call: int = 8) -> None:
        defaults = [group for group in groups if not group.models]
        if len(defaults) != 1:
            raise OgevmError("a Ray backend needs exactly one default worker group (one without models)")
        total = sum(group.count for group in groups)
        if node_keys is None:
            node_keys = [dev_inference_node_key(i) for i in range(total)]
        if len(node_keys) != total:
            raise OgevmError(f"{total} Ray workers need {total} node keys, got {len(node_keys)}")
        self.models = models
        self.circuits = circuits
        self.max_attempts = max_attempts
        self.job_timeout = job_timeout
        self.prove_cpus = prove_cpus
        self.jobs_per_call = jobs_per_call
        self._started_ray = _connect(address, sum(g.count * g.num_cpus for g in groups) + prove_cpus)
        self._lock = threading.Lock()
        self._model_refs: dict[str, ray.ObjectRef] = {}
        self._circuit_refs: dict[str, ray.ObjectRef] = {}
        self._pending: dict[ray.ObjectRef, _Call] = {}
        self._groups: dict[frozenset, list[_Actor]] = {}
        self._default = defaults[0].models
        self._closed = threading.Event()
        self._finished: queue.SimpleQueue = queue.SimpleQueue()  # refs Ray reports done
        self._monitor: threading.Thread | None = None
        #: Jobs whose attempt failed and that were sent again (a dead or hung actor, a failed load).
        self.retries = 0
        #: Ray calls made to the actors (each carries up to ``jobs_per_call`` jobs).
        self.calls = 0
        numbered = enumerate(node_keys)
        actor_class = ray.remote(_InferenceActor)
        for group in groups:
            options = dict(num_cpus=group.num_cpus, num_gpus=group.num_gpus, max_concurrency=1, max_restarts=0)
            self._groups[group.models] = [
                _Actor(actor_class.options(**options).remote(key.to_bytes(), enclaves, group.num_gpus > 0, prove_cpus),
                       index)
                for index, key in itertools.islice(numbered, group.count)
            ]
        try:
            for actor in self.actors:
                actor.identity = ray.get(actor.handle.identity.remote(), timeout=STARTUP_TIMEOUT_SECONDS)
        except ray.exceptions.GetTimeoutError as exc:
            self.close()
            raise OgevmError(f"the Ray cluster did not start {total} inference workers within "
                             f"{STARTUP_TIMEOUT_SECONDS:.0f} s: not enough CPUs or GPUs for the groups asked for") from exc
        self._monitor = threading.Thread(target=self._watch, name="ogevm-ray-monitor", daemon=True)
        self._monitor.start()

    # --- ExecutorBackend -----------------------------------------------------------------
    def submit(self, jobs: Sequence[Job]) -> list[Future]:
        tasks = [_Task(job, Future()) for job in jobs]
        self._send(tasks)
        return [task.future for task in tasks]

    def parallelism(self) -> int:
        return len(self.live_actors())

    def identities(self) -> list[WorkerIdentity]:
        return [actor.identity for actor in self.actors]

    def close(self) -> None:
        self._closed.set()
        if self._monitor is not None:
            self._finished.put(None)
            self._monitor.join(timeout=10)
        with self._lock:
            abandoned, self._pending = list(self._pending.values()), {}
        for call in abandoned:
            for task in call.tasks:
                task.future.set_exception(ExecutorUnavailable("the Ray backend was closed",
                                                              task.job.request_ids))
        for actor in self.actors:
            ray.kill(actor.handle)
        if self._started_ray:
            ray.shutdown()

    # --- introspection ---------------------------------------------------------------------
    @property
    def actors(self) -> list["_Actor"]:
        return [actor for group in self._groups.values() for actor in group]

    def live_actors(self) -> list["_Actor"]:
        return [actor for actor in self.actors if actor.alive]

    # --- dispatch ------------------------------------------------------------------------------
    def _send(self, tasks: list["_Task"]) -> None:
        """Route each task to an actor and send each actor its tasks in calls of at most
        ``jobs_per_call`` jobs (one Ray call costs about a millisecond of this process's CPU);
        a task that cannot be sent fails with the reason."""
        routed: dict[_Actor, list[_Task]] = {}
        failed: list[tuple[_Task, ExecutorUnavailable]] = []
        refs = []
        with self._lock:
            for task in tasks:
                actor = self._route(task)
                if isinstance(actor, ExecutorUnavailable):
                    failed.append((task, actor))
                else:
                    routed.setdefault(actor, []).append(task)
            for actor, mine in routed.items():
                # The actor first runs the jobs sent to it before: each of them gets its time too.
                due = actor.load - len(mine)
                for first in range(0, len(mine), self.jobs_per_call):
                    call = mine[first:first + self.jobs_per_call]
                    ref = actor.handle.run.remote([task.job for task in call], *self._assets(call))
                    self.calls += 1
                    due += len(call)
                    self._pending[ref] = _Call(actor, call, time.monotonic() + self.job_timeout * due)
                    refs.append(ref)
        for task, failure in failed:
            task.future.set_exception(failure)
        # Ray calls back on its own thread, where Ray calls must not block: hand the ref over.
        for ref in refs:
            ref.future().add_done_callback(lambda _, ref=ref: self._finished.put(ref))

    def _route(self, task: "_Task") -> "_Actor | ExecutorUnavailable":
        """The actor for ``task``'s next attempt (counted), or why there is none."""
        if task.attempts >= self.max_attempts:
            return ExecutorUnavailable(f"job failed on {task.attempts} Ray workers; last error: {task.last_error}",
                                       task.job.request_ids)
        if self._closed.is_set():
            return ExecutorUnavailable("the Ray backend was closed", task.job.request_ids)
        cid = task.job.model_cid
        live = [actor for actor in self._groups.get(self._group_key(cid), []) if actor.alive]
        if not live:
            return ExecutorUnavailable(f"no live Ray inference worker for model {cid}"
                                       + (f"; last error: {task.last_error}" if task.last_error else ""),
                                       task.job.request_ids)
        fresh = [actor for actor in live if actor.index not in task.tried] or live
        actor = min(fresh, key=lambda a: (a.load, -_affinity(cid, a.index)))
        actor.load += 1  # sent by the caller while it holds the lock
        task.attempts += 1
        task.tried |= {actor.index}
        return actor

    def _group_key(self, cid: str) -> frozenset:
        return next((models for models in self._groups if cid in models), self._default)

    def _assets(self, tasks: Sequence["_Task"]) -> tuple[dict, dict]:
        """Object refs of the jobs' model bytes and (for ZKML) circuit files, put once each."""
        models, circuits = {}, {}
        for job in (task.job for task in tasks):
            cid = job.model_cid
            if cid in self.models:
                if cid not in self._model_refs:
                    self._model_refs[cid] = ray.put(self.models.load(cid))
                models[cid] = self._model_refs[cid]
            if self.circuits is not None and any(r.mode is InferenceMode.ZKML for r in job.requests):
                if cid not in self._circuit_refs:
                    try:
                        self._circuit_refs[cid] = ray.put(self.circuits.export(cid))
                    except KeyError:  # no circuit: the worker fails the request with the usual reason
                        pass
                if cid in self._circuit_refs:
                    circuits[cid] = self._circuit_refs[cid]
        return models, circuits

    def _watch(self) -> None:
        """Settle finished calls, retry failed ones, time out hung ones (checked each second)."""
        next_check = time.monotonic() + 1.0
        while not self._closed.is_set():
            try:
                ref = self._finished.get(timeout=1.0)
            except queue.Empty:
                ref = None
            if ref is not None:
                self._settle(ref)
            if time.monotonic() >= next_check:
                self._expire()
                next_check = time.monotonic() + 1.0

    def _settle(self, ref: ray.ObjectRef) -> None:
        with self._lock:
            call = self._pending.pop(ref, None)
            if call is None:
                return
            call.actor.load -= len(call.tasks)
        try:
            outcomes: list[JobOutcome] = ray.get(ref)
        except RayActorError as exc:
            call.actor.alive = False
            self._retry(call.tasks, f"worker {call.actor.index} died ({type(exc).__name__})")
        except Exception as exc:  # the actor raised (a model it could not load...)
            self._retry(call.tasks, f"worker {call.actor.index}: {type(exc).__name__}: {exc}".splitlines()[0])
        else:
            for task, outcome in zip(call.tasks, outcomes):
                task.future.set_result(outcome)

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [(ref, call) for ref, call in self._pending.items() if call.deadline < now]
            for ref, call in late:
                del self._pending[ref]
                call.actor.load -= len(call.tasks)
                call.actor.alive = False
        for _, call in late:
            ray.kill(call.actor.handle)  # a hung node: stop it, and never trust it again
            self._retry(call.tasks, f"worker {call.actor.index} hung: its jobs ran past {self.job_timeout:g} s each")

    def _retry(self, tasks: list["_Task"], error: str) -> None:
        self.retries += len(tasks)
        for task in tasks:
            task.last_error = error
        self._send(tasks)


@dataclass(eq=False)
class _Actor:
    """The driver's view of one actor: its handle, identity, liveness and jobs in flight."""

    handle: "ray.actor.ActorHandle"
    index: int
    identity: WorkerIdentity | None = None
    alive: bool = True
    load: int = 0


@dataclass(eq=False)
class _Task:
    """One job and its future, across the attempts to run it."""

    job: Job
    future: Future
    attempts: int = 0
    tried: frozenset = frozenset()
    last_error: str | None = None


@dataclass
class _Call:
    """One Ray call in flight: jobs sent together to one actor, due back by ``deadline``."""

    actor: _Actor
    tasks: list[_Task]
    deadline: float


class _InferenceActor:
    """Inside a Ray actor process: one :class:`InferenceWorker` and its model store."""

    def __init__(self, node_key: bytes, enclave: bool, use_gpu: bool, prove_cpus: float) -> None:
        from ogevm.verify.tee import SimulatedEnclave

        runtime = ModelRuntime(ModelStore(), providers=_providers(use_gpu))
        self.prover = _TaskProver(prove_cpus)
        self.worker = InferenceWorker(runtime, keys.PrivateKey(node_key),
                                      enclave=SimulatedEnclave() if enclave else None, prover=self.prover)

    def identity(self) -> WorkerIdentity:
        return self.worker.identity

    def pid(self) -> int:
        return os.getpid()

    def run(self, jobs: Sequence[Job], models: Mapping[str, "ray.ObjectRef"],
            circuits: Mapping[str, "ray.ObjectRef"]) -> list[JobOutcome]:
        store = self.worker.runtime.store
        for cid, ref in models.items():
            if cid not in store and store.add(ray.get(ref)).cid != cid:
                raise OgevmError(f"the bytes shipped for model {cid} have another CID")
        self.prover.circuits.update(circuits)
        return [self.worker.run(job) for job in jobs]


class _TaskProver:
    """Proves ZKML requests as Ray tasks, from circuit files shipped by the driver."""

    def __init__(self, prove_cpus: float) -> None:
        self.circuits: dict[str, ray.ObjectRef] = {}
        self._prove = ray.remote(num_cpus=prove_cpus)(_prove_in_task)

    def prove(self, cid: str, feeds):
        if cid not in self.circuits:
            raise KeyError(cid)
        try:
            return ray.get(self._prove.remote(self.circuits[cid], cid, dict(feeds)))
        except ray.exceptions.RayTaskError as exc:  # raise what the prover raised (ZkmlUnsupported...)
            cause = getattr(exc, "cause", None)
            raise cause if isinstance(cause, Exception) else exc

    def close(self) -> None:
        pass


def _prove_in_task(files: Mapping[str, bytes], cid: str, feeds):
    """A Ray task: prove with a circuit store of this worker process, filled from ``files``."""
    from ogevm.verify.zkml import CircuitStore

    global _TASK_CIRCUITS
    if _TASK_CIRCUITS is None:
        _TASK_CIRCUITS = CircuitStore(tempfile.mkdtemp(prefix="ogevm-ray-circuits-"))
    _TASK_CIRCUITS.install(files)
    return _TASK_CIRCUITS.prove(cid, feeds)


_TASK_CIRCUITS = None


def _connect(address: str, cpus_needed: float) -> bool:
    """Join or start a Ray cluster; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    options = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
    if address != "auto":
        _check_reachable(address)
    try:
        if address == "auto" and not os.environ.get("RAY_ADDRESS"):
            # A local cluster: actors and proving tasks reserve logical CPUs, at least enough for all.
            ray.init(num_cpus=max(os.cpu_count() or 1, math.ceil(cpus_needed)), **options)
        else:
            ray.init(address=None if address == "auto" else address, **options)
    except Exception as exc:  # Ray raises ConnectionError, ValueError, RuntimeError... for a bad address
        raise OgevmError(f"cannot join the Ray cluster at {address!r}: {exc}".splitlines()[0]) from exc
    return True


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on an address nothing answers at (``ray.init`` retries it for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except (OSError, ValueError) as exc:
        raise OgevmError(f"no Ray cluster answers at {address!r} ({exc or type(exc).__name__})") from exc


def _providers(use_gpu: bool) -> list[str]:
    import onnxruntime as ort

    if use_gpu and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _affinity(cid: str, index: int) -> int:
    """Rendezvous score of (model, actor): each model's preferred actor, stable across runs."""
    return zlib.crc32(f"{cid}/{index}".encode())

