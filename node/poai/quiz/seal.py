"""Seal verification: one forward pass.

A seal (nonce, mixHash) of a header with seal hash H at difficulty D is valid when
1. mixHash is a canonical packing of K·G uint16 values q_1..q_KG (zero padding),
2. ℓ̂ = int(keccak256(H ‖ uint64be(nonce) ‖ mixHash)) < 2**256 // D, and
3. each q_i is exactly floor(v'_i · 2**B) of this node's own loss v'_i of the attempt (K samples ×
   G segments; reduce.py says why exact, and how honest miners stay clear of bucket edges).
Checks 1–2 cost a hash and run first, so a junk seal never costs a forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from poai.quiz._hash import UINT64_MAX
from poai.quiz.context import QuizContext, QuizRunner, losses_for, losses_many_for
from poai.quiz.params import QuizParams
from poai.quiz.reduce import (
    MalformedMixHash,
    accepted_values,
    loss_hash,
    target,
    unpack_q,
)


class InvalidSeal(ValueError):
    """The header's quiz seal does not verify; the message says which check failed.

    `wrong_q`: the seal passed the cheap checks but claims q values the verifier's own losses
    do not give (peer scoring tells this apart from a malformed or off-target seal)."""

    def __init__(self, message: str, *, wrong_q: bool = False) -> None:
        super().__init__(message)
        self.wrong_q = wrong_q

    def __reduce__(self) -> tuple[type[InvalidSeal], tuple[str], dict[str, bool]]:
        # Results cross process boundaries (ParallelVerifier): keep `wrong_q` through pickling.
        return type(self), (str(self.args[0]),), {"wrong_q": self.wrong_q}


def check_seal_fields(
    params: QuizParams, seal_hash: bytes, nonce: int, mix_hash: bytes, difficulty: int
) -> tuple[int, ...]:
    """The cheap checks (encoding, loss hash against target); returns the claimed q values."""
    if type(nonce) is not int or not 0 <= nonce <= UINT64_MAX:
        raise InvalidSeal(f"nonce {nonce!r} is not a uint64")
    if type(difficulty) is not int or difficulty < 1:
        raise InvalidSeal(f"difficulty {difficulty!r} must be an int >= 1")
    try:
        qs = unpack_q(mix_hash, params.values)
    except MalformedMixHash as exc:
        raise InvalidSeal(f"malformed mixHash: {exc}") from exc
    lhat = loss_hash(seal_hash, nonce, mix_hash)
    if lhat >= target(difficulty):
        raise InvalidSeal(
            f"loss hash {lhat:#066x} is not below the target for difficulty {difficulty}"
        )
    return qs


def check_losses(params: QuizParams, qs: tuple[int, ...], losses: list[float]) -> None:
    """Each claimed q_i must be exactly floor(v_i · 2**B) of the verifier's own v_i."""
    if len(losses) != len(qs):
        raise InvalidSeal(f"expected {len(qs)} losses, computed {len(losses)}", wrong_q=True)
    for j, (q, v) in enumerate(zip(qs, losses, strict=True)):
        if not math.isfinite(v) or v < 0:
            raise InvalidSeal(f"value {j}: the model's loss is not a finite non-negative number",
                              wrong_q=True)
        ok = accepted_values(v, params.grid_bits)
        if q not in ok:
            raise InvalidSeal(
                f"value {j}: claimed q={q}, own loss {v!r} gives "
                f"{ok[0] if ok else 'a q above the uint16 range'}",
                wrong_q=True,
            )


def verify_with_runner(
    runner: QuizRunner, epoch_key: bytes, seal_hash: bytes, nonce: int, mix_hash: bytes,
    difficulty: int,
) -> list[float]:
    """verify_seal against an already loaded runner (tests and benchmarks)."""
    qs = check_seal_fields(runner.params, seal_hash, nonce, mix_hash, difficulty)
    losses = runner.losses(epoch_key, seal_hash, nonce)
    check_losses(runner.params, qs, losses)
    return losses


def verify_seal(
    ctx: QuizContext, seal_hash: bytes, nonce: int, mix_hash: bytes, difficulty: int
) -> list[float]:
    """Verify a header's quiz seal; raises InvalidSeal, returns this node's K·G losses.

    `nonce` is the header's 8-byte nonce as an int.  Loads (and caches) the context's model and
    dataset on first use; other errors (a missing blob, a bad dataset key) are not InvalidSeal:
    they mean this node cannot judge the seal, not that the seal is bad.
    """
    qs = check_seal_fields(ctx.params, seal_hash, nonce, mix_hash, difficulty)
    losses = losses_for(ctx, seal_hash, nonce)
    check_losses(ctx.params, qs, losses)
    return losses


SealFields = tuple[bytes, int, bytes, int]  # seal_hash, nonce, mix_hash, difficulty


def verify_seals(ctx: QuizContext, seals: Sequence[SealFields]) -> list[InvalidSeal | None]:
    """verify_seal of several seals under one context, their quizzes in ONE forward pass.

    One result per seal, in order: None when valid, the InvalidSeal otherwise, so a bad seal
    among good ones is named exactly.  Seals failing the cheap checks never enter the pass.

    Why batching does not change which seals are accepted (consensus):
    - Rows are independent: every row has the same length, there is no padding or attention
      mask (attention is within a row), and Mixtral's token-choice top-k routing has no
      expert capacity limit, so no row's routing or output depends on another row.
    - What a taller batch can change is the last float bits (the kernels block the matmuls
      differently): bench/quiz_agreement.py measures that divergence between batch layouts
      (one sample at a time vs K rows), thread counts and instruction sets.  Acceptance is "q
      is exactly floor(v * 2**B) of the verifier's own v", and honest miners publish only
      values at least miner.DEFAULT_MARGIN grid steps from a bucket edge
      (reduce.claimable_values), many times that divergence (docs/BENCHMARKS.md).
    - Rounding could flip a router decision only at a near-tie; miners publish only seals
      whose every routing gap clears tau = 4e-5 (quiz/routing.py), 3x the largest gap
      divergence measured across layouts.
    So a verifier batching seals accepts exactly the honest seals a one-by-one verifier does.
    Other errors (missing blob, bad dataset key) propagate: the node cannot judge.
    """
    results: list[InvalidSeal | None] = [None] * len(seals)
    todo: list[tuple[int, tuple[int, ...]]] = []
    for i, (sh, nonce, mix_hash, difficulty) in enumerate(seals):
        try:
            todo.append((i, check_seal_fields(ctx.params, sh, nonce, mix_hash, difficulty)))
        except InvalidSeal as exc:
            results[i] = exc
    if not todo:
        return results
    all_losses = losses_many_for(ctx, [(seals[i][0], seals[i][1]) for i, _ in todo])
    for (i, qs), losses in zip(todo, all_losses, strict=True):
        try:
            check_losses(ctx.params, qs, losses)
        except InvalidSeal as exc:
            results[i] = exc
    return results


__all__ = ["InvalidSeal", "SealFields", "check_losses", "check_seal_fields", "verify_seal",
           "verify_seals", "verify_with_runner"]
