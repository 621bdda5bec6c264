"""Gas schedule and limits of LLM calls; ``llm_gas`` is the whole gas rule."""

from __future__ import annotations

#: Charged for every LLM call (decoding the request, rendering the template, the record).
GAS_LLM_BASE = 20_000
#: Charged per 32-byte word of an LLM call's calldata, on top of the base charge every call of
#: the precompile pays: rendering and tokenizing a prompt (which happens even for a call then
#: refused for its length) costs more per byte than decoding a tensor.
GAS_LLM_PER_WORD = 12
#: Charged per prompt token on top of the model's prefill share (tokenizing, hashing).
GAS_LLM_PER_PROMPT_TOKEN = 8
#: A prompt token costs ``1 / GAS_LLM_PREFILL_DIVISOR`` of a generated token of the same
#: model: a prompt is processed in one pass, a generated token needs a pass of its own.
GAS_LLM_PREFILL_DIVISOR = 8

#: Most stop sequences in one request, and the most UTF-8 bytes in one of them.
MAX_STOP_SEQUENCES = 4
MAX_STOP_BYTES = 64
#: Most messages in one chat and most tools it may offer.
MAX_CHAT_MESSAGES = 64
MAX_TOOLS = 16
#: Most UTF-8 bytes of one JSON text (tool parameters, call arguments) and its deepest nesting.
MAX_JSON_BYTES = 16_384
MAX_JSON_DEPTH = 32
#: Widest window of a ``byte-window-v1`` model: its graph's static gas does not count the
#: window it is fed at every step.
MAX_WINDOW_TOKENS = 4096
#: Highest ``temperature``; the scale is hundredths (``temperature / 100``).
MAX_TEMPERATURE = 100


def llm_gas(prompt_tokens: int, max_tokens: int, model_cost_per_token: int) -> int:
    """Gas of an LLM call, known before the model runs.

    ``GAS_LLM_BASE + prompt_tokens * (GAS_LLM_PER_PROMPT_TOKEN
    + ceil(cost / GAS_LLM_PREFILL_DIVISOR)) + max_tokens * cost``: every token the call
    *may* generate is paid for, whether or not generation stops earlier.
    """
    if min(prompt_tokens, max_tokens, model_cost_per_token) < 0:
        raise ValueError("token counts and the cost per token must not be negative")
    prefill = -(-model_cost_per_token // GAS_LLM_PREFILL_DIVISOR)
    return (GAS_LLM_BASE + prompt_tokens * (GAS_LLM_PER_PROMPT_TOKEN + prefill)
            + max_tokens * model_cost_per_token)
