"""Language model material of the node and command-line tests: the fixture model under another
name, files a node must refuse (each with the words of its error), a tool to force a call of."""

from __future__ import annotations

import onnx

from ogevm.fixtures import fixture_model
from ogevm.llm.types import ToolDefinition
from ogevm.resources import MODELS, resource

#: The one tool of the chats that force a tool call.
WEATHER = ToolDefinition("Get the weather of a city", "get_weather",
                         '{"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}')


def with_metadata(data: bytes, **changes: str) -> bytes:
    """ONNX ``data`` with ``ogevm.llm.*`` metadata entries set (``name="x"``: ``ogevm.llm.name``)."""
    model = onnx.load_from_string(data)
    entries = {entry.key: entry.value for entry in model.metadata_props}
    entries.update({f"ogevm.llm.{key}": value for key, value in changes.items()})
    onnx.helper.set_model_props(model, entries)
    return model.SerializeToString()


def renamed_llm(name: str) -> bytes:
    """The fixture language model called ``name`` (so under another CID)."""
    return with_metadata(resource(MODELS, "llm/tiny_chat.onnx").read_bytes(), name=name)


def bad_llm_files() -> dict[str, tuple[bytes, str]]:
    """``{what is wrong: (file bytes, part of the error)}``."""
    fixture = resource(MODELS, "llm/tiny_chat.onnx").read_bytes()
    mlp = fixture_model("small_mlp").read_bytes()
    return {
        "not ONNX": (b"not an onnx file", "not a valid ONNX model"),
        "ONNX without the metadata": (mlp, "not a byte-window-v1 language model"),
        "a window that is no number": (with_metadata(fixture, window="six"), "not a number"),
        "no output token": (with_metadata(fixture, max_output_tokens="0"), "1 <= max_output_tokens"),
        "more output than context": (with_metadata(fixture, max_output_tokens="4096"), "<= context_length"),
        "the wrong shapes": (with_metadata(mlp, format="byte-window-v1", name="mlp", window="6",
                                           context_length="64", max_output_tokens="8"),
                             "maps [1, window] to [1, 260]"),
    }
