"""A backend for local models in the onnxruntime-genai format.

Such a model is a folder with ``genai_config.json``, the ONNX decoder it names and a
Hugging Face ``tokenizer.json``, as onnxruntime-genai's model builder writes them (Phi,
Llama, Qwen, ...). onnxruntime-genai keeps the key/value cache; the runtime reads the
logits of each step and appends the token it chose itself, so decoding, seeds and stop
sequences are the runtime's, the same as for the fixture model.

Chat needs the template's markers ``<|im_start|>`` and ``<|im_end|>`` in the model's
vocabulary (ChatML models such as Qwen have them); completion works with any model.
A token's text is its own decoding: a character split over two tokens comes out as
U+FFFD. The model's tokenizer decides whether text that spells a special token becomes
that token (Hugging Face tokenizers do so); the fixture's byte tokenizer never does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from ogevm.constants import GAS_MODEL_BASE, MODEL_OPS_PER_GAS
from ogevm.errors import InvalidInput, InvalidModel, ModelExecutionError
from ogevm.llm.model import Generation, LanguageModel
from ogevm.llm.template import Special
from ogevm.models.cid import compute_cid

#: Files whose size prices a token: the graphs and their external weights.
WEIGHT_SUFFIXES = (".onnx", ".data", ".onnx_data")


def folder_cid(folder: Path) -> str:
    """CID of a model folder: the CIDv1 of its manifest, one ``PATH\\0SHA256\\n`` line per
    file (path relative to the folder, POSIX form), sorted by path."""
    lines = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        lines.append(f"{path.relative_to(folder).as_posix()}\0{digest}\n")
    return compute_cid("".join(lines).encode("utf-8"))


def weight_gas(folder: Path) -> int:
    """Default gas per token: ``GAS_MODEL_BASE + ceil(2 * weight bytes / MODEL_OPS_PER_GAS)``,
    two operations per byte of weights (one multiply-add per 8-bit weight)."""
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))
    return GAS_MODEL_BASE + -(-2 * size // MODEL_OPS_PER_GAS)


class GenaiModel(LanguageModel):
    """An onnxruntime-genai model folder behind the runtime's interface.

    ``max_output_tokens`` caps one reply (and the context does too); ``cost_per_token``
    defaults to :func:`weight_gas`. Raises :class:`InvalidModel` when the folder is not a
    model onnxruntime-genai loads, or when onnxruntime-genai is not installed.
    """

    def __init__(self, folder: Path | str, name: str | None = None, max_output_tokens: int = 512,
                 cost_per_token: int | None = None) -> None:
        try:
            import onnxruntime_genai as og
        except ImportError as exc:
            raise InvalidModel("onnxruntime-genai is not installed: pip install onnxruntime-genai") from exc
        self._og = og
        folder = Path(folder)
        try:
            config = json.loads((folder / "genai_config.json").read_text(encoding="utf-8"))
            self.context_length = int(config["model"]["context_length"])
            self._model = og.Model(str(folder))
            self._tokenizer = og.Tokenizer(self._model)
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise InvalidModel(f"{folder} is not an onnxruntime-genai model: {exc}") from exc
        self.name = name or folder.name
        self.cid = folder_cid(folder)
        self.max_output_tokens = min(max_output_tokens, self.context_length)
        self.cost_per_token = weight_gas(folder) if cost_per_token is None else cost_per_token
        self._markers = {marker: token for marker in Special
                         if (token := self._vocabulary_id(marker.value)) is not None}
        ends = {int(token) for token in self._tokenizer.eos_token_ids}
        if Special.MESSAGE_END in self._markers:
            ends.add(self._markers[Special.MESSAGE_END])
        self.end_tokens = frozenset(ends)
        self._silent = self.end_tokens | set(self._markers.values())

    def _vocabulary_id(self, text: str) -> int | None:
        """The id of ``text`` if it is one token of the vocabulary (onnxruntime-genai says -1
        when it is not)."""
        try:
            token = int(self._tokenizer.to_token_id(text))
        except RuntimeError:
            return None
        return token if token >= 0 else None

    def encode(self, text: str) -> list[int]:
        return [int(token) for token in self._tokenizer.encode(text)]

    def token_bytes(self, token: int) -> bytes:
        return b"" if token in self._silent else self._tokenizer.decode([token]).encode("utf-8")

    def special_token(self, marker: Special) -> int:
        token = self._markers.get(marker)
        if token is None:
            raise InvalidInput(f"model {self.name!r} has no {marker.value} token, which the chat template needs")
        return token

    def start(self, prompt: Sequence[int]) -> Generation:
        try:
            params = self._og.GeneratorParams(self._model)
            params.set_search_options(max_length=self.context_length)
            generator = self._og.Generator(self._model, params)
            generator.append_tokens(list(prompt) or [int(self._tokenizer.bos_token_id)])
        except RuntimeError as exc:
            raise ModelExecutionError(f"language model {self.name!r} failed: "
                                      "onnxruntime-genai could not run it") from exc
        return _GenaiGeneration(self.name, generator)


class _GenaiGeneration(Generation):
    def __init__(self, name: str, generator) -> None:
        self._name = name
        self._generator = generator

    def logits(self) -> np.ndarray:
        try:
            return np.asarray(self._generator.get_logits(), dtype=np.float32).reshape(-1)
        except RuntimeError as exc:
            raise ModelExecutionError(f"language model {self._name!r} failed: "
                                      "onnxruntime-genai could not run it") from exc

    def append(self, token: int) -> None:
        try:
            self._generator.append_tokens([token])
        except RuntimeError as exc:
            raise ModelExecutionError(f"language model {self._name!r} failed: "
                                      "onnxruntime-genai could not run it") from exc
