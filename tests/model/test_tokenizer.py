from __future__ import annotations

import pytest
from poai.model.tokenizer import (
    BOS_ID,
    EOS_ID,
    PAD_ID,
    SALT_TOKEN_COUNT,
    VOCAB_SIZE,
    TokenizerError,
    decode,
    decode_text,
    encode,
)


def test_round_trip_bytes_and_text() -> None:
    text = "Return the sum — ünïcode too\n"
    ids = encode(text)
    assert ids == list(text.encode("utf-8"))
    assert all(0 <= i < 256 for i in ids)
    assert decode_text(ids) == text
    assert decode(encode(bytes(range(256)))) == bytes(range(256))


def test_vocabulary_layout() -> None:
    assert (PAD_ID, BOS_ID, EOS_ID, VOCAB_SIZE) == (256, 257, 258, 259)
    assert SALT_TOKEN_COUNT == 256  # salt tokens are exactly the byte ids


def test_specials_skipped_or_rejected() -> None:
    assert decode([BOS_ID, 65, EOS_ID, PAD_ID]) == b"A"
    with pytest.raises(TokenizerError, match="257"):
        decode([BOS_ID, 65], skip_special=False)
    with pytest.raises(TokenizerError, match="999"):
        decode([999])
    with pytest.raises(TokenizerError):
        decode([-1])
