"""Attacks on the quiz seal that try to skip the forward pass, measured on the genesis model.

(a) Precomputed loss table.  An attacker computes, once, a loss for every dataset record and
then, for each nonce, looks up the K chosen records instead of running the model.  Unsalted
(a quiz with no salt, scoring data tokens 2..L of the record) a per-record loss is a fixed number,
so the table answers every quiz and mining becomes hashing: `table_hits_unsalted` counts quizzes
whose K table values the verifier accepts, and `unsalted_grind_speedup` is the hashing-only
nonce rate over the honest attempt rate.  Salted (the protocol), the attacker's best table entry
for a record is its mean salted loss over several random salts; `table_hits_salted` counts
quizzes for which all K entries are accepted (must be 0), `table_sample_hits_salted` single
samples.

(b) Guess attack.  The record indices of a nonce are cheap (hashing), so an attacker who knows
each record's distribution of salted losses can guess q_j without the model: the best guess for
a record is the q that the most salted losses accept (|v·2**B − q| < 1).  The attacker hashes
nonces with the guessed q tuple until ℓ̂ meets the target (hashes only), then runs ONE forward
pass to check the guess (or publishes blindly and the network's forward pass checks it): a guess
is right with probability p_guess = Π_j p_j, so a forged block costs ≈ 1 / p_guess forward
passes.  Honest mining costs D / T forward passes per block at difficulty D with T claimable
tickets per pass (measured mean).  `forged_over_honest` = (1/p_guess) / (D/T) at the devnet
difficulty (must be ≥ 1,000); `max_difficulty_for_1000x` is the difficulty at which that
ratio falls to 1,000.  p_j is estimated per record in-sample (the guess is chosen on the very
salts it is scored on, which favours the attacker), averaged over random records, and floored
at one hit per record, so p_guess is an over-estimate and forged_over_honest a lower bound.
Other knowledge (the salt tokens themselves) could sharpen a guess only through a predictor of
the model's loss accurate to one grid step (2.4e-4 nats), i.e. something as costly as the model.

    .venv/bin/python bench/quiz_attacks.py            # full
    .venv/bin/python bench/quiz_attacks.py --quick    # bounded
"""

from __future__ import annotations

import argparse
import json
import math
import random
import statistics
import sys
import time
from typing import Any

EPOCH_SEED = b"\x24" * 32


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--quizzes", type=int, default=None, help="table attack quizzes (400)")
    ap.add_argument("--records", type=int, default=None, help="guess attack records (120)")
    ap.add_argument("--salts", type=int, default=None, help="salts per record (256)")
    ap.add_argument("--difficulty", type=int, default=None, help="default: devnet genesis")
    args = ap.parse_args()
    n_quiz = args.quizzes or (12 if args.quick else 400)
    n_rec = args.records or (6 if args.quick else 120)
    n_salt = args.salts or (32 if args.quick else 256)

    import torch
    from poai.quiz._hash import keccak256
    from poai.quiz.context import load_runner
    from poai.quiz.epoch import epoch_key
    from poai.quiz.genesis import devnet_difficulty, genesis_context
    from poai.quiz.loss import build_batch, sample_losses, sample_losses_from_logits
    from poai.quiz.miner import DEFAULT_MARGIN
    from poai.quiz.reduce import claimable_values, is_accepted, loss_hash, pack_q, quantize
    from poai.quiz.select import attempt_seed, record_indices

    t_start = time.perf_counter()
    ctx = genesis_context(epoch_key(EPOCH_SEED, 0))
    runner = load_runner(ctx)
    p = ctx.params
    B, scale = p.grid_bits, 1 << p.grid_bits
    difficulty = args.difficulty or devnet_difficulty()
    rng = random.Random(7)

    def unsalted(records: list[tuple[int, ...]]) -> list[float]:
        batch = torch.tensor([list(r) for r in records], dtype=torch.int64)
        with torch.inference_mode():
            logits = runner.model(input_ids=batch, use_cache=False).logits
            return [float(x) for x in sample_losses_from_logits(logits, batch, 1).tolist()]

    def salted(records: list[tuple[int, ...]], salts: list[list[int]]) -> list[float]:
        return sample_losses(runner.model, build_batch(salts, records), p.salt_len)

    def random_salt() -> list[int]:
        return [rng.randrange(256) for _ in range(p.salt_len)]

    # ---- (a) table attack -------------------------------------------------------------------
    table_unsalted: dict[int, float] = {}
    table_salted: dict[int, float] = {}
    hits_u = hits_s = sample_hits_s = 0
    tickets: list[int] = []
    salt_shift: list[float] = []
    for i in range(n_quiz):
        sh = keccak256(b"table" + i.to_bytes(8, "big"))
        a = runner.attempt(ctx.epoch_key, sh, i)
        v_salted = sample_losses(runner.model, a.batch, p.salt_len)
        tickets.append(math.prod(len(claimable_values(v, B, DEFAULT_MARGIN)) for v in v_salted))
        recs = [runner.record(r) for r in a.indices]
        # the unsalted protocol's own quiz: the K records as one batch, no salt
        v_unsalted_quiz = unsalted(recs)
        for r, rec in zip(a.indices, recs, strict=True):
            if r not in table_unsalted:
                table_unsalted[r] = unsalted([rec])[0]  # table built one record at a time
                table_salted[r] = statistics.fmean(salted([rec] * 8, [random_salt()
                                                                      for _ in range(8)]))
        hits_u += all(is_accepted(quantize(table_unsalted[r], B), v, B)
                      for r, v in zip(a.indices, v_unsalted_quiz, strict=True))
        ok = [is_accepted(quantize(table_salted[r], B), v, B)
              for r, v in zip(a.indices, v_salted, strict=True)]
        sample_hits_s += sum(ok)
        hits_s += all(ok)
        salt_shift += [abs(v - table_unsalted[r]) * scale
                       for r, v in zip(a.indices, v_salted, strict=True)]
    # honest attempt rate vs table-only grinding rate (hashing and lookups, no model)
    t = time.perf_counter()
    m = 0
    while m < 100 or time.perf_counter() - t < 0.3:
        sh = bytes(32)
        s = attempt_seed(sh, m)
        idx = record_indices(s, ctx.epoch_key, p.k, runner.n_records)
        qs = [quantize(table_unsalted.get(r, 1.0), B) for r in idx]
        loss_hash(sh, m, pack_q(qs))
        m += 1
    grind_rate = m / (time.perf_counter() - t)
    t = time.perf_counter()
    for i in range(20):
        runner.losses(ctx.epoch_key, bytes(32), i)
    honest_rate = 20 / (time.perf_counter() - t)

    # ---- (b) guess attack -------------------------------------------------------------------
    per_record: list[dict[str, float]] = []
    chunk = 32
    for _ in range(n_rec):
        r = rng.randrange(runner.n_records)
        rec = runner.record(r)
        fs: list[float] = []
        for start in range(0, n_salt, chunk):
            n = min(chunk, n_salt - start)
            fs += [v * scale for v in salted([rec] * n, [random_salt() for _ in range(n)])]
        # the best guess q accepts every f in (q-1, q+1): scan candidate q's near the data
        cands = range(math.floor(min(fs)), math.ceil(max(fs)) + 1)
        best = max(cands, key=lambda q: sum(abs(f - q) < 1 for f in fs))
        hits = sum(abs(f - best) < 1 for f in fs)
        half = len(fs) // 2
        best_train = max(cands, key=lambda q: sum(abs(f - q) < 1 for f in fs[:half]))
        held = sum(abs(f - best_train) < 1 for f in fs[half:]) / (len(fs) - half)
        per_record.append({"p_in_sample": max(hits, 1) / len(fs), "p_held_out": held,
                           "spread_steps": statistics.pstdev(fs)})
    p_sample = statistics.fmean(x["p_in_sample"] for x in per_record)
    p_held = statistics.fmean(x["p_held_out"] for x in per_record)
    p_guess = p_sample ** p.k
    mean_tickets = statistics.fmean(tickets)
    forged_passes = 1 / p_guess
    honest_passes_per_block = difficulty / mean_tickets
    ratio = forged_passes / honest_passes_per_block
    report: dict[str, Any] = {
        "bench": "quiz_attacks",
        "quick": args.quick,
        "params": p.to_dict(),
        "quizzes": n_quiz,
        "table_records": len(table_unsalted),
        "table_hits_unsalted": hits_u,
        "table_hits_salted": hits_s,
        "table_sample_hits_salted": sample_hits_s,
        "table_samples": n_quiz * p.k,
        "salt_shift_median_steps": statistics.median(salt_shift),
        "unsalted_grind_rate_per_s": round(grind_rate, 1),
        "honest_attempt_rate_per_s": round(honest_rate, 1),
        "unsalted_grind_speedup": round(grind_rate / honest_rate, 1),
        "guess_records": n_rec,
        "guess_salts_per_record": n_salt,
        "salted_loss_spread_median_steps": statistics.median(
            x["spread_steps"] for x in per_record),
        "p_sample_best_guess": p_sample,
        "p_sample_best_guess_held_out": p_held,
        "p_guess": p_guess,
        "mean_tickets_per_pass": mean_tickets,
        "difficulty": difficulty,
        "honest_passes_per_block": honest_passes_per_block,
        "forged_passes_per_block": forged_passes,
        "forged_over_honest": ratio,
        "max_difficulty_for_1000x": mean_tickets / (1000 * p_guess),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
