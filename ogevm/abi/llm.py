"""ABI of the LLM functions of the inference precompile: ``runLLMCompletion`` and ``runLLMChat``.

The structs are the public OGInference ones, field for field (``ChatMessage``, ``ToolCall`` and
``ToolDefinition`` are the runtime's own records, :mod:`ogevm.llm.types`, whose fields are in ABI
order). Calldata is read by the same canonical-layout reader as ``runModelInference``
(:class:`~ogevm.abi.layout.Reader`): one encoding per value, each byte read once, whatever
offsets an attacker writes.
"""

from __future__ import annotations

from enum import IntEnum
from typing import NamedTuple

from eth_utils import keccak

from ogevm.abi import layout
from ogevm.abi.layout import Reader, dynamic_array, dynamic_tuple, encode_string, encode_uint
from ogevm.errors import MalformedRequest
from ogevm.llm.types import ChatMessage, ToolCall, ToolDefinition


class LLMInferenceMode(IntEnum):
    """``LLMInferenceMode``: how an LLM result is verified (there is no ZK mode for LLMs)."""

    VANILLA = 0
    TEE = 1


class LLMCompletionRequest(NamedTuple):
    """``LLMCompletionRequest``: complete ``prompt``; ``temperature`` in hundredths (0..100)."""

    mode: LLMInferenceMode
    model_cid: str
    prompt: str
    max_tokens: int
    stop_sequence: tuple[str, ...]
    temperature: int


class LLMChatRequest(NamedTuple):
    """``LLMChatRequest``: the next assistant message of ``messages``, maybe a tool call."""

    mode: LLMInferenceMode
    model_cid: str
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolDefinition, ...]
    tool_choice: str
    max_tokens: int
    stop_sequence: tuple[str, ...]
    temperature: int


class LLMChatResponse(NamedTuple):
    """``LLMChatResponse``: why the reply ended (stop, length, tool_calls) and the message."""

    finish_reason: str
    message: ChatMessage


TOOL_CALL = "(string,string,string)"
CHAT_MESSAGE = f"(string,string,string,string,{TOOL_CALL}[])"
TOOL_DEFINITION = "(string,string,string)"
LLM_COMPLETION_REQUEST = "(uint8,string,string,uint32,string[],uint32)"
LLM_CHAT_REQUEST = f"(uint8,string,{CHAT_MESSAGE}[],{TOOL_DEFINITION}[],string,uint32,string[],uint32)"
LLM_COMPLETION_RESPONSE = "(string)"
LLM_CHAT_RESPONSE = f"(string,{CHAT_MESSAGE})"

RUN_LLM_COMPLETION_SELECTOR = keccak(text=f"runLLMCompletion({LLM_COMPLETION_REQUEST})")[:4]
RUN_LLM_CHAT_SELECTOR = keccak(text=f"runLLMChat({LLM_CHAT_REQUEST})")[:4]


# --- encoding --------------------------------------------------------------------------
def _strings(values) -> bytes:
    return dynamic_array([encode_string(v) for v in values])


def _tool_call(call: ToolCall) -> bytes:
    return dynamic_tuple([None] * 3, [encode_string(call.id), encode_string(call.name), encode_string(call.arguments)])


def _message(m: ChatMessage) -> bytes:
    return dynamic_tuple([None] * 5, [encode_string(m.role), encode_string(m.content), encode_string(m.name),
                                      encode_string(m.tool_call_id), dynamic_array([_tool_call(c) for c in m.tool_calls])])


def _tool(t: ToolDefinition) -> bytes:
    return dynamic_tuple([None] * 3, [encode_string(t.description), encode_string(t.name),
                                      encode_string(t.parameters)])


def encode_llm_completion(request: LLMCompletionRequest) -> bytes:
    """Calldata of ``runLLMCompletion(request)``."""
    body = dynamic_tuple(
        [encode_uint(int(request.mode)), None, None, encode_uint(request.max_tokens), None,
         encode_uint(request.temperature)],
        [encode_string(request.model_cid), encode_string(request.prompt), _strings(request.stop_sequence)])
    return RUN_LLM_COMPLETION_SELECTOR + encode_uint(layout.WORD) + body


def encode_llm_chat(request: LLMChatRequest) -> bytes:
    """Calldata of ``runLLMChat(request)``."""
    body = dynamic_tuple(
        [encode_uint(int(request.mode)), None, None, None, None, encode_uint(request.max_tokens), None,
         encode_uint(request.temperature)],
        [encode_string(request.model_cid), dynamic_array([_message(m) for m in request.messages]),
         dynamic_array([_tool(t) for t in request.tools]), encode_string(request.tool_choice),
         _strings(request.stop_sequence)])
    return RUN_LLM_CHAT_SELECTOR + encode_uint(layout.WORD) + body


def encode_completion_response(answer: str) -> bytes:
    """``abi.encode(LLMCompletionResponse(answer))``: the return data of ``runLLMCompletion``."""
    return encode_uint(layout.WORD) + dynamic_tuple([None], [encode_string(answer)])


def encode_chat_response(response: LLMChatResponse) -> bytes:
    """``abi.encode(response)``: the return data of ``runLLMChat``."""
    return encode_uint(layout.WORD) + dynamic_tuple(
        [None, None], [encode_string(response.finish_reason), _message(response.message)])


# --- decoding --------------------------------------------------------------------------
class _LLMReader(Reader):
    def tool_call(self, pos: int) -> tuple[ToolCall, int]:
        fields, end = self.fields(pos, (self.string,) * 3)
        return ToolCall(*fields), end

    def message(self, pos: int) -> tuple[ChatMessage, int]:
        (role, content, name, call_id, calls), end = self.fields(
            pos, (self.string, self.string, self.string, self.string, lambda at: self.array(at, self.tool_call)))
        return ChatMessage(role, content, name, call_id, calls), end

    def tool(self, pos: int) -> tuple[ToolDefinition, int]:
        fields, end = self.fields(pos, (self.string,) * 3)
        return ToolDefinition(*fields), end

    def completion(self, pos: int) -> tuple[list, int]:
        return self.fields(pos, (8, self.string, self.string, 32, self.strings, 32))

    def chat(self, pos: int) -> tuple[list, int]:
        return self.fields(pos, (8, self.string, lambda at: self.array(at, self.message),
                                 lambda at: self.array(at, self.tool), self.string, 32, self.strings, 32))

    def chat_response(self, pos: int) -> tuple[LLMChatResponse, int]:
        (reason, message), end = self.fields(pos, (self.string, self.message))
        return LLMChatResponse(reason, message), end


def _decode(calldata: bytes, read, name: str) -> list:
    try:
        reader = _LLMReader(bytes(calldata[4:]))
        fields = reader.top(getattr(reader, read))
    except layout.LayoutError as exc:
        raise MalformedRequest(f"malformed {name} calldata") from exc
    try:
        fields[0] = LLMInferenceMode(fields[0])
    except ValueError as exc:
        raise MalformedRequest(f"unknown LLM inference mode {fields[0]}") from exc
    return fields


def decode_llm_completion(calldata: bytes) -> LLMCompletionRequest:
    """Decode calldata of ``runLLMCompletion`` (selector included; canonical layout only).
    Raises :class:`MalformedRequest`."""
    return LLMCompletionRequest(*_decode(calldata, "completion", "runLLMCompletion"))


def decode_llm_chat(calldata: bytes) -> LLMChatRequest:
    """Decode calldata of ``runLLMChat`` (selector included; canonical layout only).
    Raises :class:`MalformedRequest`."""
    return LLMChatRequest(*_decode(calldata, "chat", "runLLMChat"))


def decode_completion_response(data: bytes) -> str:
    """The answer in return data of ``runLLMCompletion``. Raises ``LayoutError``."""
    reader = _LLMReader(bytes(data))
    return reader.top(lambda at: reader.fields(at, (reader.string,)))[0]


def decode_chat_response(data: bytes) -> LLMChatResponse:
    """Inverse of :func:`encode_chat_response`. Raises ``LayoutError``."""
    reader = _LLMReader(bytes(data))
    return reader.top(reader.chat_response)
