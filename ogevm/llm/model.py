"""Language models the runtime drives, and the one that runs ONNX next-token graphs.

A backend implements :class:`LanguageModel`: its tokenizer, the tokens of the chat
template's markers, and :meth:`LanguageModel.start`, which returns a :class:`Generation`
that gives the logits of the next token and takes the chosen one. Decoding (greedy or
seeded sampling, stop sequences, limits) is the runtime's, the same for every backend.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import onnxruntime as ort

from ogevm.errors import InvalidModel, ModelExecutionError
from ogevm.llm import tokenizer
from ogevm.llm.constants import MAX_WINDOW_TOKENS
from ogevm.llm.template import Piece, Special
from ogevm.models.store import inspect_model, session_options


class Generation(ABC):
    """One reply in progress."""

    @abstractmethod
    def logits(self) -> np.ndarray:
        """Float32 logits of the next token, one per vocabulary entry; ``-inf`` = never.

        Raises :class:`ModelExecutionError` when the backend fails.
        """

    @abstractmethod
    def append(self, token: int) -> None:
        """Add the chosen token to the context."""


class LanguageModel(ABC):
    """A model the runtime can call: its limits, its tokenizer, its next-token logits.

    ``cid`` identifies the model file; ``cost_per_token`` is the gas of one generated
    token; ``end_tokens`` end a reply (they are counted, but have no text).
    """

    name: str
    cid: str
    context_length: int
    max_output_tokens: int
    cost_per_token: int
    end_tokens: frozenset[int]

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of plain text; never a special token."""

    @abstractmethod
    def token_bytes(self, token: int) -> bytes:
        """The UTF-8 bytes a token stands for (empty for special tokens)."""

    @abstractmethod
    def special_token(self, marker: Special) -> int:
        """The token id of a chat-template marker."""

    @abstractmethod
    def start(self, prompt: Sequence[int]) -> Generation:
        """A generation that continues ``prompt``."""

    def tokens(self, pieces: Iterable[Piece]) -> list[int]:
        """Token ids of a rendered template: text encoded, markers as their tokens."""
        ids: list[int] = []
        for piece in pieces:
            ids += [self.special_token(piece)] if isinstance(piece, Special) else self.encode(piece)
        return ids


#: Value of the ``ogevm.llm.format`` metadata of a :class:`WindowModel` file.
WINDOW_FORMAT = "byte-window-v1"


class WindowModel(LanguageModel):
    """An ONNX graph from the last ``window`` tokens to next-token logits, byte tokenizer.

    The file declares itself in its metadata: ``ogevm.llm.format`` (``byte-window-v1``),
    ``ogevm.llm.name``, ``ogevm.llm.window``, ``ogevm.llm.context_length`` and
    ``ogevm.llm.max_output_tokens``. Its input ``context`` is int64 ``[1, window]``
    (left-padded with ``<|pad|>``), its output ``logits`` float32 ``[1, 260]``. The cost
    per token is the model store's static gas of one run, so gas bounds the work; that gas
    does not count feeding the window, so the window is at most ``MAX_WINDOW_TOKENS`` and
    kept in a numpy array (a step costs a copy of the window, never a Python loop over it).
    """

    end_tokens = frozenset({tokenizer.END_OF_TEXT, tokenizer.MESSAGE_END})

    def __init__(self, data: bytes) -> None:
        info = inspect_model(data)
        self.cid = info.cid
        self.cost_per_token = info.gas_per_sample
        self._session = ort.InferenceSession(data, session_options(), providers=["CPUExecutionProvider"])
        meta = self._session.get_modelmeta().custom_metadata_map
        if meta.get("ogevm.llm.format") != WINDOW_FORMAT:
            raise InvalidModel(f"not a {WINDOW_FORMAT} language model (metadata ogevm.llm.format)")
        if "ogevm.llm.name" not in meta:
            raise InvalidModel("language model metadata ogevm.llm.name is missing")
        self.name = meta["ogevm.llm.name"]
        self.window, self.context_length, self.max_output_tokens = (
            _number(meta, f"ogevm.llm.{key}") for key in ("window", "context_length", "max_output_tokens"))
        if not 1 <= self.window <= MAX_WINDOW_TOKENS:
            raise InvalidModel(f"a {WINDOW_FORMAT} model's window must be 1..{MAX_WINDOW_TOKENS} tokens, "
                               f"not {self.window}")
        if not 1 <= self.max_output_tokens <= self.context_length:
            raise InvalidModel(f"a language model needs 1 <= max_output_tokens <= context_length, not "
                               f"max_output_tokens {self.max_output_tokens}, context_length {self.context_length}")
        shapes = ([i.shape for i in self._session.get_inputs()], [o.shape for o in self._session.get_outputs()])
        if shapes != ([[1, self.window]], [[1, tokenizer.VOCAB_SIZE]]):
            raise InvalidModel(f"a {WINDOW_FORMAT} model maps [1, window] to [1, {tokenizer.VOCAB_SIZE}], "
                               f"not {shapes[0]} to {shapes[1]}")

    @classmethod
    def load(cls, path: Path | str) -> WindowModel:
        """The model in the file at ``path``."""
        return cls(Path(path).read_bytes())

    def encode(self, text: str) -> list[int]:
        return tokenizer.encode(text)

    def token_bytes(self, token: int) -> bytes:
        return tokenizer.decode([token])

    def special_token(self, marker: Special) -> int:
        return tokenizer.SPECIAL_IDS[marker.value]

    def start(self, prompt: Sequence[int]) -> Generation:
        return _WindowGeneration(self, prompt)

    def run(self, window: Sequence[int] | np.ndarray) -> np.ndarray:
        """Logits after exactly ``window`` tokens. Raises :class:`ModelExecutionError`, whose
        reason names no onnxruntime message (it is committed on chain, and differs between
        onnxruntime builds)."""
        try:
            (logits,) = self._session.run(["logits"], {"context": np.asarray(window, dtype=np.int64).reshape(1, -1)})
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelExecutionError(f"language model {self.name!r} failed: onnxruntime could not run it") from exc
        return logits[0]


def _number(meta: dict[str, str], key: str) -> int:
    """The metadata entry ``key`` as an integer, written in ASCII digits only (Python's ``int``
    would also take ``" 6"``, ``"6_0"`` or other scripts' digits)."""
    text = meta.get(key)
    if text is None:
        raise InvalidModel(f"language model metadata {key} is missing")
    if not re.fullmatch(r"[0-9]{1,18}", text):
        raise InvalidModel(f"language model metadata {key} is not a number of at most 18 ASCII digits: {text[:40]!r}")
    return int(text)


class _WindowGeneration(Generation):
    def __init__(self, model: WindowModel, prompt: Sequence[int]) -> None:
        self._model = model
        self._window = np.full(model.window, tokenizer.PAD, dtype=np.int64)
        tail = list(prompt)[-model.window:]
        self._window[model.window - len(tail):] = tail

    def logits(self) -> np.ndarray:
        return self._model.run(self._window)

    def append(self, token: int) -> None:
        self._window[:-1] = self._window[1:]
        self._window[-1] = token
