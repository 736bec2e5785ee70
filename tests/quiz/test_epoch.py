from typing import Any

import pytest
import sha3
from poai.quiz.epoch import epoch_index, epoch_key, seed_block_number


def test_epoch_index_and_seed_block() -> None:
    assert [epoch_index(b, 10) for b in (0, 9, 10, 19, 20)] == [0, 0, 1, 1, 2]
    assert [seed_block_number(e, 10) for e in (0, 1, 2, 5)] == [0, 9, 19, 49]
    # every block's epoch is seeded by a block strictly before the epoch's first block
    for b in range(10, 60):
        assert seed_block_number(epoch_index(b, 10), 10) < (b // 10) * 10


def test_epoch_key_is_keccak_of_seed_and_uint64be_epoch() -> None:
    seed = bytes(range(32))
    expected = sha3.keccak_256(seed + (7).to_bytes(8, "big")).digest()
    assert epoch_key(seed, 7) == expected


def test_epoch_key_golden(pure_golden: Any) -> None:
    for row in pure_golden["epoch_keys"]:
        assert epoch_key(bytes.fromhex(row["seed"]), row["epoch"]).hex() == row["key"]


def test_bad_inputs() -> None:
    with pytest.raises(ValueError):
        epoch_key(bytes(31), 0)
    with pytest.raises(ValueError):
        epoch_key(bytes(32), -1)
    with pytest.raises(ValueError):
        epoch_key(bytes(32), 1 << 64)
    with pytest.raises(ValueError):
        epoch_index(-1, 10)
    with pytest.raises(ValueError):
        epoch_index(5, 0)
    with pytest.raises(ValueError):
        seed_block_number(-1, 10)
