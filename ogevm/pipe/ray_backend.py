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
* **ZKML** proofs run as Ray tasks (``prove_cpus`` CPUs each), from circuit files the
  driver ships once per model, anywhere in the cluster.
* **Faults**: an actor that dies is dropped and its jobs are retried on another actor of
  the group, at most ``max_attempts`` runs in all. An actor runs one job at a time, so a
  job sent behind k others gets (k + 1) x ``job_timeout``; past that it counts as a fault
  of its actor (hung), which is killed. A job that cannot run ends in
  :class:`~ogevm.errors.ExecutorUnavailable`, and PIPE puts its transactions back in the
  rounds: none is lost, and none is included twice (a record is keyed by its request id,
  and a dead actor's answer never arrives). Dead actors are not replaced: a replacement
  would be a new, unregistered node.
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
                 max_attempts: int = 3, job_timeout: float = 120.0, prove_cpus: float = 1.0) -> None:
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
        self._started_ray = _connect(address, sum(g.count * g.num_cpus for g in groups) + prove_cpus)
        self._lock = threading.Lock()
        self._model_refs: dict[str, ray.ObjectRef] = {}
        self._circuit_refs: dict[str, ray.ObjectRef] = {}
        self._pending: dict[ray.ObjectRef, _Attempt] = {}
        self._groups: dict[frozenset, list[_Actor]] = {}
        self._default = defaults[0].models
        self._closed = threading.Event()
        self._finished: queue.SimpleQueue = queue.SimpleQueue()  # refs Ray reports done
        self._monitor: threading.Thread | None = None
        #: Attempts that failed and were sent again (a dead or hung actor, a failed load).
        self.retries = 0
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
    def submit(self, job: Job) -> Future:
        future: Future = Future()
        failure = self._start(job, future, attempts=0, tried=frozenset(), last_error=None)
        if failure is not None:
            future.set_exception(failure)
        return future

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
        for attempt in abandoned:
            attempt.future.set_exception(ExecutorUnavailable("the Ray backend was closed",
                                                             tuple(r.id for r in attempt.job.requests)))
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
    def _start(self, job: Job, future: Future, attempts: int, tried: frozenset,
               last_error: str | None) -> ExecutorUnavailable | None:
        """Send ``job`` to an actor; the failure to report if it cannot be sent."""
        ids = tuple(r.id for r in job.requests)
        if attempts >= self.max_attempts:
            return ExecutorUnavailable(f"job failed on {attempts} Ray workers; last error: {last_error}", ids)
        if self._closed.is_set():
            return ExecutorUnavailable("the Ray backend was closed", ids)
        with self._lock:
            group = self._groups.get(self._group_key(job.model_cid), [])
            live = [actor for actor in group if actor.alive]
            if not live:
                return ExecutorUnavailable(f"no live Ray inference worker for model {job.model_cid}"
                                           + (f"; last error: {last_error}" if last_error else ""), ids)
            fresh = [actor for actor in live if actor.index not in tried] or live
            actor = min(fresh, key=lambda a: (a.load, -_affinity(job.model_cid, a.index)))
            ref = actor.handle.run.remote(job, *self._assets(job))
            # The actor runs the jobs already sent to it first: each of them gets its time too.
            deadline = time.monotonic() + self.job_timeout * (actor.load + 1)
            actor.load += 1
            self._pending[ref] = _Attempt(job, future, actor, deadline, attempts + 1, tried | {actor.index})
        # Ray calls back on its own thread, where Ray calls must not block: hand the ref over.
        ref.future().add_done_callback(lambda _, ref=ref: self._finished.put(ref))
        return None

    def _group_key(self, cid: str) -> frozenset:
        return next((models for models in self._groups if cid in models), self._default)

    def _assets(self, job: Job) -> tuple[dict, dict]:
        """Object refs of the job's model bytes and (for ZKML) circuit files, put once each."""
        cid = job.model_cid
        model = {}
        if cid in self.models:
            if cid not in self._model_refs:
                self._model_refs[cid] = ray.put(self.models.load(cid))
            model[cid] = self._model_refs[cid]
        circuit = {}
        if self.circuits is not None and any(r.call.mode is InferenceMode.ZKML for r in job.requests):
            if cid not in self._circuit_refs:
                try:
                    self._circuit_refs[cid] = ray.put(self.circuits.export(cid))
                except KeyError:  # no circuit: the worker fails the request with the usual reason
                    pass
            if cid in self._circuit_refs:
                circuit[cid] = self._circuit_refs[cid]
        return model, circuit

    def _watch(self) -> None:
        """Settle finished attempts, retry failed ones, time out hung ones (checked each second)."""
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
            attempt = self._pending.pop(ref, None)
            if attempt is None:
                return
            attempt.actor.load -= 1
        try:
            outcome: JobOutcome = ray.get(ref)
        except RayActorError as exc:
            attempt.actor.alive = False
            self._retry(attempt, f"worker {attempt.actor.index} died ({type(exc).__name__})")
        except Exception as exc:  # the actor raised (a model it could not load...)
            self._retry(attempt, f"worker {attempt.actor.index}: {type(exc).__name__}: {exc}".splitlines()[0])
        else:
            attempt.future.set_result(outcome)

    def _expire(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [(ref, a) for ref, a in self._pending.items() if a.deadline < now]
            for ref, attempt in late:
                del self._pending[ref]
                attempt.actor.load -= 1
                attempt.actor.alive = False
        for _, attempt in late:
            ray.kill(attempt.actor.handle)  # a hung node: stop it, and never trust it again
            self._retry(attempt, f"worker {attempt.actor.index} hung: a job ran past its {self.job_timeout:g} s")

    def _retry(self, attempt: "_Attempt", error: str) -> None:
        self.retries += 1
        failure = self._start(attempt.job, attempt.future, attempt.attempts, attempt.tried, error)
        if failure is not None:
            attempt.future.set_exception(failure)


@dataclass(eq=False)
class _Actor:
    """The driver's view of one actor: its handle, identity, liveness and jobs in flight."""

    handle: "ray.actor.ActorHandle"
    index: int
    identity: WorkerIdentity | None = None
    alive: bool = True
    load: int = 0


@dataclass
class _Attempt:
    job: Job
    future: Future
    actor: _Actor
    deadline: float
    attempts: int
    tried: frozenset


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

    def run(self, job: Job, models: Mapping[str, "ray.ObjectRef"], circuits: Mapping[str, "ray.ObjectRef"]) -> JobOutcome:
        store = self.worker.runtime.store
        for cid, ref in models.items():
            if cid not in store and store.add(ray.get(ref)).cid != cid:
                raise OgevmError(f"the bytes shipped for model {cid} have another CID")
        self.prover.circuits.update(circuits)
        return self.worker.run(job)


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

