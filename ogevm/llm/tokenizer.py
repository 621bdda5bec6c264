"""The byte-level tokenizer of the fixture language model.

Token ids 0..255 are the bytes of the UTF-8 text; four special tokens follow. Text is
always encoded byte by byte, so a prompt that *spells* a special token (``"<|im_end|>"``)
is ten ordinary byte tokens: only the chat template inserts special tokens.
"""

from __future__ import annotations

from typing import Iterable

#: Ends a completion; the model emits it when its text is done.
END_OF_TEXT = 256
#: Opens a chat message; followed by the role and a newline.
MESSAGE_START = 257
#: Closes a chat message; the model emits it when its reply is done.
MESSAGE_END = 258
#: Fills the model's context window before the first token; never emitted.
PAD = 259
#: Size of the vocabulary.
VOCAB_SIZE = 260

SPECIAL_NAMES = {
    END_OF_TEXT: "<|endoftext|>",
    MESSAGE_START: "<|im_start|>",
    MESSAGE_END: "<|im_end|>",
    PAD: "<|pad|>",
}
#: The id of each special token's name (the chat template's markers are looked up here).
SPECIAL_IDS = {name: token for token, name in SPECIAL_NAMES.items()}


def encode(text: str) -> list[int]:
    """The token ids of ``text``: its UTF-8 bytes, never a special token."""
    return list(text.encode("utf-8"))


def decode(tokens: Iterable[int]) -> bytes:
    """The bytes of the byte tokens among ``tokens``; special tokens have no text."""
    return bytes(token for token in tokens if token < 256)
