"""Quiz mining and verification speed on the genesis model.

- bare_attempts_per_s: a bare loop of the same forward passes (prebuilt batches, one thread,
  this process): the ceiling for one core.
- attempts_per_s_1worker: poai.quiz.Miner with one worker process grinding an unreachable
  difficulty; `mining_efficiency` = attempts_per_s_1worker / bare_attempts_per_s (goal ≥ 0.9).
  The two are measured in alternating rounds (medians), so background load hits both alike.
- model_time_share: inside the worker, time in the forward pass over time in the mining loop
  (selection, salts, batch building, ticket hashing, bookkeeping): load-independent.
- attempts_per_s_total / attempts_per_s_per_core: the Miner with one worker per core.
- verify_ms / verifications_per_s_single: verify_seal in this process; verifications_per_s_parallel:
  ParallelVerifier with one worker per core.
- guard_pass_ms: the routing guard's extra forward pass with router logits (poai.quiz.routing),
  run once per found ticket, not per attempt; guard_pass_over_bare = its cost over one bare pass.
- cancel_latency_ms_{median,max}: time from Miner.cancel() to mine() returning (goal < 100 ms).

    .venv/bin/python bench/quiz_mining.py            # full
    .venv/bin/python bench/quiz_mining.py --quick    # bounded
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from typing import Any

EPOCH_SEED = b"\x17" * 32
UNREACHABLE = 1 << 250


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--rounds", type=int, default=None, help="alternating rounds (8; quick 2)")
    ap.add_argument("--seconds", type=float, default=None, help="per measurement (4; quick 1.5)")
    args = ap.parse_args()
    rounds = args.rounds or (2 if args.quick else 8)
    secs = args.seconds or (1.5 if args.quick else 4.0)
    n_verify = 8 if args.quick else 60
    n_cancel = 3 if args.quick else 20

    from poai.model.config import set_consensus_threads
    from poai.quiz._hash import keccak256
    from poai.quiz.context import load_runner
    from poai.quiz.epoch import epoch_key
    from poai.quiz.genesis import genesis_context
    from poai.quiz.loss import sample_losses
    from poai.quiz.miner import Miner
    from poai.quiz.reduce import pack_q, quantize
    from poai.quiz.routing import attempt_routing
    from poai.quiz.seal import verify_seal
    from poai.quiz.verifier import ParallelVerifier

    t_start = time.perf_counter()
    set_consensus_threads()
    ctx = genesis_context(epoch_key(EPOCH_SEED, 0))
    runner = load_runner(ctx)
    salt_len, segments = ctx.params.salt_len, ctx.params.segments
    batches = [runner.attempt(ctx.epoch_key, bytes(32), n).batch for n in range(64)]

    def bare(seconds: float) -> float:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            sample_losses(runner.model, batches[n % len(batches)], salt_len, segments)
            n += 1
        return n / (time.perf_counter() - t0)

    def mined_rate(miner: Miner, seconds: float) -> float:
        a0, t0 = miner.total_attempts(), time.perf_counter()
        miner.mine(ctx, keccak256(b"bench" + os.urandom(8)), UNREACHABLE, timeout=seconds)
        return (miner.total_attempts() - a0) / (time.perf_counter() - t0)

    def warm(miner: Miner) -> None:
        """Until every worker has booted (imports torch, loads the model) and is grinding."""
        t0 = time.perf_counter()
        while miner.total_attempts() < 3 * miner.workers:
            if time.perf_counter() - t0 > 300:
                raise SystemExit("miner workers did not start within 300 s")
            miner.mine(ctx, keccak256(b"warm"), UNREACHABLE, timeout=1.0)

    bare(0.5)  # warm up
    report: dict[str, Any] = {"bench": "quiz_mining", "quick": args.quick,
                              "workers": args.workers, "params": ctx.params.to_dict()}
    with Miner(workers=1) as m1:
        warm(m1)
        bare_rates, m1_rates = [], []
        for _ in range(rounds):
            bare_rates.append(bare(secs))
            m1_rates.append(mined_rate(m1, secs))
    report["bare_attempts_per_s"] = round(statistics.median(bare_rates), 2)
    report["model_time_share"] = round(m1.model_time_share(), 4)
    report["attempts_per_s_1worker"] = round(statistics.median(m1_rates), 2)
    report["mining_efficiency"] = round(statistics.median(m1_rates)
                                        / statistics.median(bare_rates), 3)
    report["efficiency_rounds"] = [round(m / b, 3) for m, b in zip(m1_rates, bare_rates,
                                                                  strict=True)]

    with Miner(workers=args.workers) as mw:
        warm(mw)
        rates = [mined_rate(mw, secs) for _ in range(rounds)]
        total = statistics.median(rates)
        report["attempts_per_s_total"] = round(total, 2)
        report["attempts_per_s_per_core"] = round(total / args.workers, 2)
        report["hashrate_reported"] = round(mw.hashrate(), 2)
        # cancel latency: cancel at a random point of a running mine()
        lat = []
        for i in range(n_cancel):
            done = threading.Event()

            def run(ev: threading.Event = done) -> None:
                mw.mine(ctx, bytes(32), UNREACHABLE)
                ev.set()

            th = threading.Thread(target=run)
            th.start()
            time.sleep(0.2 + 0.05 * (i % 7))
            t0 = time.perf_counter()
            mw.cancel()
            done.wait(10)
            lat.append((time.perf_counter() - t0) * 1000)
            th.join(10)
        report["cancel_latency_ms_median"] = round(statistics.median(lat), 2)
        report["cancel_latency_ms_max"] = round(max(lat), 2)

    # verification: honest seals at difficulty 1 (any q passes the target, the model check runs)
    items = []
    for n in range(n_verify):
        sh = keccak256(b"verify" + n.to_bytes(8, "big"))
        qs = [quantize(v, ctx.params.grid_bits) for v in runner.losses(ctx.epoch_key, sh, n)]
        items.append((ctx, sh, n, pack_q(qs), 1))
    t0 = time.perf_counter()
    for it in items:
        verify_seal(*it)
    single = len(items) / (time.perf_counter() - t0)
    report["verify_ms"] = round(1000 / single, 2)
    report["verifications_per_s_single"] = round(single, 2)
    with ParallelVerifier(workers=args.workers) as pv:
        pv.verify_many(items[: args.workers * 2])  # start workers, load the model
        t0 = time.perf_counter()
        res = pv.verify_many(items)
        par = len(items) / (time.perf_counter() - t0)
    if any(r is not None for r in res):
        raise SystemExit("parallel verifier rejected an honest seal")
    report["verifications_per_s_parallel"] = round(par, 2)
    # the routing guard's pass (once per found ticket)
    t0 = time.perf_counter()
    for b in batches[:10]:
        attempt_routing(runner.model, b, salt_len, segments)
    guard_ms = (time.perf_counter() - t0) * 100
    report["guard_pass_ms"] = round(guard_ms, 2)
    report["guard_pass_over_bare"] = round(guard_ms / (1000 / report["bare_attempts_per_s"]), 3)
    report["verifications"] = len(items)
    report["load_average_1m"] = os.getloadavg()[0]
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
