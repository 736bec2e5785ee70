"""Attacks on the quiz seal that try to skip the forward pass, measured on the genesis model.

The forger wants a header the network accepts without paying the honest miner's forward passes.
The honest miner pays f (one forward pass, measured here) per attempt and gets on average T valid
tickets per pass (measured here: the share of attempts whose every value clears the bucket edges
and whose routing clears the guard); at difficulty D a block costs it D·f/T.  Costs below are
charged so as to FAVOUR the forger:
- hashing at GPU speed, h = --keccak-ns per keccak (default 1 ns), and ONE keccak per nonce (the
  loss hash); the K+1 keccaks that select a nonce's records and salts are not charged, so
  filtering nonces for "easy" records gains nothing the bound does not already give away;
- precomputation (loss tables, per-record distributions, salt-conditioned tables) is free;
- a partial forward pass costs its share of positions (no fixed per-call overhead);
- per-value guess odds are in-sample maxima over the measured salts (biased upwards: the best
  bucket is chosen on the very losses it is scored on, and floored at one hit).

Strategies (each costed per forged block; forged_over_honest is the minimum over those that
skip the consensus forward pass: (a), (b) and (d)):
(a) Loss table: a precomputed per-record loss instead of the pass.  Unsalted (no salt, data
    tokens 2..L) a table answers every quiz (`table_hits_unsalted`); salted (the protocol), the
    best table entry is a mean over salts and must essentially never answer a quiz
    (`table_hits_salted`, `table_value_hits_salted`).
(b) Guess: per record and value (segment), the forger's best single guess of q = floor(v · 2**B)
    from the record's distribution of salted losses.  p_value = mean over records of the guess's
    in-sample hit rate, taken as the max of: salt unknown, salt's last byte known, last two bytes
    known (salt-conditioned tables of 256 or 65,536 entries per record, free here).  The values of
    one sample are correlated through its salt; the joint best guess is bounded with a Gaussian
    copula, p_sample <= Π p_value / sqrt(det R) (R: the segments' correlation over salts,
    averaged over records).  p_guess = Π over the K samples.
(c) Partial evaluation: compute a prefix of some samples (their first c segments, cost share
    (S + c·L/G)/(K·(S+L)) of a pass) and guess the rest; every mix of c per sample is tried and
    the cheapest is reported per number of guessed values (`partial_by_values_guessed`).  This
    is not a model-free forgery (it pays most of a pass to skip a little of it), so it is not
    in the headline; `partial_min_ratio` must stay >= 1: no partial evaluation beats mining.
Not forging, but measured: a miner who runs every pass and ignores the claim margin publishes
a ticket per pass, not T: `margin_free_miner_advantage` = 1/T is its edge over miners who keep
the margin (it risks the rejections the margin avoids; the previous design's edge was 2**K/T).
(d) Low precision: run the model in bfloat16 (assumed 4x cheaper, favouring the forger) and
    claim its floors; `bf16_value_hit_rate` is the share of values that come out right.
Each strategy is costed two ways: `blind` (publish every candidate whose guessed ticket meets the
target; the network's forward pass does the checking, the forger pays only hashing and partial
passes) and `checked` (the forger checks each candidate with one pass itself):
    blind   forged/honest = T · (c + h/f) / p
    checked forged/honest = T · (c + h/f + 1/D) / p
where c is the strategy's compute share of a pass per nonce and p its success odds per candidate.
Blind is a lower bound of every strategy at every D.

The same measured passes also give the previous design (one value per sample, the mean over all
L tokens, B = 12, floor-or-ceiling acceptance, 1/8-step claim margin: up to 2 tickets per value) as
`previous_design`, so the before/after comparison uses the same losses.

Prints the curve of forged_over_honest for D = 10^0 … 10^12 and the difficulties where it falls
below 10^6, 10^3 and 1 (null: not within D <= 10^12).  Absolute times are noisy on a shared
machine (the load average is printed).  The ratio uses the measured pass cost f against a fixed
h, so a slower pass (a loaded machine) lowers h/f and the ratio: load makes the figure
conservative.  --pass-ms evaluates it at another pass cost (e.g. a GPU's).

    .venv/bin/python bench/quiz_attacks.py            # full (~10 min on a quiet 2-core machine)
    .venv/bin/python bench/quiz_attacks.py --quick    # bounded
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import statistics
import sys
import time
from typing import Any

EPOCH_SEED = b"\x24" * 32
DIFFICULTIES = [10**e for e in range(13)]
THRESHOLDS = (1e6, 1e3, 1.0)
BF16_SPEEDUP = 4.0  # assumed cost share of a bfloat16 pass: 1/4 (favours the forger)
PREV_B, PREV_MARGIN = 12, 1 / 8  # the previous design's grid and claim margin


def best_bucket_rate(fs: list[float], width: int) -> float:
    """In-sample hit rate of the best guess q for values f (grid units) under acceptance
    `width` = 1 (q == floor f) or 2 (q in {floor f, ceil f}), floored at one hit."""
    counts: dict[int, int] = {}
    for f in fs:
        lo = math.floor(f)
        counts[lo] = counts.get(lo, 0) + 1
        if width == 2 and f != lo:
            counts[lo + 1] = counts.get(lo + 1, 0) + 1
    return max(max(counts.values()), 1) / len(fs)


def crossings(curve: dict[int, float]) -> dict[str, int | None]:
    """The smallest listed difficulty at which the ratio is below each threshold."""
    out: dict[str, int | None] = {}
    for t in THRESHOLDS:
        out[f"{t:g}"] = next((d for d in DIFFICULTIES if curve[d] < t), None)
    return out


def det(m: list[list[float]]) -> float:
    import torch

    return float(torch.linalg.det(torch.tensor(m, dtype=torch.float64)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--quizzes", type=int, default=None, help="honest/table quizzes (400)")
    ap.add_argument("--records", type=int, default=None, help="guess attack records (60)")
    ap.add_argument("--salts", type=int, default=None, help="salts per record (256)")
    ap.add_argument("--cond-salts", type=int, default=None,
                    help="salts per record with the salt's last bytes fixed (64)")
    ap.add_argument("--keccak-ns", type=float, default=1.0, help="forger's ns per keccak (1)")
    ap.add_argument("--pass-ms", type=float, default=None,
                    help="honest forward pass cost in ms (default: measured here)")
    args = ap.parse_args()
    n_quiz = args.quizzes or (24 if args.quick else 400)
    n_rec = args.records or (4 if args.quick else 60)
    n_salt = args.salts or (64 if args.quick else 256)
    n_cond = args.cond_salts or (32 if args.quick else 64)

    import torch
    from poai.quiz._hash import keccak256
    from poai.quiz.context import load_runner
    from poai.quiz.epoch import epoch_key
    from poai.quiz.genesis import genesis_context
    from poai.quiz.loss import build_batch, sample_losses, sample_losses_from_logits
    from poai.quiz.miner import DEFAULT_MARGIN
    from poai.quiz.reduce import claimable_values, is_accepted, quantize
    from poai.quiz.routing import DEFAULT_TAU, attempt_routing

    t_start = time.perf_counter()
    ctx = genesis_context(epoch_key(EPOCH_SEED, 0))
    runner = load_runner(ctx)
    model = runner.model
    p = ctx.params
    K, G, S, L, B = p.k, p.segments, p.salt_len, p.sample_len, p.grid_bits
    scale = 1 << B
    rng = random.Random(7)

    def values(records: list[tuple[int, ...]], salts: list[list[int]],
               segments: int = G) -> list[list[float]]:
        """Per row: its `segments` committed losses."""
        flat = sample_losses(model, build_batch(salts, records), S, segments)
        return [flat[i * segments : (i + 1) * segments] for i in range(len(records))]

    def unsalted(records: list[tuple[int, ...]]) -> list[float]:
        batch = torch.tensor([list(r) for r in records], dtype=torch.int64)
        with torch.inference_mode():
            logits = model(input_ids=batch, use_cache=False).logits
            return [float(x) for x in sample_losses_from_logits(logits, batch, 1).tolist()]

    def random_salt(fixed: tuple[int, ...] = ()) -> list[int]:
        return [rng.randrange(256) for _ in range(S - len(fixed))] + list(fixed)

    # ---- honest cost: forward pass time and valid tickets per pass --------------------------
    t = time.perf_counter()
    timed = 0
    while timed < 30 or time.perf_counter() - t < 2.0:
        runner.losses(ctx.epoch_key, keccak256(b"time"), timed)
        timed += 1
    f_ms_measured = (time.perf_counter() - t) / timed * 1e3
    f_ms = args.pass_ms or f_ms_measured
    t = time.perf_counter()
    m = 0
    while m < 2000:
        keccak256(b"x" * 72 + m.to_bytes(8, "big"))
        m += 1
    cpu_keccak_ns = (time.perf_counter() - t) / m * 1e9

    # ---- (a) table attack, and the honest tickets of the same quizzes ----------------------
    table_unsalted: dict[int, float] = {}
    table_salted: dict[int, list[float]] = {}
    hits_u = hits_s = value_hits_s = 0
    clear = guard_ok = 0
    prev_tickets: list[int] = []
    for i in range(n_quiz):
        sh = keccak256(b"table" + i.to_bytes(8, "big"))
        a = runner.attempt(ctx.epoch_key, sh, i)
        v, routing = attempt_routing(model, a.batch, S, G)
        ok_clear = all(claimable_values(x, B, DEFAULT_MARGIN) for x in v)
        clear += ok_clear
        guard_ok += ok_clear and routing.publishable(DEFAULT_TAU)
        whole = [statistics.fmean(v[j * G : (j + 1) * G]) for j in range(K)]
        prev_tickets.append(math.prod(len(_prev_claimable(x, PREV_B, PREV_MARGIN))
                                      for x in whole))
        recs = [runner.record(r) for r in a.indices]
        v_unsalted_quiz = unsalted(recs)
        for r, rec in zip(a.indices, recs, strict=True):
            if r not in table_unsalted:
                table_unsalted[r] = unsalted([rec])[0]
                rows = values([rec] * 8, [random_salt() for _ in range(8)])
                table_salted[r] = [statistics.fmean(x[g] for x in rows) for g in range(G)]
        hits_u += all(is_accepted(quantize(table_unsalted[r], B), x, B)
                      for r, x in zip(a.indices, v_unsalted_quiz, strict=True))
        ok = [is_accepted(quantize(table_salted[r][g], B), v[j * G + g], B)
              for j, r in enumerate(a.indices) for g in range(G)]
        value_hits_s += sum(ok)
        hits_s += all(ok)
    tickets_per_pass = guard_ok / n_quiz
    tickets_expected = (1 - 2 * DEFAULT_MARGIN) ** p.values

    # ---- (b) guess odds per value, salt unknown and salt-conditioned -----------------------
    other_bits = [b for b in (9, 10, 11, 12, 13) if b != B]
    # [bits][segment][record]: the same losses on other grids (for choosing B)
    p_val_bits: dict[int, list[list[float]]] = {b: [[] for _ in range(G)] for b in other_bits}
    p_val_cond_bits: dict[int, list[list[float]]] = {b: [[] for _ in range(G)]
                                                     for b in other_bits}
    p_val: list[list[float]] = [[] for _ in range(G)]  # [segment][record]
    p_val_cond: dict[int, list[list[float]]] = {j: [[] for _ in range(G)] for j in (1, 2)}
    p_prev: list[float] = []  # previous design: whole-sample mean, floor-or-ceiling
    corr_factor: list[float] = []
    spread: list[float] = []
    chunk = 32
    for _ in range(n_rec):
        rec = runner.record(rng.randrange(runner.n_records))
        rows: list[list[float]] = []
        for start in range(0, n_salt, chunk):
            n = min(chunk, n_salt - start)
            rows += values([rec] * n, [random_salt() for _ in range(n)])
        for g in range(G):
            fs = [x[g] * scale for x in rows]
            p_val[g].append(best_bucket_rate(fs, 1))
            spread.append(statistics.pstdev(fs))
            for b in other_bits:
                p_val_bits[b][g].append(best_bucket_rate([x[g] * (1 << b) for x in rows], 1))
        p_prev.append(best_bucket_rate([statistics.fmean(x) * (1 << PREV_B) for x in rows], 2))
        if G > 1:
            c = torch.corrcoef(torch.tensor(rows, dtype=torch.float64).T).tolist()
            corr_factor.append(1 / math.sqrt(max(det(c), 1e-12)))
        for j in (1, 2):
            fixed = tuple(rng.randrange(256) for _ in range(j))
            crow = values([rec] * n_cond, [random_salt(fixed) for _ in range(n_cond)])
            for g in range(G):
                p_val_cond[j][g].append(best_bucket_rate([x[g] * scale for x in crow], 1))
                for b in other_bits:
                    rate = best_bucket_rate([x[g] * (1 << b) for x in crow], 1)
                    if j == 1:
                        p_val_cond_bits[b][g].append(rate)
                    else:  # the forger's better of the two conditionings, per record
                        p_val_cond_bits[b][g][-1] = max(p_val_cond_bits[b][g][-1], rate)
    p_value = [statistics.fmean(x) for x in p_val]
    p_value_cond = {j: [statistics.fmean(x) for x in p_val_cond[j]] for j in p_val_cond}
    p_best = [max(p_value[g], p_value_cond[1][g], p_value_cond[2][g]) for g in range(G)]
    corr = statistics.fmean(corr_factor) if corr_factor else 1.0
    p_sample = min(1.0, math.prod(p_best) * corr)
    p_guess = p_sample**K
    p_guess_by_bits = {B: p_guess}
    for b in other_bits:
        pv = [max(statistics.fmean(p_val_bits[b][g]), statistics.fmean(p_val_cond_bits[b][g]))
              for g in range(G)]
        p_guess_by_bits[b] = min(1.0, math.prod(pv) * corr) ** K

    # ---- (d) low precision: bfloat16 floors ------------------------------------------------
    bf16_hits = bf16_total = 0
    try:
        import copy

        model_bf16 = copy.deepcopy(model).to(torch.bfloat16)
        for i in range(min(n_quiz, 40)):
            a = runner.attempt(ctx.epoch_key, keccak256(b"bf16" + i.to_bytes(8, "big")), i)
            exact = sample_losses(model, a.batch, S, G)
            approx = sample_losses(model_bf16, a.batch, S, G)
            for x, y in zip(exact, approx, strict=True):
                bf16_hits += is_accepted(quantize(y, B), x, B)
                bf16_total += 1
        del model_bf16
    except (RuntimeError, TypeError) as exc:  # a CPU without bf16 kernels: not measured
        print(f"bf16 not measured: {exc}", file=sys.stderr)
    bf16_rate = max(bf16_hits, 1) / bf16_total if bf16_total else None

    # ---- costing ---------------------------------------------------------------------------
    h_over_f = args.keccak_ns * 1e-9 / (f_ms * 1e-3)
    row_cost = 1 / (K * (S + L))

    def strategy_ratios(T: float, c: float, p_ok: float) -> tuple[dict[int, float], float]:
        checked = {d: T * (c + h_over_f + 1 / d) / p_ok for d in DIFFICULTIES}
        return checked, T * (c + h_over_f) / p_ok

    strategies: dict[str, dict[str, Any]] = {}
    for name, c, p_ok in [
        ("guess", 0.0, p_guess),
        *([("bf16", 1 / BF16_SPEEDUP, bf16_rate ** p.values)] if bf16_rate else []),
    ]:
        checked, blind = strategy_ratios(tickets_per_pass, c, p_ok)
        strategies[name] = {"compute_share": c, "p_success": p_ok, "blind": blind,
                            "checked": {f"{d:.0e}": r for d, r in checked.items()}}
    curve = {d: min(min(s["blind"], s["checked"][f"{d:.0e}"]) for s in strategies.values())
             for d in DIFFICULTIES}
    # (c) partial evaluation: c_j segments of sample j computed, the rest guessed; the best mix
    # for each number of guessed values (blind, i.e. its lowest cost at any difficulty)
    partial: dict[int, dict[str, Any]] = {}
    for cs in itertools.product(range(G + 1), repeat=K):
        guessed = sum(G - c for c in cs)
        if guessed == 0:
            continue  # computing everything is mining (margin_free_miner_advantage), not forging
        cost = sum((S + c * L // G) * row_cost for c in cs if c)
        p_ok = math.prod(min(1.0, math.prod(p_best[c:]) * (corr if c == 0 else 1.0))
                         for c in cs)
        ratio = tickets_per_pass * (cost + h_over_f) / p_ok
        if guessed not in partial or ratio < partial[guessed]["blind"]:
            partial[guessed] = {"blind": ratio, "compute_share": cost, "p_success": p_ok,
                                "segments_computed_per_sample": list(cs)}

    # previous design (same passes): K values, window 2, up to 2**K tickets per pass
    prev_T = statistics.fmean(prev_tickets)
    prev_p = statistics.fmean(p_prev) ** K
    prev_checked, prev_blind = strategy_ratios(prev_T, 0.0, prev_p)
    prev_curve = {d: min(prev_blind, prev_checked[d]) for d in DIFFICULTIES}
    prev_curve_checked = prev_checked

    report: dict[str, Any] = {
        "bench": "quiz_attacks",
        "quick": args.quick,
        "params": p.to_dict(),
        "load_average": os.getloadavg()[0],
        "forward_pass_ms": round(f_ms, 3),
        "forward_pass_ms_measured": round(f_ms_measured, 3),
        "forger_keccak_ns": args.keccak_ns,
        "cpu_keccak_ns_python": round(cpu_keccak_ns, 1),
        "h_over_f": h_over_f,
        "quizzes": n_quiz,
        "miner_margin_steps": DEFAULT_MARGIN,
        "clear_fraction": clear / n_quiz,
        "tickets_per_pass": tickets_per_pass,
        "tickets_per_pass_expected_no_guard": tickets_expected,
        "table_records": len(table_unsalted),
        "table_hits_unsalted": hits_u,
        "table_hits_salted": hits_s,
        "table_value_hits_salted": value_hits_s,
        "table_values": n_quiz * p.values,
        "guess_records": n_rec,
        "guess_salts_per_record": n_salt,
        "guess_cond_salts_per_record": n_cond,
        "salted_loss_spread_median_steps": statistics.median(spread),
        "p_value_salt_unknown": p_value,
        "p_value_last_salt_byte_known": p_value_cond[1],
        "p_value_last_two_salt_bytes_known": p_value_cond[2],
        "p_value_used": p_best,
        "segment_correlation_factor": corr,
        "p_sample": p_sample,
        "p_guess": p_guess,
        "p_guess_by_grid_bits": {str(b): x for b, x in sorted(p_guess_by_bits.items())},
        "margin_free_miner_advantage": 1 / tickets_per_pass if tickets_per_pass else None,
        "bf16_value_hit_rate": bf16_rate,
        "strategies": strategies,
        "forged_over_honest_by_difficulty": {f"{d:.0e}": r for d, r in curve.items()},
        "forged_over_honest_at_1e10": curve[10**10],
        "partial_by_values_guessed": {str(n): partial[n] for n in sorted(partial)},
        "partial_min_ratio": min(x["blind"] for x in partial.values()),
        "forged_over_honest_checked_by_difficulty": strategies["guess"]["checked"],
        "forged_over_honest_floor": min(s["blind"] for s in strategies.values()),
        "difficulty_below": crossings(curve),
        "previous_design": {
            "tickets_per_pass": prev_T,
            "p_value": statistics.fmean(p_prev),
            "p_guess": prev_p,
            "forged_over_honest_by_difficulty": {f"{d:.0e}": r for d, r in prev_curve.items()},
            "forged_over_honest_checked_by_difficulty": {
                f"{d:.0e}": r for d, r in prev_curve_checked.items()},
            "difficulty_below": crossings(prev_curve),
            "difficulty_below_checked": crossings(prev_curve_checked),
        },
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    print(json.dumps(report, sort_keys=True))
    return 0


def _prev_claimable(v: float, grid_bits: int, margin: float) -> tuple[int, ...]:
    """The previous rule's claimable values: floor and/or ceiling at least `margin` inside."""
    f = v * (1 << grid_bits)
    lo = math.floor(f)
    frac = f - lo
    if frac == 0:
        return (lo,)
    return tuple(q for q, ok in ((lo, frac < 1 - margin), (lo + 1, frac > margin)) if ok)


if __name__ == "__main__":
    sys.exit(main())
