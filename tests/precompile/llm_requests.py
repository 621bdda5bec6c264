"""Hypothesis strategies for the LLM calls at ``0x…F4``: requests and responses of any content
the ABI can carry (``abi_*``), and requests the fixture model accepts (``runnable_*``)."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from ogevm.abi.llm import LLMChatRequest, LLMChatResponse, LLMCompletionRequest, LLMInferenceMode
from ogevm.llm.types import ChatMessage, ToolCall, ToolDefinition

UINT32 = st.integers(0, 2**32 - 1)
#: Any Unicode text with a UTF-8 form (hypothesis leaves surrogates out).
TEXTS = st.text(max_size=24)
ROLES = ("system", "user", "assistant", "tool")
WEATHER = ToolDefinition(
    "Get the current weather of a city", "get_weather",
    '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}')
TIME = ToolDefinition("Get the local time of a city", "get_time",
                      '{"type": "object", "properties": {"city": {"type": "string"}}}')


def _tuples(elements, max_size: int = 3):
    return st.lists(elements, max_size=max_size).map(tuple)


abi_tool_calls = st.builds(ToolCall, TEXTS, TEXTS, TEXTS)
abi_messages = st.builds(ChatMessage, TEXTS, TEXTS, TEXTS, TEXTS, _tuples(abi_tool_calls, 2))
abi_tools = st.builds(ToolDefinition, TEXTS, TEXTS, TEXTS)
abi_completions = st.builds(LLMCompletionRequest, st.sampled_from(LLMInferenceMode), TEXTS, TEXTS, UINT32,
                            _tuples(TEXTS, 5), UINT32)
abi_chats = st.builds(LLMChatRequest, st.sampled_from(LLMInferenceMode), TEXTS, _tuples(abi_messages),
                      _tuples(abi_tools), TEXTS, UINT32, _tuples(TEXTS, 5), UINT32)
abi_chat_responses = st.builds(LLMChatResponse, TEXTS, abi_messages)

_ARGUMENTS = st.dictionaries(st.text(max_size=6), st.one_of(st.integers(), st.text(max_size=6)), max_size=2)


@st.composite
def runnable_messages(draw) -> ChatMessage:
    """A message the chat template renders: a known role, tool calls on assistant messages only."""
    role = draw(st.sampled_from(ROLES))
    calls = ()
    if role == "assistant":
        calls = tuple(ToolCall(f"call_{i}", draw(st.sampled_from(["get_weather", "get_time"])),
                               json.dumps(draw(_ARGUMENTS))) for i in range(draw(st.integers(0, 2))))
    return ChatMessage(role, draw(st.text(max_size=40)), draw(TEXTS), draw(TEXTS), calls)


def runnable_completions(model: str, max_tokens=st.integers(1, 8)):
    return st.builds(LLMCompletionRequest, st.sampled_from(LLMInferenceMode), st.just(model), st.text(max_size=60),
                     max_tokens, _tuples(st.text(min_size=1, max_size=4), 4), st.integers(0, 100))


@st.composite
def runnable_chats(draw, model: str, max_tokens=st.integers(1, 8)) -> LLMChatRequest:
    tools = draw(st.sampled_from([(), (WEATHER,), (WEATHER, TIME)]))
    choices = ["", "auto", "none"] + (["required", *(tool.name for tool in tools)] if tools else [])
    return LLMChatRequest(draw(st.sampled_from(LLMInferenceMode)), model,
                          tuple(draw(st.lists(runnable_messages(), min_size=1, max_size=3))), tools,
                          draw(st.sampled_from(choices)), draw(max_tokens),
                          draw(_tuples(st.text(min_size=1, max_size=4), 4)), draw(st.integers(0, 100)))
