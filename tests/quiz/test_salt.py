from collections import Counter
from typing import Any

import pytest
import sha3
from poai.quiz.context import SALT_COUNT, SALT_FIRST
from poai.quiz.salt import salt_tokens
from poai.quiz.select import attempt_seed


def test_golden_salts(pure_golden: Any) -> None:
    for row in pure_golden["attempts"]:
        s, ek = bytes.fromhex(row["seed"]), bytes.fromhex(row["epoch_key"])
        for j in range(4):
            assert list(salt_tokens(s, ek, j, 8, SALT_FIRST, SALT_COUNT)) == row["salts"][j]
        assert list(salt_tokens(s, ek, 0, 40, 3, 250)) == row["salt_40_range_3_250"]


def test_byte_range_salt_is_the_hash_bytes() -> None:
    s, ek = bytes([9] * 32), bytes([8] * 32)
    h = sha3.keccak_256(s + ek + b"salt" + (1).to_bytes(4, "big") + bytes(4)).digest()
    assert salt_tokens(s, ek, 1, 8, 0, 256) == tuple(h[:8])


def test_long_salt_spans_blocks_and_stays_in_range() -> None:
    s = attempt_seed(bytes(32), 5)
    salt = salt_tokens(s, bytes(32), 0, 100, 10, 7)
    assert len(salt) == 100
    assert all(10 <= t < 17 for t in salt)


def test_salts_differ_per_sample_and_attempt() -> None:
    ek = bytes(32)
    s0, s1 = attempt_seed(bytes(32), 0), attempt_seed(bytes(32), 1)
    assert salt_tokens(s0, ek, 0, 8, 0, 256) != salt_tokens(s0, ek, 1, 8, 0, 256)
    assert salt_tokens(s0, ek, 0, 8, 0, 256) != salt_tokens(s1, ek, 0, 8, 0, 256)
    assert salt_tokens(s0, ek, 0, 8, 0, 256) != salt_tokens(s0, bytes([1] * 32), 0, 8, 0, 256)


def test_salt_tokens_roughly_uniform() -> None:
    c: Counter[int] = Counter()
    for n in range(400):
        c.update(salt_tokens(attempt_seed(bytes(32), n), bytes(32), 0, 32, 0, 4))
    assert all(2900 < c[t] < 3500 for t in range(4))  # 3200 expected each


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        salt_tokens(bytes(32), bytes(32), 0, 0, 0, 256)
    with pytest.raises(ValueError):
        salt_tokens(bytes(32), bytes(32), 0, 8, 0, 257)
    with pytest.raises(ValueError):
        salt_tokens(bytes(32), bytes(32), 0, 8, -1, 256)
    with pytest.raises(ValueError):
        salt_tokens(bytes(32), bytes(32), -1, 8, 0, 256)
