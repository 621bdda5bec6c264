"""The chat template: how messages and tools become the prompt the model continues.

Each message is ``<|im_start|>ROLE\\nBODY<|im_end|>\\n`` (the two markers are special
tokens, everything else is text); the prompt ends with ``<|im_start|>assistant\\n``. The
tools, unless ``tool_choice`` is ``"none"``, are described at the end of the first system
message (one is inserted first when the chat has none)::

    # Tools
    To call a tool, answer <tool_call>{"name": NAME, "arguments": ARGUMENTS}</tool_call>.
    {"name": "...", "description": "...", "parameters": {...}}      (one line per tool)

An assistant message's tool calls follow its content, one ``<tool_call>`` block a line.
``name`` and ``tool_call_id`` of a message are not rendered.
"""

from __future__ import annotations

import enum
import json
from typing import Union

from ogevm.errors import InvalidInput
from ogevm.llm.constants import MAX_CHAT_MESSAGES
from ogevm.llm.toolcalls import CALL_CLOSE, CALL_OPEN, Tool, arguments_object, call_text
from ogevm.llm.types import ChatMessage

ROLES = ("system", "user", "assistant", "tool")
TOOLS_HEADER = ("# Tools\nTo call a tool, answer " + CALL_OPEN
                + '{"name": NAME, "arguments": ARGUMENTS}' + CALL_CLOSE + ".\n")


class Special(enum.Enum):
    """The template's markers; each backend maps them to a token of its own."""

    MESSAGE_START = "<|im_start|>"
    MESSAGE_END = "<|im_end|>"


Piece = Union[str, Special]


def render_chat(messages: tuple[ChatMessage, ...], tools: tuple[Tool, ...]) -> list[Piece]:
    """The prompt of a chat as text and markers. Raises :class:`InvalidInput`.

    ``tools`` are the tools to describe (none when ``tool_choice`` is ``"none"``).
    Refused: no messages, too many, an unknown role, tool calls on a message that is not
    the assistant's, call arguments that are not a JSON object.
    """
    if not messages:
        raise InvalidInput("a chat needs at least one message")
    if len(messages) > MAX_CHAT_MESSAGES:
        raise InvalidInput(f"{len(messages)} messages; at most {MAX_CHAT_MESSAGES} are allowed")
    bodies = [(message.role, _body(index, message)) for index, message in enumerate(messages)]
    if tools:
        block = TOOLS_HEADER + "\n".join(_tool_line(tool) for tool in tools)
        if bodies[0][0] == "system":
            bodies[0] = ("system", bodies[0][1] + "\n\n" + block if bodies[0][1] else block)
        else:
            bodies.insert(0, ("system", block))
    pieces: list[Piece] = []
    for role, body in bodies:
        pieces += [Special.MESSAGE_START, f"{role}\n{body}", Special.MESSAGE_END, "\n"]
    return pieces + [Special.MESSAGE_START, "assistant\n"]


def _body(index: int, message: ChatMessage) -> str:
    if message.role not in ROLES:
        raise InvalidInput(f"message {index}: role {message.role!r} is not one of {', '.join(ROLES)}")
    if message.tool_calls and message.role != "assistant":
        raise InvalidInput(f"message {index}: only assistant messages carry tool calls")
    calls = [call_text(call.name, arguments_object(
        call.arguments, f"message {index}: arguments of tool call {call.id!r}"))
        for call in message.tool_calls]
    return "\n".join(([message.content] if message.content else []) + calls)


def _tool_line(tool: Tool) -> str:
    return json.dumps({"name": tool.name, "description": tool.description,
                       "parameters": tool.parameters}, ensure_ascii=False)
