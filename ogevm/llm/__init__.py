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

import functools
from importlib import import_module

#: Name of the fixture language model.
DEFAULT_MODEL = "tiny_chat"

#: Public name -> its module; imported on first use, so the ABI layer can use
#: :mod:`ogevm.llm.types` without loading onnxruntime.
_EXPORTS = {
    "llm_gas": "constants", "Generation": "model", "LanguageModel": "model", "WindowModel": "model",
    "LLMRequest": "runtime", "LLMRuntime": "runtime", "ChatCompletion": "types", "ChatMessage": "types",
    "Completion": "types", "ToolCall": "types", "ToolDefinition": "types",
}


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ogevm.llm' has no attribute {name!r}")
    return getattr(import_module(f"ogevm.llm.{_EXPORTS[name]}"), name)


@functools.cache
def fixture_llm(name: str = DEFAULT_MODEL):
    """The fixture language model ``<name>`` (a :class:`WindowModel`) shipped in
    ``fixtures/models/llm/``; loaded once per process (it builds an onnxruntime session)."""
    from ogevm.llm.model import WindowModel
    from ogevm.resources import MODELS, resource

    return WindowModel.load(resource(MODELS, f"llm/{name}.onnx"))


def default_runtime():
    """A new :class:`LLMRuntime` holding the fixture model, by its CID and as ``tiny_chat``:
    what every chain starts with."""
    from ogevm.llm.runtime import LLMRuntime

    return LLMRuntime([fixture_llm()])


__all__ = [*sorted(_EXPORTS), "DEFAULT_MODEL", "default_runtime", "fixture_llm"]
