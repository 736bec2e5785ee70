"""Honest-agreement benchmark: do honest nodes with different compute settings accept each
other's quiz seals?

Each quiz i (seal hash keccak256("agreement" ‖ i), nonce i, a fixed epoch key, the genesis model
and dataset) is computed under several honest settings, each in its own process (torch reads
ATEN_CPU_CAPABILITY at import):

  ref          consensus mode: 1 thread, the K samples as one batch, best CPU kernels
  threads2     2 intra-op threads
  one_by_one   each sample as its own batch of 1
  isa_default  ATEN_CPU_CAPABILITY=default (no vector ISA)
  isa_avx2     ATEN_CPU_CAPABILITY=avx2            (if the CPU has it)
  isa_avx512   ATEN_CPU_CAPABILITY=avx512          (if the CPU has it)

For every other setting s and quiz i, in both directions (miner = ref, verifier = s and the
reverse), every value the miner may claim (poai.quiz.reduce.claimable_values with the miner's
default margin) must be accepted by the verifier: `rejections` counts quizzes where one is not
(must be 0).  `unsafe_claim_rejections` counts the same with margin 0 (claiming floor and ceiling
blindly), which shows what the margin protects against.  `max_divergence_steps` is the largest
|v − v'| · 2**B seen.

    .venv/bin/python bench/quiz_agreement.py            # full: 2,000 quizzes
    .venv/bin/python bench/quiz_agreement.py --quick    # bounded: a few dozen quizzes
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
EPOCH_SEED = b"\x42" * 32


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def isa_variants(quick: bool) -> list[str | None]:
    """ATEN_CPU_CAPABILITY values to run (None = torch's own choice, the reference)."""
    flags = _cpu_flags()
    out: list[str | None] = [None, "default"]
    if "avx2" in flags and not quick:
        out.append("avx2")
    if "avx512f" in flags and not quick:
        out.append("avx512")
    return out


def worker(modes: list[str], n: int) -> None:
    """Compute quizzes 0..n-1 under each of `modes` in this process (one ISA, fixed at torch
    import); print one JSON object {mode: losses}."""
    import torch
    from poai.quiz._hash import keccak256
    from poai.quiz.context import load_runner
    from poai.quiz.epoch import epoch_key
    from poai.quiz.genesis import genesis_context
    from poai.quiz.loss import sample_losses

    ctx = genesis_context(epoch_key(EPOCH_SEED, 0))
    runner = load_runner(ctx)
    attempts = [runner.attempt(ctx.epoch_key, keccak256(b"agreement" + i.to_bytes(8, "big")), i)
                for i in range(n)]
    out: dict[str, Any] = {"capability": torch.backends.cpu.get_cpu_capability()}
    for mode in modes:
        torch.set_num_threads(2 if mode == "threads2" else 1)
        rows = []
        for a in attempts:
            if mode == "one_by_one":
                v = [sample_losses(runner.model, a.batch[j : j + 1], ctx.params.salt_len)[0]
                     for j in range(a.batch.shape[0])]
            else:
                v = sample_losses(runner.model, a.batch, ctx.params.salt_len)
            rows.append(v)
        out[mode] = rows
    torch.set_num_threads(1)
    json.dump(out, sys.stdout)


def run_variant(isa: str | None, modes: list[str], n: int,
                out: IO[str]) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if isa is not None:
        env["ATEN_CPU_CAPABILITY"] = isa
    cmd = [sys.executable, __file__, "--worker", "--modes", ",".join(modes), "--n", str(n)]
    # Output to a file, not a pipe: a finished worker must not block on a full pipe buffer.
    return subprocess.Popen(cmd, env=env, stdout=out, text=True, cwd=REPO)


def compare(ref: list[list[float]], other: list[list[float]], grid_bits: int,
            margin: float) -> dict[str, Any]:
    from poai.quiz.reduce import claimable_values, is_accepted

    scale = 1 << grid_bits
    rejections = unsafe = identical = 0
    max_div = 0.0
    worst: dict[str, Any] = {}
    for i, (va, vb) in enumerate(zip(ref, other, strict=True)):
        rejected = rejected_unsafe = False
        for j, (a, b) in enumerate(zip(va, vb, strict=True)):
            if abs(a - b) * scale > max_div:
                max_div = abs(a - b) * scale
                worst = {"quiz": i, "sample": j, "v_ref": a, "v_other": b}
            identical += a == b
            for miner, verifier in ((a, b), (b, a)):
                if any(not is_accepted(q, verifier, grid_bits)
                       for q in claimable_values(miner, grid_bits, margin)):
                    rejected = True
                if any(not is_accepted(q, verifier, grid_bits)
                       for q in claimable_values(miner, grid_bits, 0.0)):
                    rejected_unsafe = True
        rejections += rejected
        unsafe += rejected_unsafe
    samples = sum(len(v) for v in ref)
    return {"rejections": rejections, "unsafe_claim_rejections": unsafe,
            "max_divergence_steps": max_div, "bit_identical_fraction": identical / samples,
            "worst": worst}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None, help="quizzes (default 2000, quick 24)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--modes", default="batch", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = args.n if args.n is not None else (24 if args.quick else 2000)
    if args.worker:
        worker(args.modes.split(","), n)
        return 0

    from poai.quiz.miner import DEFAULT_MARGIN
    from poai.quiz.params import QuizParams

    grid_bits = QuizParams().grid_bits
    t0 = time.perf_counter()
    # Results keyed by setting name; the reference process also runs the thread/layout variants.
    losses: dict[str, list[list[float]]] = {}
    capability: dict[str, str] = {}
    pending = isa_variants(args.quick)
    while pending:  # two processes at a time: the machine has 2 cores
        group, pending = pending[:2], pending[2:]
        procs = []
        for isa in group:
            modes = ["batch", "one_by_one", "threads2"] if isa is None else ["batch"]
            out = tempfile.TemporaryFile("w+")
            procs.append((isa, modes, out, run_variant(isa, modes, n, out)))
        for isa, modes, out, p in procs:
            p.wait(timeout=3600)
            if p.returncode != 0:
                raise SystemExit(f"ISA variant {isa} failed (exit {p.returncode})")
            out.seek(0)
            data = json.load(out)
            out.close()
            for mode in modes:
                name = "ref" if (isa, mode) == (None, "batch") else (
                    mode if isa is None else f"isa_{isa}")
                losses[name] = data[mode]
                capability[name] = data["capability"]
    ref = losses["ref"]
    per_setting = {}
    total_rej = total_unsafe = 0
    max_div = 0.0
    for name, other in losses.items():
        if name == "ref":
            continue
        c = compare(ref, other, grid_bits, DEFAULT_MARGIN)
        c["capability"] = capability[name]
        per_setting[name] = c
        total_rej += c["rejections"]
        total_unsafe += c["unsafe_claim_rejections"]
        max_div = max(max_div, c["max_divergence_steps"])
    report = {
        "bench": "quiz_agreement",
        "quick": args.quick,
        "quizzes": n,
        "samples_per_quiz": len(ref[0]),
        "grid_bits": grid_bits,
        "settings": sorted(losses),
        "ref_capability": capability["ref"],
        "comparisons": n * (len(losses) - 1),
        "rejections": total_rej,
        "unsafe_claim_rejections": total_unsafe,
        "miner_margin_steps": DEFAULT_MARGIN,
        "max_divergence_steps": max_div,
        "max_divergence_nats": max_div / (1 << grid_bits),
        "per_setting": per_setting,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(report, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
