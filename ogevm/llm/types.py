"""The records the LLM runtime takes and returns; fields in the order of the public ABI."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ToolCall:
    """A call the model asks for: ``arguments`` is a JSON object, as text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatMessage:
    """One message of a chat; ``role`` is system, user, assistant or tool."""

    role: str
    content: str = ""
    name: str = ""
    tool_call_id: str = ""
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class ToolDefinition:
    """A tool the model may call; ``parameters`` is a JSON Schema object, as text."""

    description: str = ""
    name: str = ""
    parameters: str = ""


@dataclass(frozen=True)
class Completion:
    """What ``complete`` returns; ``tokens_out`` counts every generated token."""

    text: str
    finish_reason: str
    tokens_in: int
    tokens_out: int


@dataclass(frozen=True)
class ChatCompletion:
    """What ``chat`` returns: the assistant's message and why generation ended."""

    finish_reason: str
    message: ChatMessage
    tokens_in: int
    tokens_out: int
