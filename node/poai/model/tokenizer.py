"""Byte-level vocabulary of the PoAI model.

Our own mapping rather than ``ByT5Tokenizer``: token ids are consensus data (dataset records,
salts), so they must not depend on a library version. Ids 0..255 are the bytes themselves;
three special ids follow. Every byte id (0..255) is a valid salt token; the specials are never
used as salt or data tokens in the quiz.
"""

from __future__ import annotations

BYTE_TOKENS = 256  # ids 0..255 are raw byte values
PAD_ID = 256
BOS_ID = 257
EOS_ID = 258
VOCAB_SIZE = 259

# The quiz draws salt tokens uniformly from [0, SALT_TOKEN_COUNT): the plain byte ids.
SALT_TOKEN_COUNT = BYTE_TOKENS


class TokenizerError(ValueError):
    """A token id outside the vocabulary, or one that is not a byte where bytes are needed."""


def encode(text: str | bytes) -> list[int]:
    """Token ids of ``text`` (UTF-8 for ``str``): one id per byte, no specials added."""
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    return list(data)


def decode(ids: list[int], *, skip_special: bool = True) -> bytes:
    """Bytes of ``ids``; special ids are dropped (or rejected when ``skip_special`` is False)."""
    out = bytearray()
    for i in ids:
        if 0 <= i < BYTE_TOKENS:
            out.append(i)
        elif i in (PAD_ID, BOS_ID, EOS_ID) and skip_special:
            continue
        else:
            raise TokenizerError(f"token id {i} is not a byte id (vocabulary size {VOCAB_SIZE})")
    return bytes(out)


def decode_text(ids: list[int]) -> str:
    """Text of ``ids``, with invalid UTF-8 replaced (model output may split a character)."""
    return decode(ids).decode("utf-8", errors="replace")
