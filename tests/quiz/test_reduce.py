import math
import struct
from typing import Any

import numpy as np
import pytest
import sha3
from poai.quiz.reduce import (
    QMAX,
    MalformedMixHash,
    accepted_values,
    claimable_values,
    find_ticket,
    is_accepted,
    loss_hash,
    meets_target,
    pack_q,
    quantize,
    target,
    unpack_q,
)


def test_quantize_golden(pure_golden: Any) -> None:
    for row in pure_golden["quantize"]:
        assert quantize(row["v"], row["B"]) == row["q"]


def test_quantize_is_exact_floor_of_float32_losses() -> None:
    rng = np.random.default_rng(0)
    for v in rng.uniform(0, 8, 2000).astype(np.float32):
        f = float(v)
        q = quantize(f, 12)
        # exact rational check: q <= v * 4096 < q + 1
        num, den = f.as_integer_ratio()
        assert q * den <= num * 4096 < (q + 1) * den


def test_quantize_rejects_bad_losses() -> None:
    for bad in (math.nan, math.inf, -1e-9):
        with pytest.raises(ValueError):
            quantize(bad, 12)
    assert quantize(20.0, 12) == 81920  # above QMAX: quantised, but not committable


def test_accepted_value_is_the_exact_floor() -> None:
    assert accepted_values(1.5 / 4096 + 2, 12) == (2 * 4096 + 1,)
    assert accepted_values(2.0, 12) == (8192,)
    assert is_accepted(8192, 2.0, 12) and not is_accepted(8191, 2.0, 12)
    assert not is_accepted(8193, 2.0 + 0.99 / 4096, 12)  # the ceiling is no longer accepted
    # a loss of 16 nats or more does not fit a uint16 field: nothing is accepted
    assert accepted_values(QMAX / 4096 + 1, 12) == ()
    assert accepted_values(QMAX / 4096, 12) == (QMAX,)


def test_acceptance_is_floor_equality() -> None:
    rng = np.random.default_rng(1)
    for v in rng.uniform(0, 4, 500).astype(np.float32):
        f = float(v) * 4096
        for q in range(math.floor(f) - 2, math.ceil(f) + 3):
            assert is_accepted(q, float(v), 12) == (q == math.floor(f))


def test_claimable_values_respect_margin() -> None:
    step = 1 / 4096
    base = 3.0
    assert claimable_values(base + 0.5 * step, 12, 1 / 16) == (12288,)
    # within the margin of either bucket edge: nothing claimable (the attempt is not published)
    assert claimable_values(base + 0.05 * step, 12, 1 / 16) == ()
    assert claimable_values(base + 0.95 * step, 12, 1 / 16) == ()
    assert claimable_values(base, 12, 1 / 16) == ()
    assert claimable_values(base, 12, 0.0) == (12288,)
    assert claimable_values(QMAX / 4096 + 1.5 * step, 12, 0.0) == ()  # not committable
    with pytest.raises(ValueError):
        claimable_values(base, 12, 0.5)


def test_claimable_values_accepted_by_every_verifier_within_margin() -> None:
    rng = np.random.default_rng(2)
    margin = 1 / 16
    claimed = 0
    for v in rng.uniform(0, 4, 2000):
        f = float(v) * 4096
        for q in claimable_values(float(v), 12, margin):
            claimed += 1
            for d in (-margin, -margin / 2, 0.0, margin / 2, margin):
                assert is_accepted(q, (f + d * 0.999) / 4096, 12)
    assert 0.8 * 2000 < claimed < 0.95 * 2000  # ~ (1 - 2 * margin) of them


def test_pack_unpack_round_trip() -> None:
    qs = [0, 1, 22817, QMAX]
    mix = pack_q(qs)
    assert len(mix) == 32 and mix == struct.pack(">4H", *qs) + bytes(24)
    assert unpack_q(mix, 4) == tuple(qs)
    full = list(range(1000, 1016))
    assert pack_q(full) == struct.pack(">16H", *full)
    assert unpack_q(pack_q(full), 16) == tuple(full)


def test_unpack_rejects_nonzero_padding_and_bad_length() -> None:
    mix = bytearray(pack_q([5, 6, 7]))
    mix[31] = 1
    with pytest.raises(MalformedMixHash, match="padding"):
        unpack_q(bytes(mix), 3)
    with pytest.raises(MalformedMixHash):
        unpack_q(bytes(31), 3)
    with pytest.raises(ValueError):
        pack_q(list(range(17)))
    with pytest.raises(ValueError):
        pack_q([-1])
    with pytest.raises(ValueError, match="uint16"):
        pack_q([QMAX + 1])
    with pytest.raises(ValueError):
        unpack_q(bytes(32), 17)


def test_loss_hash_definition_and_golden(pure_golden: Any) -> None:
    sh, mix = bytes(range(32)), pack_q([1, 2, 3, 4])
    expected = sha3.keccak_256(sh + (9).to_bytes(8, "big") + mix).digest()
    assert loss_hash(sh, 9, mix) == int.from_bytes(expected, "big")
    for row in pure_golden["loss_hashes"]:
        got = loss_hash(bytes.fromhex(row["seal_hash"]), row["nonce"],
                        bytes.fromhex(row["mix_hash"]))
        assert hex(got) == row["lhat"]


def test_target() -> None:
    assert target(1) == 1 << 256
    assert target(3) == (1 << 256) // 3
    assert meets_target((1 << 256) - 1, 1)
    assert meets_target(target(7) - 1, 7) and not meets_target(target(7), 7)
    for bad in (0, -5):
        with pytest.raises(ValueError):
            target(bad)
    with pytest.raises(ValueError):
        target(2.0)  # type: ignore[arg-type]


def test_find_ticket_tries_all_combinations() -> None:
    sh = bytes(32)
    choices = [(10, 11), (20, 21), (30,), (40, 41)]
    assert find_ticket(sh, 0, choices, 1) == pack_q([10, 20, 30, 40])
    # at a high difficulty, the ticket found (if any) is one of the 8 combinations and meets it
    hits = 0
    for nonce in range(300):
        mix = find_ticket(sh, nonce, choices, 4)
        if mix is not None:
            hits += 1
            qs = unpack_q(mix, 4)
            assert all(q in c for q, c in zip(qs, choices, strict=True))
            assert loss_hash(sh, nonce, mix) < target(4)
    # P(hit) = 1 - (3/4)**8 = 0.90
    assert 240 < hits < 300
