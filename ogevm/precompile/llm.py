"""LLM calls at ``0x…F4``: ``runLLMCompletion`` and ``runLLMChat``.

The precompile decodes the call and prepares it on the chain's :class:`~ogevm.llm.LLMRuntime`
(every check, the rendered prompt and the gas) before any model runs; the results provider
answers it like any request. The seed of a sampled reply is derived from the request's id, so
INLINE, PIPE and every replay of the transaction decode the same reply.

A reply travels in records as a ``ModelOutput`` of string tensors, so records, signatures,
bundles and validators are the same for LLM and ONNX results:

* completion: ``answer = [text]``;
* chat: ``finish_reason = [reason]``, ``message = [role, content, name, tool_call_id]`` and
  ``tool_calls = [id, name, arguments, ...]`` (three strings per call).

Any other output in a record answering an LLM call is not a reply: the call reverts.
"""

from __future__ import annotations

import functools

from eth_hash.auto import keccak

from ogevm.abi.llm import (
    RUN_LLM_CHAT_SELECTOR,
    RUN_LLM_COMPLETION_SELECTOR,
    LLMChatRequest,
    LLMChatResponse,
    LLMCompletionRequest,
    decode_llm_chat,
    decode_llm_completion,
    encode_chat_response,
    encode_completion_response,
)
from ogevm.abi.types import ModelOutput, StringTensor
from ogevm.errors import InvalidOutput
from ogevm.llm.types import ChatMessage, ToolCall
from ogevm.records import InferenceRequest, RequestId

#: Selector -> decoder of the LLM functions the precompile serves.
LLM_DECODERS = {RUN_LLM_COMPLETION_SELECTOR: decode_llm_completion, RUN_LLM_CHAT_SELECTOR: decode_llm_chat}

LLMCall = LLMCompletionRequest | LLMChatRequest


@functools.cache
def default_llms():
    """The language models a provider knows when its catalogue names none: the fixture model
    (one runtime per process)."""
    from ogevm.llm import default_runtime

    return default_runtime()


def llm_seed(request_id: RequestId) -> int:
    """The sampling seed of a request: ``keccak256(tx_hash || uint256(index))`` as an integer."""
    return int.from_bytes(keccak(request_id.tx_hash + request_id.index.to_bytes(32, "big")), "big")


def prepare(llms, call: LLMCall, request_id: RequestId):
    """The checked, priced :class:`~ogevm.llm.LLMRequest` of a call. Raises
    :class:`~ogevm.errors.UnknownModel` or :class:`~ogevm.errors.InvalidInput`."""
    seed = llm_seed(request_id)
    if isinstance(call, LLMCompletionRequest):
        return llms.prepare_completion(call.model_cid, call.prompt, call.max_tokens, call.stop_sequence,
                                       call.temperature, seed)
    return llms.prepare_chat(call.model_cid, call.messages, call.max_tokens, call.tools, call.tool_choice,
                             call.stop_sequence, call.temperature, seed)


def run_llm(llms, request: InferenceRequest) -> ModelOutput:
    """Generate the reply of an LLM request, as the ``ModelOutput`` a record carries.
    Raises :class:`~ogevm.errors.InferenceError`."""
    prepared = prepare(llms, request.call, request.id)
    if isinstance(request.call, LLMCompletionRequest):
        return completion_output(llms.run_completion(prepared).text)
    reply = llms.run_chat(prepared)
    return chat_output(LLMChatResponse(reply.finish_reason, reply.message))


def completion_output(answer: str) -> ModelOutput:
    return ModelOutput((), (StringTensor("answer", (answer,)),), (), False)


def chat_output(response: LLMChatResponse) -> ModelOutput:
    m = response.message
    calls = tuple(text for call in m.tool_calls for text in (call.id, call.name, call.arguments))
    return ModelOutput((), (StringTensor("finish_reason", (response.finish_reason,)),
                            StringTensor("message", (m.role, m.content, m.name, m.tool_call_id)),
                            StringTensor("tool_calls", calls)), (), False)


def response_data(call: LLMCall, output: ModelOutput) -> bytes:
    """The return data of an LLM call answered with ``output``: its response, empty for a
    simulation output. Raises :class:`~ogevm.errors.InvalidOutput` if ``output`` is no reply."""
    completion = isinstance(call, LLMCompletionRequest)
    if output.is_simulation_result:
        return encode_completion_response("") if completion else encode_chat_response(
            LLMChatResponse("", ChatMessage("")))
    strings = {tensor.name: tensor.values for tensor in output.strings}
    names = [tensor.name for tensor in output.strings]
    if output.numbers or output.jsons:
        raise InvalidOutput("the result of an LLM call is not a reply")
    if completion:
        if names != ["answer"] or len(strings["answer"]) != 1:
            raise InvalidOutput("the result of an LLM call is not a reply")
        return encode_completion_response(strings["answer"][0])
    if (names != ["finish_reason", "message", "tool_calls"] or len(strings["finish_reason"]) != 1
            or len(strings["message"]) != 4 or len(strings["tool_calls"]) % 3):
        raise InvalidOutput("the result of an LLM call is not a reply")
    flat = strings["tool_calls"]
    calls = tuple(ToolCall(*flat[i:i + 3]) for i in range(0, len(flat), 3))
    return encode_chat_response(LLMChatResponse(strings["finish_reason"][0],
                                                ChatMessage(*strings["message"], tool_calls=calls)))
