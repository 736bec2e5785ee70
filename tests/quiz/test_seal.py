import dataclasses
from typing import Any

import pytest
from poai.model.store import BlobError
from poai.quiz.context import QuizContext, losses_for
from poai.quiz.params import QuizParams
from poai.quiz.reduce import loss_hash, pack_q, quantize, target
from poai.quiz.seal import InvalidSeal, check_seal_fields, verify_seal

SH = bytes(range(1, 33))


def _honest(ctx: QuizContext, nonce: int) -> tuple[list[float], list[int]]:
    v = losses_for(ctx, SH, nonce)
    return v, [quantize(x, ctx.params.grid_bits) for x in v]


def test_valid_seal_verifies_and_returns_own_losses(tiny_ctx: QuizContext) -> None:
    v, qs = _honest(tiny_ctx, 11)
    assert verify_seal(tiny_ctx, SH, 11, pack_q(qs), 1) == v


def test_only_the_exact_floor_is_accepted(tiny_ctx: QuizContext) -> None:
    v, qs = _honest(tiny_ctx, 12)
    assert len(qs) == tiny_ctx.params.values == 16  # K = 4 samples x G = 4 segments
    for j in range(len(qs)):
        f = v[j] * 4096
        assert f != int(f)  # a float loss on the grid would make this test meaningless
        for delta in (-1, 1, 2):  # 1: the ceiling, accepted by the previous rule, not now
            bad = list(qs)
            bad[j] += delta
            with pytest.raises(InvalidSeal, match=f"value {j}: claimed"):
                verify_seal(tiny_ctx, SH, 12, pack_q(bad), 1)


def test_wrong_nonce_rejected(tiny_ctx: QuizContext) -> None:
    _, qs = _honest(tiny_ctx, 13)
    with pytest.raises(InvalidSeal, match="claimed"):
        verify_seal(tiny_ctx, SH, 14, pack_q(qs), 1)


def test_wrong_seal_hash_rejected(tiny_ctx: QuizContext) -> None:
    _, qs = _honest(tiny_ctx, 13)
    with pytest.raises(InvalidSeal):
        verify_seal(tiny_ctx, bytes(32), 13, pack_q(qs), 1)


def test_loss_hash_above_target_rejected(tiny_ctx: QuizContext) -> None:
    _, qs = _honest(tiny_ctx, 15)
    mix = pack_q(qs)
    lhat = loss_hash(SH, 15, mix)
    exact = (1 << 256) // (lhat + 1)  # the largest difficulty whose target still exceeds lhat
    assert target(exact) > lhat
    assert target(exact + 1) <= lhat
    verify_seal(tiny_ctx, SH, 15, mix, exact)
    with pytest.raises(InvalidSeal, match="not below the target"):
        verify_seal(tiny_ctx, SH, 15, mix, exact + 1)


def test_nonzero_padding_rejected(tiny_ctx: QuizContext) -> None:
    ctx3 = dataclasses.replace(tiny_ctx, params=dataclasses.replace(tiny_ctx.params, k=3))
    v, qs = _honest(ctx3, 16)
    assert len(v) == 12
    mix = pack_q(qs)
    verify_seal(ctx3, SH, 16, mix, 1)
    tampered = mix[:31] + b"\x01"
    with pytest.raises(InvalidSeal, match="padding"):
        verify_seal(ctx3, SH, 16, tampered, 1)


@pytest.mark.parametrize(
    "nonce,mix,difficulty,match",
    [(-1, bytes(32), 1, "nonce"), (1 << 64, bytes(32), 1, "nonce"), (0, bytes(31), 1, "mixHash"),
     (0, bytes(32), 0, "difficulty"), (0, bytes(32), True, "difficulty")],
)
def test_malformed_fields_rejected(
    tiny_ctx: QuizContext, nonce: int, mix: bytes, difficulty: int, match: str
) -> None:
    with pytest.raises(InvalidSeal, match=match):
        verify_seal(tiny_ctx, SH, nonce, mix, difficulty)


def test_cheap_checks_run_before_the_model(tiny_ctx: QuizContext) -> None:
    # Assets that do not exist: a junk seal must still be rejected as InvalidSeal (no model load)
    ghost = dataclasses.replace(tiny_ctx, manifest_hash="e" * 64)
    with pytest.raises(InvalidSeal, match="target"):
        verify_seal(ghost, SH, 0, bytes(32), 1 << 255)
    # ...while a seal that passes them needs the model, and a missing blob is not InvalidSeal
    with pytest.raises(BlobError):
        verify_seal(ghost, SH, 0, bytes(32), 1)


def test_check_seal_fields_returns_claimed_values() -> None:
    qs = check_seal_fields(QuizParams(), SH, 1, pack_q([1, 2, 3, 4]), 1)
    assert qs == (1, 2, 3, 4) + (0,) * 12  # 16 uint16 fields


def test_verify_seals_names_the_forged_seal_in_the_middle(tiny_ctx: QuizContext,
                                                         clear_attempt: Any) -> None:
    from poai.quiz.seal import verify_seals

    seals = []
    for n in range(20, 25):
        nonce, qs = clear_attempt(tiny_ctx, SH, n)  # what honest miners publish
        if n == 22:
            qs[1] += 1  # not the floor, in the middle of the batch
        seals.append((SH, nonce, pack_q(qs), 1))
    seals.append((SH, 25, bytes(32), 1 << 255))  # fails the cheap check, never in the pass
    results = verify_seals(tiny_ctx, seals)
    assert [r is None for r in results] == [True, True, False, True, True, False]
    assert isinstance(results[2], InvalidSeal) and "value 1" in str(results[2])
    assert isinstance(results[5], InvalidSeal) and "not below the target" in str(results[5])
    assert verify_seals(tiny_ctx, []) == []


def test_golden_seals_verify_batched() -> None:
    import json
    from pathlib import Path

    from poai.quiz.genesis import genesis_context
    from poai.quiz.seal import verify_seals

    golden = json.loads((Path(__file__).parent / "golden" / "genesis.json").read_text())
    ctx = genesis_context(bytes.fromhex(golden["epoch_key"]),
                          QuizParams.from_dict(golden["params"]))
    good = [(bytes.fromhex(s["seal_hash"]), s["nonce"], bytes.fromhex(s["mix_hash"]),
             s["difficulty"]) for s in golden["seals"]]
    # each golden seal one nonce later: a wrong seal, interleaved with the good ones
    bad = [(sh, nonce + 1, mix, d) for sh, nonce, mix, d in good]
    mixed = [x for pair in zip(good, bad, strict=True) for x in pair]
    results = verify_seals(ctx, mixed)
    assert [r is None for r in results] == [True, False] * len(good)
