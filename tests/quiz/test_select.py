from collections import Counter
from typing import Any

import pytest
import sha3
from poai.quiz.select import attempt_seed, record_index, record_indices


def test_attempt_seed_is_keccak_of_seal_hash_and_uint64be_nonce() -> None:
    sh = bytes(range(32))
    assert attempt_seed(sh, 258) == sha3.keccak_256(sh + (258).to_bytes(8, "big")).digest()


def test_golden_indices(pure_golden: Any) -> None:
    for row in pure_golden["attempts"]:
        sh, ek = bytes.fromhex(row["seal_hash"]), bytes.fromhex(row["epoch_key"])
        s = attempt_seed(sh, row["nonce"])
        assert s.hex() == row["seed"]
        assert list(record_indices(s, ek, 4, 1000)) == row["indices_n1000"]
        assert list(record_indices(s, ek, 4, 7)) == row["indices_n7"]
        big = record_indices(s, ek, 4, (1 << 255) + 1)
        assert [str(i) for i in big] == row["indices_n2_255_plus_1"]


def test_first_draw_is_keccak_mod_n() -> None:
    s, ek = bytes([1] * 32), bytes([2] * 32)
    x = int.from_bytes(
        sha3.keccak_256(s + ek + b"idx" + (2).to_bytes(4, "big") + bytes(4)).digest(), "big"
    )
    assert record_index(s, ek, 2, 1000) == x % 1000


def test_rejection_sampling_uses_next_counter() -> None:
    # n = 2**255 + 1 rejects every x >= 2**255 + 1 (about half): find a rejected first draw and
    # check the index comes from counter 1.
    n = (1 << 255) + 1
    ek = bytes(32)
    for i in range(64):
        s = attempt_seed(bytes(32), i)
        pre = s + ek + b"idx" + bytes(4)
        x0 = int.from_bytes(sha3.keccak_256(pre + bytes(4)).digest(), "big")
        if x0 >= n:
            x1 = int.from_bytes(sha3.keccak_256(pre + (1).to_bytes(4, "big")).digest(), "big")
            if x1 < n:
                assert record_index(s, ek, 0, n) == x1 % n
                return
    pytest.fail("no rejected first draw found in 64 seeds")


def test_indices_are_roughly_uniform_and_may_repeat() -> None:
    ek = bytes(32)
    counts: Counter[int] = Counter()
    dup = 0
    for nonce in range(2000):
        idx = record_indices(attempt_seed(bytes(32), nonce), ek, 4, 10)
        counts.update(idx)
        dup += len(set(idx)) < 4
    assert set(counts) == set(range(10))
    assert all(650 < c < 950 for c in counts.values())  # 800 expected each
    assert dup > 0  # independent draws: duplicates allowed (P = 1 - 10*9*8*7/10**4 = 0.496)


def test_single_record_dataset() -> None:
    assert record_indices(bytes(32), bytes(32), 4, 1) == (0, 0, 0, 0)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="no records"):
        record_indices(bytes(32), bytes(32), 4, 0)
    with pytest.raises(ValueError):
        record_indices(bytes(32), bytes(32), 0, 10)
    with pytest.raises(ValueError):
        attempt_seed(bytes(32), -1)
    with pytest.raises(ValueError):
        attempt_seed(bytes(32), 1 << 64)
    with pytest.raises(ValueError):
        attempt_seed(bytes(33), 0)
    with pytest.raises(TypeError):
        record_index("00" * 32, bytes(32), 0, 10)  # type: ignore[arg-type]
