"""The parallel inference executor: requests in, signed records out.

The executor plans: requests for the same model (and the same per-sample shape) become
one :class:`~ogevm.pipe.worker.Job`, stacked along the leading dimension when the model's
rows are independent and stacking was verified bit-identical to runs alone (see
:mod:`ogevm.models.batching`), up to ``max_batch`` rows, padded to a verified stack size.
A backend runs the jobs on inference workers: :class:`ThreadPoolBackend` on this machine's
threads (the default), or :class:`~ogevm.pipe.ray_backend.RayBackend` on a Ray cluster.
"""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Mapping, Sequence

from eth_keys import keys

from ogevm.abc import ExecutorBackend
from ogevm.abi.types import InferenceMode
from ogevm.errors import ExecutorUnavailable
from ogevm.models.batching import feed_rows, stackable_rows
from ogevm.models.runtime import ModelRuntime
from ogevm.models.store import ModelInfo
from ogevm.precompile.mocks import InferenceMocks
from ogevm.pipe.mocks import mock_record
from ogevm.pipe.worker import InferenceWorker, Job, JobOutcome, WorkerIdentity
from ogevm.records import InferenceRecord, InferenceRequest
from ogevm.verify.tee import SimulatedEnclave
from ogevm.vm.accounts import DEV_INFERENCE_NODE_KEY


class ThreadPoolBackend(ExecutorBackend):
    """One worker (one node identity) on ``workers`` threads: onnxruntime releases the GIL."""

    def __init__(self, worker: InferenceWorker, workers: int = 2) -> None:
        self.worker = worker
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ogevm-infer")

    def submit(self, jobs: Sequence[Job]) -> list[Future]:
        return [self._pool.submit(self._run, job) for job in jobs]

    def _run(self, job: Job) -> JobOutcome:
        return self.worker.run(job)

    def parallelism(self) -> int:
        return self.workers

    def identities(self) -> list[WorkerIdentity]:
        return [self.worker.identity]

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.worker.close()


class InferenceExecutor:
    """Plans requests into jobs and runs them on ``backend``.

    ``models`` is the catalogue (which models can be stacked, at which sizes). ``max_batch``
    caps the rows in one stacked run, and a batch is split so that every worker of the backend
    gets a share (stacking a heavy model's requests onto one worker would leave the others
    idle); ``batching=False`` runs every request on its own (the baseline the benchmark
    compares with). Requests that ``mocks`` covers are not run: their records are the mocked
    results, signed by the mock key (:mod:`ogevm.pipe.mocks`).
    """

    def __init__(self, backend: ExecutorBackend, models: Mapping[str, ModelInfo],
                 batching: bool = True, max_batch: int = 64, mocks: InferenceMocks | None = None) -> None:
        self.backend = backend
        self.models = models
        self.batching = batching
        self.max_batch = max_batch
        self.mocks = mocks
        #: Seconds of model time per request (a job's time shared by its requests): what
        #: running the request inside block building would have cost.
        self.run_seconds: dict = {}

    def execute(self, requests: Sequence[InferenceRequest]) -> list[InferenceRecord]:
        """Signed records for ``requests``, in the same order. Never raises for bad requests;
        raises :class:`ExecutorUnavailable` if the backend could not run them."""
        futures = self.submit(requests)
        wait(futures)
        records = {r.request_id: r for future in futures for r in future.result()}
        return [records[request.id] for request in requests]

    def submit(self, requests: Sequence[InferenceRequest]) -> list[Future]:
        """Start ``requests`` without waiting: one future of signed records per job.

        Jobs finish independently, so a slow model does not hold back the others' records.
        A job the backend could not run ends in :class:`ExecutorUnavailable` naming its
        requests, never in silence.
        """
        settled: list = []
        if self.mocks:
            requests, settled = self._split_mocked(requests)
        if not any(identity.attestation for identity in self.identities()):
            requests, unserved = _without_tee(requests)
            settled += unserved
        jobs = self._plan(requests)
        return settled + [self._records(job, running) for job, running in zip(jobs, self.backend.submit(jobs))]

    def _split_mocked(self, requests: Sequence[InferenceRequest]) -> tuple[list[InferenceRequest], list[Future]]:
        """The requests to run, and a settled future of the mocked ones' records."""
        to_run, records = [], []
        for request in requests:
            result = self.mocks.resolve(request)
            if result is None:
                to_run.append(request)
            else:
                records.append(mock_record(request, result))
        if not records:
            return to_run, []
        done: Future = Future()
        done.set_result(records)
        return to_run, [done]

    def identities(self) -> list[WorkerIdentity]:
        """The nodes (and enclaves) whose signatures this executor's records carry."""
        return self.backend.identities()

    def close(self) -> None:
        self.backend.close()

    def _records(self, job: Job, running: Future) -> Future:
        """A future of ``job``'s records, settled when the backend's ``running`` settles."""
        records: Future = Future()

        def settle(done: Future) -> None:
            try:
                outcome: JobOutcome = done.result()
            except Exception as exc:
                reason = exc.reason if isinstance(exc, ExecutorUnavailable) else f"executor fault: {exc!r}"
                records.set_exception(ExecutorUnavailable(reason, job.request_ids))
                return
            share = outcome.seconds / len(job.requests)
            for request in job.requests:
                self.run_seconds[request.id] = share
            records.set_result(list(outcome.records))

        running.add_done_callback(settle)
        return records

    def _plan(self, requests: Sequence[InferenceRequest]) -> list[Job]:
        groups: dict[tuple, list[InferenceRequest]] = {}
        for request in requests:
            groups.setdefault(self._batch_key(request), []).append(request)
        jobs = []
        parallelism = max(1, self.backend.parallelism())
        for group in groups.values():
            if len(group) == 1:
                jobs.append(Job(tuple(group)))
                continue
            rows = [feed_rows(r.feeds) for r in group]
            limit = self._stack_limit(self.models[group[0].model_cid], math.ceil(sum(rows) / parallelism))
            chunk: list[InferenceRequest] = []
            chunk_rows = 0
            for request, count in zip(group, rows):
                if chunk and chunk_rows + count > limit:
                    jobs.append(Job(tuple(chunk)))
                    chunk, chunk_rows = [], 0
                chunk.append(request)
                chunk_rows += count
            jobs.append(Job(tuple(chunk)))
        return jobs

    def _stack_limit(self, info: ModelInfo, share: int) -> int:
        """Rows per job: the largest verified stack size within ``max_batch`` and the group's
        ``share`` of rows per worker (a job of fewer rows is padded up to the next verified size)."""
        return max(size for size in (1, *info.batch_sizes) if size <= min(self.max_batch, share))

    def _batch_key(self, request: InferenceRequest) -> tuple:
        """Requests with equal keys can be stacked; a request that cannot gets its own key.

        Only requests whose rows the model keeps apart and whose shape alone was verified
        (:func:`~ogevm.models.batching.stackable_rows`) share a key, so a committed output
        is what the request gives alone, whatever it was stacked with."""
        info = self.models.get(request.model_cid)
        stackable = (self.batching and info is not None and info.batchable and info.batch_sizes
                     and request.mode is not InferenceMode.ZKML
                     and stackable_rows(info.batch_sizes, feed_rows(request.feeds)))
        if not stackable:
            return ("alone", request.id)
        return (request.model_cid,) + tuple(
            (name, array.shape[1:], array.dtype.str) for name, array in sorted(request.feeds.items())
        )


def _without_tee(requests: Sequence[InferenceRequest]) -> tuple[list[InferenceRequest], list[Future]]:
    """The requests an executor with no enclave can run, and a failed future naming the TEE
    ones: a TEE record must carry an enclave's attestation, so none can be made here."""
    tee = tuple(r.id for r in requests if r.mode is InferenceMode.TEE)
    if not tee:
        return list(requests), []
    failed: Future = Future()
    failed.set_exception(ExecutorUnavailable("no inference node of this executor has a TEE enclave", tee))
    return [r for r in requests if r.mode is not InferenceMode.TEE], [failed]


def local_executor(runtime: ModelRuntime, node_key: keys.PrivateKey = DEV_INFERENCE_NODE_KEY,
                   workers: int = 2, enclave: SimulatedEnclave | None = None, prover=None,
                   batching: bool = True, max_batch: int = 64,
                   mocks: InferenceMocks | None = None) -> InferenceExecutor:
    """An executor on this machine: one node identity, ``workers`` threads."""
    worker = InferenceWorker(runtime, node_key, enclave=enclave, prover=prover)
    return InferenceExecutor(ThreadPoolBackend(worker, workers), runtime.store, batching, max_batch, mocks)
