"""The LLM runtime: checks a request, prices it, and decodes the reply deterministically.

A call is two steps, so gas is known before any model runs: ``prepare_completion`` /
``prepare_chat`` check everything, render the prompt and return an :class:`LLMRequest`
carrying its ``gas``; ``run_completion`` / ``run_chat`` then generate. ``complete`` and
``chat`` do both.

A reply ends with ``finish_reason``:

* ``"stop"``: the model emitted an end token, or the text reached a stop sequence (the
  text is cut before it);
* ``"length"``: ``max_tokens`` tokens were generated;
* ``"tool_calls"`` (chat): the reply holds well-formed tool calls. When tools are offered
  a reply also ends right after its first ``</tool_call>``: one call per reply.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ogevm.errors import InvalidInput, InvalidModel, ModelExecutionError, UnknownModel
from ogevm.llm.constants import MAX_STOP_BYTES, MAX_STOP_SEQUENCES, MAX_TEMPERATURE, llm_gas
from ogevm.llm.model import LanguageModel
from ogevm.llm.sampling import greedy, sample, seed_bytes, uniform
from ogevm.llm.template import render_chat
from ogevm.llm.toolcalls import CALL_CLOSE, NONE, check_tool_choice, check_tools, forced_start, parse_calls
from ogevm.llm.types import ChatCompletion, ChatMessage, Completion, ToolCall, ToolDefinition

STOP, LENGTH, TOOL_CALLS = "stop", "length", "tool_calls"
#: The text form of a CID (:func:`~ogevm.models.cid.compute_cid`: ``b`` and 58 base32 letters).
_CID_FORM = re.compile(r"b[a-z2-7]{58}")


@dataclass(frozen=True)
class LLMRequest:
    """A checked request, ready to run.

    ``forced``: the reply must begin with one of these texts (a forced tool call);
    ``tool_names``: the tools whose calls a chat reply may hold (``None`` for a
    completion, or a chat that offers no tools); ``calls_before``: tool calls already in
    the chat, where the ids of new ones start counting.
    """

    model: LanguageModel
    prompt: tuple[int, ...]
    max_tokens: int
    stop: tuple[bytes, ...]
    temperature: int
    seed: bytes
    forced: tuple[bytes, ...] = ()
    tool_names: frozenset[str] | None = None
    calls_before: int = 0

    @property
    def gas(self) -> int:
        """Gas of the call: :func:`~ogevm.llm.constants.llm_gas` of its sizes."""
        return llm_gas(len(self.prompt), self.max_tokens, self.model.cost_per_token)


@dataclass(frozen=True)
class _Reply:
    text: str
    finish_reason: str
    tokens_out: int


class LLMRuntime:
    """The language models a chain knows, by CID and by name, and the decoding of calls."""

    def __init__(self, models: Iterable[LanguageModel] = ()) -> None:
        self._models: dict[str, LanguageModel] = {}
        for model in models:
            self.add(model)

    def add(self, model: LanguageModel) -> None:
        """Make ``model`` callable by its CID and by its name. A name stays bound to its first
        model (a call's gas and reply must not depend on which file a node added last): adding
        another model under a taken name raises :class:`InvalidModel`, as does a name in the
        form of a CID (it would take the calls meant for the model with that CID)."""
        if model.name != model.cid and _CID_FORM.fullmatch(model.name):
            raise InvalidModel(f"the name {model.name!r} has the form of a CID; a language model's "
                               "name must not")
        for key in (model.cid, model.name):
            bound = self._models.get(key)
            if bound is not None and bound.cid != model.cid:
                raise InvalidModel(f"the name {key!r} is taken by language model {bound.cid}")
        self._models[model.cid] = model
        self._models[model.name] = model

    def models(self) -> list[LanguageModel]:
        """Each model once, in the order they were added."""
        return list({id(model): model for model in self._models.values()}.values())

    def knows(self, model_id: str) -> bool:
        """Whether a model has this CID or name."""
        return model_id in self._models

    def model(self, model_id: str) -> LanguageModel:
        """The model with this CID or name. Raises :class:`UnknownModel`."""
        model = self._models.get(model_id)
        if model is None:
            raise UnknownModel(model_id)
        return model

    # --- preparing: every check, the prompt, the gas -------------------------------------
    def prepare_completion(self, model: str, prompt: str, max_tokens: int,
                           stop_sequences: Sequence[str] = (), temperature: int = 0,
                           seed: int = 0) -> LLMRequest:
        """A completion request. Raises :class:`UnknownModel` or :class:`InvalidInput`."""
        lm = self.model(model)
        stop, seed_data = _check_decoding(max_tokens, stop_sequences, temperature, seed)
        tokens = tuple(_encoded(lambda: lm.encode(prompt)))
        _check_context(lm, len(tokens), max_tokens)
        return LLMRequest(lm, tokens, max_tokens, stop, temperature, seed_data)

    def prepare_chat(self, model: str, messages: Sequence[ChatMessage], max_tokens: int,
                     tools: Sequence[ToolDefinition] = (), tool_choice: str = "",
                     stop_sequences: Sequence[str] = (),
                     temperature: int = 0, seed: int = 0) -> LLMRequest:
        """A chat request. Raises :class:`UnknownModel` or :class:`InvalidInput`.

        ``tool_choice`` is ``""``/``"auto"``, ``"none"``, ``"required"`` or a tool's name
        (see :func:`~ogevm.llm.toolcalls.check_tool_choice`); a forced call is made by
        letting the reply begin only with the start of a call of one of the allowed tools
        (:func:`~ogevm.llm.toolcalls.forced_start`).
        """
        lm = self.model(model)
        stop, seed_data = _check_decoding(max_tokens, stop_sequences, temperature, seed)
        checked = check_tools(tuple(tools))
        forced_tools = check_tool_choice(tool_choice, checked)
        offered = () if tool_choice == NONE else checked
        tokens = tuple(_encoded(lambda: lm.tokens(render_chat(tuple(messages), offered))))
        _check_context(lm, len(tokens), max_tokens)
        return LLMRequest(
            lm, tokens, max_tokens, stop, temperature, seed_data,
            forced=tuple(forced_start(tool).encode("utf-8") for tool in forced_tools),
            tool_names=frozenset(tool.name for tool in offered) if offered else None,
            calls_before=sum(len(message.tool_calls) for message in messages))

    # --- running ----------------------------------------------------------------------------
    def run_completion(self, request: LLMRequest) -> Completion:
        """Generate the completion of a prepared request."""
        reply = _generate(request)
        return Completion(reply.text, reply.finish_reason, len(request.prompt), reply.tokens_out)

    def run_chat(self, request: LLMRequest) -> ChatCompletion:
        """Generate the assistant's message of a prepared chat request."""
        reply = _generate(request)
        parsed = parse_calls(reply.text, request.tool_names) if request.tool_names else None
        if parsed is None:
            message, finish = ChatMessage("assistant", reply.text), reply.finish_reason
        else:
            content, calls = parsed
            message = ChatMessage("assistant", content, tool_calls=tuple(
                ToolCall(f"call_{request.calls_before + i}", name, arguments)
                for i, (name, arguments) in enumerate(calls)))
            finish = TOOL_CALLS
        return ChatCompletion(finish, message, len(request.prompt), reply.tokens_out)

    def complete(self, model: str, prompt: str, max_tokens: int, stop_sequences: Sequence[str] = (),
                 temperature: int = 0, seed: int = 0) -> Completion:
        """Prepare and run a completion. Raises as :meth:`prepare_completion`."""
        return self.run_completion(self.prepare_completion(
            model, prompt, max_tokens, stop_sequences, temperature, seed))

    def chat(self, model: str, messages: Sequence[ChatMessage], max_tokens: int,
             tools: Sequence[ToolDefinition] = (), tool_choice: str = "", stop_sequences: Sequence[str] = (),
             temperature: int = 0, seed: int = 0) -> ChatCompletion:
        """Prepare and run a chat. Raises as :meth:`prepare_chat`."""
        return self.run_chat(self.prepare_chat(
            model, messages, max_tokens, tools, tool_choice, stop_sequences, temperature, seed))


def _check_decoding(max_tokens: int, stop_sequences: Sequence[str], temperature: int,
                    seed: int) -> tuple[tuple[bytes, ...], bytes]:
    """The stop sequences as bytes and the seed as 32 bytes, once every value is checked."""
    if max_tokens < 1:
        raise InvalidInput("max_tokens must be at least 1")
    if not 0 <= temperature <= MAX_TEMPERATURE:
        raise InvalidInput(f"temperature {temperature} is outside 0..{MAX_TEMPERATURE}")
    if len(stop_sequences) > MAX_STOP_SEQUENCES:
        raise InvalidInput(f"{len(stop_sequences)} stop sequences; at most {MAX_STOP_SEQUENCES} are allowed")
    stop = tuple(_encoded(lambda: text.encode("utf-8")) for text in stop_sequences)
    for index, data in enumerate(stop):
        if not 1 <= len(data) <= MAX_STOP_BYTES:
            raise InvalidInput(f"stop sequence {index} must be 1..{MAX_STOP_BYTES} bytes, not {len(data)}")
    try:
        return stop, seed_bytes(seed)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


def _encoded(encode):
    """``encode()``, with text that has no UTF-8 form (lone surrogates) refused readably."""
    try:
        return encode()
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"text is not valid Unicode: {exc.reason} at index {exc.start}") from exc


def _check_context(model: LanguageModel, prompt_tokens: int, max_tokens: int) -> None:
    if max_tokens > model.max_output_tokens:
        raise InvalidInput(f"max_tokens {max_tokens} is above the limit {model.max_output_tokens} "
                           f"of model {model.name!r}")
    if prompt_tokens + max_tokens > model.context_length:
        raise InvalidInput(f"prompt of {prompt_tokens} tokens plus max_tokens {max_tokens} exceeds "
                           f"the context of {model.context_length} tokens of model {model.name!r}")


def _generate(request: LLMRequest) -> _Reply:
    """Decode a reply: choose, check the end, append, for at most ``max_tokens`` steps."""
    model = request.model
    generation = model.start(request.prompt)
    text = bytearray()
    longest = max((len(stop) for stop in request.stop), default=0)
    ends_at_call = request.tool_names is not None
    for step in range(request.max_tokens):
        logits = _checked(generation.logits(), model)
        if request.forced and not any(text.startswith(prefix) for prefix in request.forced):
            logits = _force(logits, model, bytes(text), request.forced)
        token = (greedy(logits) if request.temperature == 0
                 else sample(logits, request.temperature, uniform(request.seed, step)))
        if token in model.end_tokens:
            return _Reply(_text(text), STOP, step + 1)
        before = len(text)
        text += model.token_bytes(token)
        cut = _first_stop(text, request.stop, max(0, before - longest + 1))
        if cut is not None:
            return _Reply(_text(text[:cut]), STOP, step + 1)
        if ends_at_call:
            close = text.find(CALL_CLOSE.encode(), max(0, before - len(CALL_CLOSE) + 1))
            if close >= 0:
                return _Reply(_text(text[:close + len(CALL_CLOSE)]), STOP, step + 1)
        generation.append(token)
    return _Reply(_text(text), LENGTH, request.max_tokens)


def _checked(logits: np.ndarray, model: LanguageModel) -> np.ndarray:
    """``logits`` if they can choose a token: no NaN, at least one above ``-inf``."""
    if np.isnan(logits).any() or not np.isfinite(logits).any():
        raise ModelExecutionError(f"language model {model.name!r} gave logits that choose no token")
    return logits


def _force(logits: np.ndarray, model: LanguageModel, text: bytes, prefixes: tuple[bytes, ...]) -> np.ndarray:
    """``logits`` with every token masked (``-inf``) whose bytes do not continue ``text``
    towards one of ``prefixes`` (or run on past its end). If the model gives every allowed
    token ``-inf``, they all get 0, so the lowest allowed id wins a greedy choice."""
    vocabulary = _vocabulary(model, len(logits))
    found = [vocabulary.continuing(prefix[len(text):]) for prefix in prefixes
             if prefix.startswith(text) and len(prefix) > len(text)]
    allowed = np.unique(np.concatenate(found)) if found else np.zeros(0, np.int64)
    if not len(allowed):
        raise ModelExecutionError(f"language model {model.name!r} has no token that continues the forced tool call")
    masked = np.full_like(logits, -np.inf)
    masked[allowed] = logits[allowed]
    if np.isneginf(masked[allowed]).all():
        masked[allowed] = 0.0
    return masked


@dataclass(frozen=True)
class _Vocabulary:
    """A model's tokens with text, indexed so that a forced step costs what the forced text
    selects, not a walk over the vocabulary: ``pieces`` sorted, ``tokens`` in that order."""

    pieces: list[bytes]
    tokens: np.ndarray
    longest: int

    def continuing(self, rest: bytes) -> np.ndarray:
        """The tokens whose bytes are a start of ``rest``, or ``rest`` and more."""
        starts = [self._between(rest[:size], rest[:size]) for size in range(1, min(len(rest), self.longest) + 1)]
        # every piece that begins with ``rest`` sorts between it and ``rest`` followed by the largest bytes
        return np.concatenate([*starts, self._between(rest, rest + b"\xff" * self.longest)])

    def _between(self, low: bytes, high: bytes) -> np.ndarray:
        return self.tokens[bisect.bisect_left(self.pieces, low):bisect.bisect_right(self.pieces, high)]


@functools.lru_cache(maxsize=16)
def _vocabulary(model: LanguageModel, vocab_size: int) -> _Vocabulary:
    """The index of the model's tokens with text (built once per model)."""
    entries = sorted((piece, token) for token in range(vocab_size) if (piece := model.token_bytes(token)))
    return _Vocabulary([piece for piece, _ in entries], np.array([token for _, token in entries], np.int64),
                       max((len(piece) for piece, _ in entries), default=0))


def _first_stop(text: bytearray, stops: tuple[bytes, ...], start: int) -> int | None:
    """Where the earliest stop sequence begins in ``text[start:]``, if any does."""
    found = [index for index in (text.find(stop, start) for stop in stops) if index >= 0]
    return min(found) if found else None


def _text(data: bytes | bytearray) -> str:
    """Reply bytes as text; a byte sequence that is not UTF-8 becomes U+FFFD."""
    return bytes(data).decode("utf-8", errors="replace")
