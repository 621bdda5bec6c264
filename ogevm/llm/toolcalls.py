"""Tools: checking their definitions, the tool-call syntax, and parsing calls out of text.

The model calls a tool by writing ``<tool_call>{"name": NAME, "arguments": {...}}</tool_call>``
(the JSON as Python's ``json.dumps`` writes it); a reply may hold several such blocks.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import numpy as np

from ogevm.errors import InvalidInput
from ogevm.llm.constants import MAX_JSON_BYTES, MAX_JSON_DEPTH, MAX_TOOLS
from ogevm.llm.types import ToolDefinition

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
#: Tool names as common chat APIs allow them.
TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: ``tool_choice`` values that name no tool.
AUTO, NONE, REQUIRED = "auto", "none", "required"
_BLOCK = re.compile(re.escape(CALL_OPEN) + "(.*?)" + re.escape(CALL_CLOSE), re.DOTALL)


@dataclass(frozen=True)
class Tool:
    """A checked tool definition; ``parameters`` parsed (an object)."""

    name: str
    description: str
    parameters: dict


def load_json(text: str) -> object:
    """Parse ``text`` as JSON within the size and nesting limits; raises ``ValueError``.

    The nesting is bounded before parsing: a deep text must not reach the parser.
    """
    if len(text.encode("utf-8")) > MAX_JSON_BYTES:
        raise ValueError(f"is longer than {MAX_JSON_BYTES} bytes")
    if _depth(text) > MAX_JSON_DEPTH:
        raise ValueError(f"is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(text, parse_constant=_not_json, parse_float=_finite)
    except ValueError:  # the parser's own message is not part of a reason: it differs between parsers
        raise ValueError("is not valid JSON") from None


def _not_json(constant: str):
    """``NaN``, ``Infinity`` and ``-Infinity``, which Python's parser accepts, are not JSON."""
    raise ValueError(constant)


def _finite(literal: str) -> float:
    """A number literal as a float; one too large for a float (``1e400``) is refused, since it
    would be written back as ``Infinity``, which is not JSON."""
    value = float(literal)
    if math.isinf(value):
        raise ValueError(literal)
    return value


def _has_utf8_form(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


#: JSON's names of the types a parsed value can have.
_JSON_TYPES = {dict: "object", list: "array", str: "string", int: "number", float: "number", bool: "boolean",
               type(None): "null"}


#: A JSON string literal (an unclosed one runs to the end of the text).
_STRING = re.compile(r'"(?:[^"\\]+|\\.)*"?', re.DOTALL)
#: Each byte as a step of the bracket depth (``[``, ``{``: +1; ``]``, ``}``: -1 as int8).
_DEPTH_STEPS = bytes(1 if b in b"[{" else 255 if b in b"]}" else 0 for b in range(256))


def _depth(text: str) -> int:
    """Deepest bracket nesting of ``text``, brackets inside JSON strings not counted.

    Computed outside the interpreter loop (a regular expression drops the strings, numpy
    sums the steps): the scan runs on every byte of every JSON text a call carries, before
    the call's size is known, so it must cost about what the calldata's gas pays for.
    """
    steps = np.frombuffer(_STRING.sub("", text).encode("utf-8").translate(_DEPTH_STEPS), dtype=np.int8)
    return int(np.cumsum(steps, dtype=np.int64).max(initial=0))


def check_tools(tools: tuple[ToolDefinition, ...]) -> tuple[Tool, ...]:
    """The definitions, checked and parsed. Raises :class:`InvalidInput` with the reason.

    A name must match ``[A-Za-z0-9_-]{1,64}`` and be unique; ``parameters`` must be a JSON
    object (an empty text stands for ``{}``).
    """
    if len(tools) > MAX_TOOLS:
        raise InvalidInput(f"{len(tools)} tools; at most {MAX_TOOLS} are allowed")
    checked: list[Tool] = []
    for index, tool in enumerate(tools):
        if not TOOL_NAME.fullmatch(tool.name):
            raise InvalidInput(f"tool {index}: name {tool.name!r} is not 1-64 letters, digits, _ or -")
        if any(seen.name == tool.name for seen in checked):
            raise InvalidInput(f"tool {index}: name {tool.name!r} is used twice")
        parameters = arguments_object(tool.parameters or "{}", f"tool {tool.name!r}: parameters")
        checked.append(Tool(tool.name, tool.description, parameters))
    return tuple(checked)


def arguments_object(text: str, what: str) -> dict:
    """``text`` parsed as a JSON object; raises :class:`InvalidInput` naming ``what``."""
    try:
        value = load_json(text)
    except ValueError as exc:
        raise InvalidInput(f"{what} {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object, not {_JSON_TYPES[type(value)]}")
    return value


def check_tool_choice(tool_choice: str, tools: tuple[Tool, ...]) -> tuple[Tool, ...]:
    """The tools a reply is forced to call one of; ``()`` when nothing is forced.

    ``""`` and ``"auto"`` let the model decide, ``"none"`` hides the tools, ``"required"``
    forces a call of one of them, any other value must name a tool and forces a call of
    it. Raises :class:`InvalidInput` when it names no tool.
    """
    if tool_choice in ("", AUTO, NONE):
        return ()
    if tool_choice == REQUIRED:
        if not tools:
            raise InvalidInput("tool_choice 'required' but no tools are given")
        return tools
    named = tuple(tool for tool in tools if tool.name == tool_choice)
    if not named:
        raise InvalidInput(f"tool_choice {tool_choice!r} names no tool")
    return named


def call_text(name: str, arguments: object) -> str:
    """The tool-call syntax for one call."""
    return CALL_OPEN + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + CALL_CLOSE


def forced_start(tool: Tool) -> str:
    """What a forced call of ``tool`` begins with: :func:`call_text` up to the value of the
    first argument (the first ``required`` property, else the first property), or the
    whole call with ``{}`` arguments when the schema names no property."""
    start = CALL_OPEN + '{"name": ' + json.dumps(tool.name, ensure_ascii=False) + ', "arguments": '
    properties = tool.parameters.get("properties")
    names = list(properties) if isinstance(properties, dict) else []
    if not names:
        return start + "{}}" + CALL_CLOSE
    required = tool.parameters.get("required")
    first = next((name for name in required if name in names), names[0]) \
        if isinstance(required, list) else names[0]
    return start + "{" + json.dumps(first, ensure_ascii=False) + ": "


def parse_calls(text: str, names: frozenset[str]) -> tuple[str, list[tuple[str, str]]] | None:
    """Split a reply into its content and its tool calls ``(name, arguments)``.

    ``None`` when the reply holds no well-formed call, or any malformed one: an unclosed
    block, JSON that is not ``{"name": str, "arguments": object}``, a name not in
    ``names``. The arguments come back as compact JSON; the content is the text outside
    the blocks, stripped.
    """
    if CALL_OPEN not in text:
        return None
    calls = []
    for body in _BLOCK.findall(text):
        try:
            value = load_json(body)
        except (ValueError, RecursionError):
            return None
        if not (isinstance(value, dict) and set(value) == {"name", "arguments"}
                and isinstance(value["name"], str) and value["name"] in names
                and isinstance(value["arguments"], dict)):
            return None
        arguments = json.dumps(value["arguments"], ensure_ascii=False, separators=(",", ":"))
        if not _has_utf8_form(arguments):  # a lone surrogate escape ("\ud800") names no character
            return None
        calls.append((value["name"], arguments))
    content = _BLOCK.sub("", text)
    if not calls or CALL_OPEN in content or CALL_CLOSE in content:
        return None
    return content.strip(), calls
