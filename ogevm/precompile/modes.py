"""The three execution modes of the precompile, as results providers.

* INLINE runs the model now: ``eth_call``, local tests, the naive baseline.
* CAPTURE (simulation) records each request it has no result for and answers with an
  empty output flagged ``is_simulation_result``; results it already knows (earlier
  rounds) are answered as they will be in the block, so dependent calls show up.
* REPLAY answers from precomputed results only. A missing result, or one computed for
  other calldata, is a *divergence*: the call reverts and the divergence is recorded
  for the builder (roll the transaction back) or the validator (reject the block).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Mapping

from ogevm.abc import ResultsProvider
from ogevm.abi.types import SIMULATION_OUTPUT, InferenceMode
from ogevm.errors import InferenceError, ResultUnavailable, UnknownModel
from ogevm.models.runtime import ModelRuntime
from ogevm.models.store import ModelInfo, ModelStore
from ogevm.precompile.llm import default_llms, run_llm
from ogevm.precompile.mocks import InferenceMocks
from ogevm.records import InferenceRequest, InferenceResult, RequestId

Catalogue = Mapping[str, ModelInfo]


class CatalogueProvider(ResultsProvider):
    """Answers ``model`` from a catalogue of ``ModelInfo`` by CID; LLM calls are prepared on
    ``llms`` (an :class:`~ogevm.llm.LLMRuntime`): by default the catalogue's (a
    :class:`ModelStore`'s), else the fixture model's."""

    def __init__(self, catalogue: Catalogue, llms=None) -> None:
        self.catalogue = catalogue
        self.llms = llms or getattr(catalogue, "llms", None) or default_llms()

    def model(self, cid: str) -> ModelInfo:
        info = self.catalogue.get(cid)
        if info is None:
            raise UnknownModel(cid)
        return info


class InlineProvider(CatalogueProvider):
    """INLINE: run the model inside the call.

    A ZKML request returns what its proof would prove: the circuit's quantized output,
    from ``circuits`` (``ogevm.verify.zkml.CircuitStore``); no proof is made inline.
    A request that ``mocks`` (:mod:`ogevm.precompile.mocks`) covers gets its mocked result.
    """

    def __init__(self, store: ModelStore, runtime: ModelRuntime | None = None, circuits=None,
                 mocks: InferenceMocks | None = None, llms=None) -> None:
        super().__init__(store, llms)
        self.runtime = runtime or ModelRuntime(store)
        self.circuits = circuits
        self.mocks = mocks

    def resolve(self, request: InferenceRequest) -> InferenceResult:
        mocked = self.mocks.resolve(request) if self.mocks else None
        if mocked is not None:
            return mocked
        try:
            if request.is_llm:
                return InferenceResult(request.id, request.digest, output=run_llm(self.llms, request))
            info = self.model(request.model_cid)
            if request.mode is InferenceMode.ZKML:
                output = self._zkml_output(info, request)
            else:
                output = self.runtime.run(info, request.feeds)
        except InferenceError as exc:
            return InferenceResult(request.id, request.digest, error=exc.reason)
        return InferenceResult(request.id, request.digest, output=output)

    def _zkml_output(self, info: ModelInfo, request: InferenceRequest):
        from ogevm.verify.zkml import request_failures, zk_output

        if self.circuits is None:
            raise ResultUnavailable("this node has no ZKML circuits: ZKML results cannot be computed here")
        with request_failures(request.model_cid):
            return zk_output(info, self.circuits.witness(request.model_cid, request.feeds))


class CaptureProvider(CatalogueProvider):
    """CAPTURE: record requests; answer known ones, simulate the rest.

    ``requests[tx_hash]`` lists every request a transaction made, in order;
    :meth:`missing` those that had no matching known result.
    """

    def __init__(self, catalogue: Catalogue, known: Mapping[RequestId, InferenceResult] = {}, llms=None) -> None:
        super().__init__(catalogue, llms)
        self.known = known
        self.requests: dict[bytes, list[InferenceRequest]] = defaultdict(list)

    def resolve(self, request: InferenceRequest) -> InferenceResult:
        self.requests[request.id.tx_hash].append(request)
        result = self.known.get(request.id)
        if result is not None and result.digest == request.digest:
            return result
        return InferenceResult(request.id, request.digest, output=SIMULATION_OUTPUT)

    def missing(self, tx_hash: bytes) -> list[InferenceRequest]:
        """Requests of ``tx_hash`` that no known result answers."""
        return [
            r for r in self.requests.get(tx_hash, ())
            if (known := self.known.get(r.id)) is None or known.digest != r.digest
        ]


class ReplayProvider(CatalogueProvider):
    """REPLAY: answer from precomputed results; record divergences.

    ``used[tx_hash]`` lists the requests a transaction had answered, in order;
    ``divergences[tx_hash]`` the reason its replay diverged, if it did, and
    ``divergent[tx_hash]`` the request it diverged on (what a builder runs next for it).
    """

    def __init__(self, catalogue: Catalogue, results: Mapping[RequestId, InferenceResult], llms=None) -> None:
        super().__init__(catalogue, llms)
        self.results = results
        self.used: dict[bytes, list[InferenceRequest]] = defaultdict(list)
        self.divergences: dict[bytes, str] = {}
        self.divergent: dict[bytes, InferenceRequest] = {}

    def resolve(self, request: InferenceRequest) -> InferenceResult:
        result = self.results.get(request.id)
        if result is None:
            reason = f"divergence: no precomputed result for request {request.id}"
        elif result.digest != request.digest:
            reason = f"divergence: the result for request {request.id} was computed for other calldata"
        else:
            self.used[request.id.tx_hash].append(request)
            return result
        if request.id.tx_hash not in self.divergences:
            self.divergences[request.id.tx_hash] = reason
            self.divergent[request.id.tx_hash] = request
        raise ResultUnavailable(reason)
