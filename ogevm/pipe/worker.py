"""One inference node: runs a job of requests and signs their results with its own keys.

A job is requests for one model (and one per-sample shape) that run together: they are
stacked into one onnxruntime call along the leading dimension, padded to a stack size the
model passed the bit-identity check at (:mod:`ogevm.models.batching`), and the outputs are
split back exactly, padding dropped, each request's rows encoded on their own, so a NaN in
one request's rows fails that request alone. A job this node's check does not admit runs
request by request. If a stacked run fails, its requests run one by one so one
bad request cannot sink the others. A failed request becomes a committed *error
result*: its transaction reverts the same way on replay everywhere.

The job's VANILLA results are signed together, one signature over the Merkle root of
their messages (:meth:`~ogevm.verify.vanilla.ResultSigner.sign_batch`), so a stacked run
of small requests costs one signature, not one per request; a VANILLA result alone is
signed alone. TEE and ZKML results are signed one by one, over their attestation or proof.
An LLM request (:mod:`ogevm.precompile.llm`) always runs alone, on the store's language models.

The same worker runs in the node's own threads (:class:`~ogevm.pipe.executor.ThreadPoolBackend`)
or inside a Ray actor on another machine (:mod:`ogevm.pipe.ray_backend`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from eth_keys import keys

from ogevm.abi.types import InferenceMode
from ogevm.errors import InferenceError, ResultUnavailable, UnknownModel
from ogevm.models.batching import feed_rows, padded_size, stackable_rows
from ogevm.models.binding import encode_outputs, encode_stacked_outputs
from ogevm.models.runtime import ModelRuntime, stack_feeds
from ogevm.models.store import ModelInfo
from ogevm.precompile.llm import run_llm
from ogevm.records import BatchPosition, InferenceRecord, InferenceRequest, InferenceResult
from ogevm.verify.tee import Attestation, SimulatedEnclave
from ogevm.verify.vanilla import ResultSigner
from ogevm.vm.accounts import DEV_INFERENCE_NODE_KEY


@dataclass(frozen=True)
class Job:
    """Requests run together: one model, one per-sample shape (or a single request)."""

    requests: tuple[InferenceRequest, ...]

    @property
    def model_cid(self) -> str:
        return self.requests[0].model_cid

    @property
    def request_ids(self) -> tuple:
        return tuple(r.id for r in self.requests)


@dataclass(frozen=True)
class JobOutcome:
    """A job's signed records (in the job's order) and the seconds it took on its worker."""

    records: tuple[InferenceRecord, ...]
    seconds: float


@dataclass(frozen=True)
class WorkerIdentity:
    """Who signs a worker's results: its node address (VANILLA and ZKML) and, with an
    enclave, the attestation document of the enclave key (TEE). Both must be registered."""

    node: bytes
    attestation: bytes | None = None

    @property
    def enclave(self) -> bytes | None:
        """Address of the enclave key the attestation binds (None without an enclave)."""
        return None if self.attestation is None else Attestation.decode(self.attestation).enclave_key


class InferenceWorker:
    """Runs jobs on ``runtime`` and signs their results as the node ``node_key``.

    VANILLA and ZKML results are signed with ``node_key``: a job's VANILLA results as one
    batch, ZKML ones each with the proof from ``prover`` attached; TEE results by
    ``enclave`` (a SIMULATED enclave here), with its attestation attached. Safe to use
    from several threads.
    """

    def __init__(self, runtime: ModelRuntime, node_key: keys.PrivateKey = DEV_INFERENCE_NODE_KEY,
                 enclave: SimulatedEnclave | None = None, prover=None) -> None:
        self.runtime = runtime
        self.signer = ResultSigner(node_key)
        self.enclave = enclave
        self._attestation = enclave.attestation.encode() if enclave is not None else None
        #: Proves ZKML requests (``prove(cid, feeds) -> (proof, outputs)``); without it they fail.
        self.prover = prover
        self.identity = WorkerIdentity(self.signer.address, self._attestation)

    def run(self, job: Job) -> JobOutcome:
        """Signed records for ``job``. Never raises: a fault of this node (a bug, a dead
        prover) fails the job's requests with a reason rather than leave them waiting."""
        start = time.perf_counter()
        try:
            results = self._run_job(job)
        except Exception as exc:
            reason = f"inference node fault: {type(exc).__name__}"
            results = [(InferenceResult(r.id, r.digest, error=reason), b"") for r in job.requests]
        return JobOutcome(self._records(job, results), time.perf_counter() - start)

    def close(self) -> None:
        if self.prover is not None:
            self.prover.close()

    def _run_job(self, job: Job) -> list[tuple[InferenceResult, bytes]]:
        info = self.runtime.store.get(job.model_cid)
        size = self._stack_size(info, job)
        if size is None:
            return [self._run_one(request) for request in job.requests]
        stacked, sizes = stack_feeds(info, [r.feeds for r in job.requests], size)
        try:
            outputs = self.runtime.run_raw(info, stacked)
        except InferenceError:
            return [self._run_one(request) for request in job.requests]
        encoded = encode_stacked_outputs(info, outputs, sizes)
        if encoded is not None:
            return [(InferenceResult(r.id, r.digest, output=output), b"") for r, output in zip(job.requests, encoded)]
        bounds = np.cumsum([0, *sizes])
        results = []
        for request, start, stop in zip(job.requests, bounds[:-1], bounds[1:]):
            try:
                output = encode_outputs(info, [value[start:stop] for value in outputs])
            except InferenceError as exc:
                results.append((InferenceResult(request.id, request.digest, error=exc.reason), b""))
            else:
                results.append((InferenceResult(request.id, request.digest, output=output), b""))
        return results

    @staticmethod
    def _stack_size(info: ModelInfo | None, job: Job) -> int | None:
        """The verified size to pad ``job``'s stack to, by this node's own check of the model
        (the planner's may come from another machine); None runs the requests alone."""
        if info is None or not info.batchable or len(job.requests) == 1:
            return None
        rows = [feed_rows(request.feeds) for request in job.requests]
        if not all(stackable_rows(info.batch_sizes, count) for count in rows):
            return None
        return padded_size(info.batch_sizes, sum(rows))

    def _run_one(self, request: InferenceRequest) -> tuple[InferenceResult, bytes]:
        proof = b""
        try:
            if request.is_llm:
                return InferenceResult(request.id, request.digest, output=run_llm(self.runtime.store.llms, request)), b""
            info = self.runtime.store.get(request.model_cid)
            if info is None:
                raise UnknownModel(request.model_cid)
            if request.mode is InferenceMode.ZKML:
                proof, output = self._prove(info, request)
            else:
                output = self.runtime.run(info, request.feeds)
        except InferenceError as exc:
            return InferenceResult(request.id, request.digest, error=exc.reason), b""
        return InferenceResult(request.id, request.digest, output=output), proof

    def _prove(self, info, request: InferenceRequest):
        from ogevm.verify.zkml import request_failures, zk_output

        if self.prover is None:
            raise ResultUnavailable("this node has no ZKML prover")
        with request_failures(request.model_cid):
            proof, outputs = self.prover.prove(request.model_cid, request.feeds)
        return proof, zk_output(info, outputs)

    def _records(self, job: Job, results: list[tuple[InferenceResult, bytes]]) -> tuple[InferenceRecord, ...]:
        """The job's signed records, in its order: its VANILLA results under one batch
        signature when there are several, every other result signed alone."""
        vanilla = [i for i, request in enumerate(job.requests) if request.mode is InferenceMode.VANILLA]
        positions: dict[int, BatchPosition] = {}
        if len(vanilla) > 1:
            signature, in_batch = self.signer.sign_batch([results[i][0] for i in vanilla])
            positions = dict(zip(vanilla, in_batch))
        records = []
        for i, (request, (result, proof)) in enumerate(zip(job.requests, results)):
            if i in positions:
                records.append(InferenceRecord(result, InferenceMode.VANILLA, request.model_cid, self.signer.address,
                                               signature, batch=positions[i]))
            else:
                records.append(self._record(request, result, proof))
        return tuple(records)

    def _record(self, request: InferenceRequest, result: InferenceResult, proof: bytes) -> InferenceRecord:
        """A record signed alone."""
        mode = request.mode
        if mode is InferenceMode.TEE and self.enclave is not None:
            return InferenceRecord(result, mode, request.model_cid, self.enclave.address,
                                   self.enclave.sign(result), attestation=self._attestation)
        return InferenceRecord(result, mode, request.model_cid, self.signer.address,
                               self.signer.sign(result, proof), proof=proof)
