"""LLM completion and chat: the runtime the 0xF4 LLM functions call.

Layers, each one module::

    tokenizer   bytes 0..255 + <|endoftext|> <|im_start|> <|im_end|> <|pad|> (fixture model)
    template    messages + tools -> prompt pieces (text and markers)
    toolcalls   tool definitions, tool_choice, the <tool_call>{...}</tool_call> syntax
    sampling    greedy / seeded sampling, defined bit for bit
    model       LanguageModel (a backend) and WindowModel (ONNX next-token graphs)
    runtime     LLMRuntime: check + price (prepare_*) then decode (run_*)
    constants   llm_gas and the limits

The default model, ``tiny_chat``, is a byte-level n-gram model that
``fixtures/generate_llm.py`` counts from a small corpus into an ONNX graph. Errors are
:class:`~ogevm.errors.UnknownModel` and :class:`~ogevm.errors.InvalidInput` for requests,
:class:`~ogevm.errors.ModelExecutionError` when a backend fails.
"""

from __future__ import annotations

from ogevm.llm.constants import llm_gas
from ogevm.llm.model import Generation, LanguageModel, WindowModel
from ogevm.llm.runtime import LLMRequest, LLMRuntime
from ogevm.llm.types import ChatCompletion, ChatMessage, Completion, ToolCall, ToolDefinition
from ogevm.resources import MODELS, resource

#: Name of the fixture language model.
DEFAULT_MODEL = "tiny_chat"


def fixture_llm(name: str = DEFAULT_MODEL) -> WindowModel:
    """The fixture language model ``<name>`` shipped in ``fixtures/models/llm/``."""
    return WindowModel.load(resource(MODELS, f"llm/{name}.onnx"))


def default_runtime() -> LLMRuntime:
    """A runtime that knows the fixture model, by its CID and as ``tiny_chat``."""
    return LLMRuntime([fixture_llm()])


__all__ = [
    "ChatCompletion", "ChatMessage", "Completion", "DEFAULT_MODEL", "Generation", "LLMRequest",
    "LLMRuntime", "LanguageModel", "ToolCall", "ToolDefinition", "WindowModel", "default_runtime",
    "fixture_llm", "llm_gas",
]
