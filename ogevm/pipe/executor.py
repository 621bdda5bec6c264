"""The parallel inference executor: requests in, signed records out.

Requests for the same model (and the same per-sample shape) are stacked into one
onnxruntime call along the leading dimension when the model allows it, and the
outputs are split back exactly: each request gets the rows it asked for, encoded on
their own, so a NaN in one request's rows fails that request alone. If a stacked run
fails, its requests run one by one so one bad request cannot sink the others. A
failed request becomes a committed *error result*: its transaction reverts the same
way on replay everywhere.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from eth_keys import keys

from ogevm.abc import ExecutorBackend
from ogevm.abi.types import InferenceMode
from ogevm.errors import InferenceError, ResultUnavailable, UnknownModel
from ogevm.models.binding import encode_outputs
from ogevm.models.runtime import ModelRuntime, stack_feeds
from ogevm.pipe.bundle import InferenceRecord
from ogevm.records import InferenceRequest, InferenceResult
from ogevm.verify.tee import SimulatedEnclave
from ogevm.verify.vanilla import ResultSigner
from ogevm.vm.accounts import DEV_INFERENCE_NODE_KEY


class ThreadPoolBackend(ExecutorBackend):
    """Threads: onnxruntime releases the GIL while a model runs."""

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ogevm-infer")

    def submit(self, fn, item) -> Future:
        return self._pool.submit(fn, item)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass(frozen=True)
class _Job:
    """Requests run together: one model, one per-sample shape."""

    requests: tuple[InferenceRequest, ...]


class InferenceExecutor:
    """Runs requests on a backend, batched by model, and signs each result as a node.

    VANILLA and ZKML results are signed with ``node_key``, ZKML ones with the proof from
    ``prover`` attached (each alone: a proof covers one request); TEE results by
    ``enclave`` (a SIMULATED enclave here), with its attestation attached. ``max_batch`` caps the
    samples in one stacked run; ``batching=False`` runs every request on its own (the
    baseline the benchmark compares with).
    """

    def __init__(self, runtime: ModelRuntime, node_key: keys.PrivateKey = DEV_INFERENCE_NODE_KEY,
                 backend: ExecutorBackend | None = None, batching: bool = True,
                 max_batch: int = 64, enclave: SimulatedEnclave | None = None, prover=None) -> None:
        self.runtime = runtime
        self.node_key = node_key
        self.signer = ResultSigner(node_key)
        self.node = self.signer.address
        self.enclave = enclave
        #: Proves ZKML requests (``ogevm.verify.zkml.ZkProver``); without it they fail.
        self.prover = prover
        self._proofs: dict = {}
        self.backend = backend or ThreadPoolBackend()
        self.batching = batching
        self.max_batch = max_batch
        #: Seconds of model time per request (a job's time shared by its requests): what
        #: running the request inside block building would have cost.
        self.run_seconds: dict = {}

    def execute(self, requests: Sequence[InferenceRequest]) -> list[InferenceRecord]:
        """Signed records for ``requests``, in the same order. Never raises for bad requests."""
        futures = self.submit(requests)
        wait(futures)
        records = {r.request_id: r for future in futures for r in future.result()}
        return [records[request.id] for request in requests]

    def submit(self, requests: Sequence[InferenceRequest]) -> list[Future]:
        """Start ``requests`` without waiting: one future of signed records per job.

        Jobs finish independently, so a slow model does not hold back the others' records.
        """
        return [self.backend.submit(self._run_and_sign, job) for job in self._plan(requests)]

    def _run_and_sign(self, job: _Job) -> list[InferenceRecord]:
        start = time.perf_counter()
        try:
            results = {r.request_id: r for r in self._run_job(job)}
        except Exception as exc:  # a fault of this node (a bug, a dead prover): fail the job's
            # requests with a reason rather than leave their transactions waiting forever
            reason = f"inference node fault: {type(exc).__name__}"
            results = {r.id: InferenceResult(r.id, r.digest, error=reason) for r in job.requests}
        share = (time.perf_counter() - start) / len(job.requests)
        for request in job.requests:
            self.run_seconds[request.id] = share
        return [self._record(request, results[request.id]) for request in job.requests]

    def _plan(self, requests: Sequence[InferenceRequest]) -> list[_Job]:
        groups: dict[tuple, list[InferenceRequest]] = {}
        for request in requests:
            groups.setdefault(self._batch_key(request), []).append(request)
        jobs = []
        for group in groups.values():
            chunk: list[InferenceRequest] = []
            for request in group:
                if chunk and sum(r.samples for r in chunk) + request.samples > self.max_batch:
                    jobs.append(_Job(tuple(chunk)))
                    chunk = []
                chunk.append(request)
            jobs.append(_Job(tuple(chunk)))
        return jobs

    def _batch_key(self, request: InferenceRequest) -> tuple:
        """Requests with equal keys can be stacked; a request that cannot gets its own key."""
        info = self.runtime.store.get(request.model_cid)
        rows = {len(array) for array in request.feeds.values()}
        alone = request.call.mode is InferenceMode.ZKML or len(rows) != 1
        if alone or not (self.batching and info is not None and info.batchable):
            return ("alone", request.id)
        return (request.model_cid,) + tuple(
            (name, array.shape[1:], array.dtype.str) for name, array in sorted(request.feeds.items())
        )

    def _run_job(self, job: _Job) -> list[InferenceResult]:
        if len(job.requests) == 1:
            return [self._run_one(job.requests[0])]
        info = self.runtime.store[job.requests[0].model_cid]
        stacked, sizes = stack_feeds(info, [r.feeds for r in job.requests])
        try:
            outputs = self.runtime.run_raw(info, stacked)
        except InferenceError:
            return [self._run_one(request) for request in job.requests]
        bounds = np.cumsum([0, *sizes])
        results = []
        for request, start, stop in zip(job.requests, bounds[:-1], bounds[1:]):
            rows = [value[start:stop] for value in outputs]
            try:
                output = encode_outputs(info, rows)
            except InferenceError as exc:
                results.append(InferenceResult(request.id, request.digest, error=exc.reason))
            else:
                results.append(InferenceResult(request.id, request.digest, output=output))
        return results

    def _run_one(self, request: InferenceRequest) -> InferenceResult:
        try:
            info = self.runtime.store.get(request.model_cid)
            if info is None:
                raise UnknownModel(request.model_cid)
            if request.call.mode is InferenceMode.ZKML:
                output = self._prove(info, request)
            else:
                output = self.runtime.run(info, request.feeds)
        except InferenceError as exc:
            return InferenceResult(request.id, request.digest, error=exc.reason)
        return InferenceResult(request.id, request.digest, output=output)

    def _prove(self, info, request: InferenceRequest):
        from ogevm.verify.zkml import request_failures, zk_output

        if self.prover is None:
            raise ResultUnavailable("this node has no ZKML prover")
        with request_failures(request.model_cid):
            proof, outputs = self.prover.prove(request.model_cid, request.feeds)
        self._proofs[request.id] = proof
        return zk_output(info, outputs)

    def _record(self, request: InferenceRequest, result: InferenceResult) -> InferenceRecord:
        mode = request.call.mode
        if mode is InferenceMode.TEE and self.enclave is not None:
            return InferenceRecord(result, mode, request.model_cid, self.enclave.address,
                                   self.enclave.sign(result), attestation=self.enclave.attestation.encode())
        return InferenceRecord(result, mode, request.model_cid, self.node, self.signer.sign(result),
                               proof=self._proofs.pop(request.id, b""))
