"""``og_mockInference`` / ``og_clearMocks``: mocked model results for tests
(:mod:`ogevm.precompile.mocks`). A mock applies to ``eth_call`` and to the requests PIPE
executes after it is set, until it is cleared."""

from __future__ import annotations

from typing import Any

from ogevm.node import params
from ogevm.node.params import Param, ParamError, takes
from ogevm.node.rpc.base import Namespace
from ogevm.precompile.mocks import InvalidMock, parse_output


def mock_outcome(value: Any, name: str) -> tuple:
    """``(output, error)`` of a mock: a ``ModelOutput`` in its ``og_getInferenceRecords`` JSON
    shape, or ``{"error": reason}`` for a failing model."""
    try:
        if isinstance(value, dict) and set(value) == {"error"}:
            return None, params.string(value["error"], f"{name}.error")
        return parse_output(value), None
    except InvalidMock as exc:
        raise ParamError(name, exc.reason) from exc


class MockMethods(Namespace):
    @takes(Param("modelCid", params.string), Param("output", mock_outcome),
           Param("inputDigest", params.hash32, None))
    def rpc_og_mockInference(self, cid, outcome, digest):
        output, error = outcome
        try:
            if cid not in self.chain.models and not self.chain.models.llms.knows(cid):
                raise ParamError("modelCid", "unknown model: add it first (og_addModel, or og_addLanguageModel "
                                             "for a language model)")
            self.chain.mock_inference(cid, output, error, digest)
        except InvalidMock as exc:
            raise ParamError("output", exc.reason) from exc
        return True

    @takes(Param("modelCid", params.string, None))
    def rpc_og_clearMocks(self, cid):
        return self.chain.clear_mocks(cid)
