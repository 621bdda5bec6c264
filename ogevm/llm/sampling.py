"""Choosing the next token, deterministically.

Temperature ``t`` is an integer 0..100 meaning ``t / 100``. At 0 the choice is greedy: the
highest logit, ties to the lowest token id. Above 0 it samples from
``softmax(logits / (t / 100))``, computed in float64 in token order, with the uniform
number of :func:`uniform` for the step; see :func:`sample` for every operation.
"""

from __future__ import annotations

import hashlib

import numpy as np


def seed_bytes(seed: int) -> bytes:
    """``seed`` (0 <= seed < 2**256) as the 32 big-endian bytes the PRNG hashes."""
    if not 0 <= seed < 1 << 256:
        raise ValueError("the seed must be in 0 .. 2**256 - 1")
    return seed.to_bytes(32, "big")


def uniform(seed: bytes, step: int) -> float:
    """The uniform number in [0, 1) of generation step ``step`` (0 for the first token).

    The first 8 bytes of ``sha256(seed || step as 8 big-endian bytes)``, read big-endian,
    shifted right by 11 bits: a 53-bit integer ``k``; the number is ``k / 2**53`` (exact).
    """
    digest = hashlib.sha256(seed + step.to_bytes(8, "big")).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) / (1 << 53)


def greedy(logits: np.ndarray) -> int:
    """The token with the highest logit, the lowest id among equals."""
    return int(np.argmax(logits))


def sample(logits: np.ndarray, temperature: int, u: float) -> int:
    """The token that ``u`` picks from the tempered softmax of ``logits``.

    In float64: ``z = logits / (temperature / 100)``; ``w = exp(z - max(z))``; ``c`` the
    running sums of ``w`` from token 0 upwards; the token is the first ``i`` with
    ``c[i] > u * c[-1]``, or the last token with ``w > 0`` if rounding leaves none.
    Logits of ``-inf`` (masked tokens) have weight 0 and are never picked; if some logits
    are ``+inf``, they have weight 1 and every other token 0.
    """
    z = logits.astype(np.float64) / (temperature / 100.0)
    top = np.max(z)
    # exp(inf - inf) is NaN: a +inf logit takes all the weight, shared with the other +inf ones
    weights = (z == top).astype(np.float64) if np.isposinf(top) else np.exp(z - top)
    cumulative = np.cumsum(weights)
    index = int(np.searchsorted(cumulative, u * cumulative[-1], side="right"))
    if index == len(cumulative):
        index = int(np.flatnonzero(weights)[-1])
    return index
