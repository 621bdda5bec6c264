"""The interfaces between ogevm's stages, each method with its contract.

Implementations: results providers in :mod:`ogevm.precompile.modes`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from concurrent.futures import Future

from ogevm.models.store import ModelInfo
from ogevm.records import InferenceRequest, InferenceResult


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
    """Where the inference executor runs its jobs (a thread pool here; Ray can implement it)."""

    @abstractmethod
    def submit(self, fn, item) -> Future:
        """Run ``fn(item)`` on a worker; the future holds its result.

        ``fn`` never raises for a bad request (it returns error results); anything it
        raises is a bug and is set on the future.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the workers."""
