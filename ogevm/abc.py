"""The interfaces between ogevm's stages, each method with its contract.

Implementations: results providers in :mod:`ogevm.precompile.modes`; executor backends in
:mod:`ogevm.pipe.executor` and :mod:`ogevm.pipe.ray_backend`; simulators in
:mod:`ogevm.pipe.simulation`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future
from typing import TYPE_CHECKING, Mapping, Sequence

from ogevm.models.store import ModelInfo
from ogevm.records import InferenceRequest, InferenceResult, RequestId

if TYPE_CHECKING:
    from ogevm.pipe.worker import Job, WorkerIdentity


class ResultsProvider(ABC):
    """Where the precompile gets a model's description and a request's result.

    The precompile is a pure function of (calldata, provider): INLINE runs the model,
    CAPTURE records the request and answers with a simulation output, REPLAY looks up
    a precomputed result.
    """

    @abstractmethod
    def model(self, cid: str) -> ModelInfo:
        """The catalogue entry of ``cid``. Raises :class:`~ogevm.errors.UnknownModel`."""

    @abstractmethod
    def resolve(self, request: InferenceRequest) -> InferenceResult:
        """The result of a checked request; a failed inference is a result with an error.

        Raises only :class:`~ogevm.errors.InferenceError` subclasses.
        """


class ExecutorBackend(ABC):
    """Where the inference executor runs its jobs: inference workers, each an inference
    node with its own keys (threads of this process, or Ray actors on other machines)."""

    @abstractmethod
    def submit(self, jobs: Sequence[Job]) -> list[Future]:
        """Run ``jobs`` on the workers: one future per job, in order, each holding the job's
        :class:`~ogevm.pipe.worker.JobOutcome`.

        A worker never fails for a bad request (it signs error results). A future ends in
        :class:`~ogevm.errors.ExecutorUnavailable` when no worker could run its job.
        """

    @abstractmethod
    def parallelism(self) -> int:
        """How many jobs can run at once (the executor splits batches to keep them busy)."""

    @abstractmethod
    def identities(self) -> list[WorkerIdentity]:
        """Every worker's signing identity: each must be registered before its results count."""

    @abstractmethod
    def close(self) -> None:
        """Release the workers."""


class Simulator(ABC):
    """Where the pool's CAPTURE simulation runs: this process, worker processes, Ray actors."""

    #: Whether it simulates outside this process, leaving the node's core free to build a
    #: block meanwhile (the pipeline then simulates in the background).
    remote: bool = False

    @abstractmethod
    def simulate(self, runs: Sequence[tuple[Sequence, Mapping[RequestId, InferenceResult]]]) -> list[list]:
        """For each run (a sender's transactions in nonce order, the results known for them),
        per transaction: ``(requests it made, None, executed)``, or ``((), reason, executed)``
        when it cannot be applied on the head state (the run's later transactions then depend
        on it); ``executed`` says whether this call ran it (a simulator may keep the run's
        earlier transactions simulated on the same head).

        Simulates on the chain's current head; never fails for a bad transaction.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the workers."""
