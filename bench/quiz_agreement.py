"""Honest-agreement benchmark: do honest nodes with different compute settings accept the quiz
seals an honest miner publishes?

Each quiz i (seal hash keccak256("agreement" ‖ i), nonce i, a fixed epoch key, the genesis model
and dataset) is computed, with its router logits, under several honest settings, each ISA in its
own process (torch reads ATEN_CPU_CAPABILITY at import):

  ref          consensus mode: 1 thread, the K samples as one batch, best CPU kernels
  threads2     2 intra-op threads
  one_by_one   each sample as its own batch of 1
  isa_default  ATEN_CPU_CAPABILITY=default (no vector ISA)
  isa_avx2     ATEN_CPU_CAPABILITY=avx2            (if the CPU has it)
  isa_avx512   ATEN_CPU_CAPABILITY=avx512          (if the CPU has it)

For every other setting s and quiz i, in both directions (miner = ref, verifier = s and the
reverse), the miner applies the honest publication rule: its routing-margin guard
(poai.quiz.routing, DEFAULT_TAU) must pass — quizzes it drops are counted as `dropped_by_guard`
and not published — and it claims only poai.quiz.reduce.claimable_values with the default
margin.  Every published claim must be accepted by the verifier: `rejections` counts quizzes
where one is not (must be 0).  Each quiz commits K·G values (K samples × G segments) and a miner
publishes a quiz only when all of them clear the bucket edges; to test the rule on every value,
a quiz counts as rejected when ANY of its clear values is rejected (whether or not the others
clear), a superset of the rejections of the quizzes actually publishable
(`fully_clear_published_quizzes`).  `claim_rejections_by_margin` and
`clear_fraction_by_margin` show the same for other candidate margins.  For comparison,
`rejections_without_guard` publishes every quiz and `unsafe_claim_rejections` claims every
floor blindly (margin 0).

Router figures: `routing_flips` counts (quiz, setting) pairs whose expert choice differs anywhere
(`routing_flips_published`: those the guard let through, must be 0);
`max_router_logit_divergence` is the largest |logit − logit'| between ref and a setting over
quizzes whose routing agreed everywhere (a flip changes every later layer), and
`max_gap_divergence` the largest difference of a decision's k-th vs (k+1)-th gap there: tau's
safety factor is DEFAULT_TAU over it.  `guard_drop_fraction_by_tau` is the share of quizzes the
ref miner's guard would drop for other candidate tau values.  `max_divergence_steps` is the
largest |v − v'| · 2**B over the values of quizzes the guard publishes.

    .venv/bin/python bench/quiz_agreement.py            # full: 2,100 quizzes (≥ 2,000 published)
    .venv/bin/python bench/quiz_agreement.py --quick    # bounded: a few dozen quizzes
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
EPOCH_SEED = b"\x42" * 32
CANDIDATE_TAUS = (1e-6, 3e-6, 1e-5, 2e-5, 3e-5, 4e-5, 5e-5, 1e-4)
CANDIDATE_MARGINS = (0.0, 1 / 256, 1 / 64, 1 / 32, 1 / 16, 1 / 8)


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


def worker(modes: list[str], n: int, outdir: str) -> None:
    """Compute quizzes 0..n-1 under each of `modes` in this process (one ISA, fixed at torch
    import); save {"losses": (n, K) float64, "logits": (n, layers, K, T, E) float32} per mode to
    outdir/<mode>.pt and print one JSON object {"capability": ...}."""
    import torch
    from poai.quiz._hash import keccak256
    from poai.quiz.context import load_runner
    from poai.quiz.epoch import epoch_key
    from poai.quiz.genesis import genesis_context
    from poai.quiz.routing import forward_with_router_logits

    ctx = genesis_context(epoch_key(EPOCH_SEED, 0))
    runner = load_runner(ctx)
    salt_len, segments = ctx.params.salt_len, ctx.params.segments
    attempts = [runner.attempt(ctx.epoch_key, keccak256(b"agreement" + i.to_bytes(8, "big")), i)
                for i in range(n)]
    for mode in modes:
        torch.set_num_threads(2 if mode == "threads2" else 1)
        losses, logits = [], []
        for a in attempts:
            if mode == "one_by_one":
                parts = [forward_with_router_logits(runner.model, a.batch[j : j + 1], salt_len,
                                                    segments)
                         for j in range(a.batch.shape[0])]
                losses.append([v for p in parts for v in p[0]])
                logits.append(torch.cat([p[1] for p in parts], dim=1))
            else:
                v, lg = forward_with_router_logits(runner.model, a.batch, salt_len, segments)
                losses.append(v)
                logits.append(lg)
        torch.save({"losses": torch.tensor(losses, dtype=torch.float64),
                    "logits": torch.stack(logits)}, os.path.join(outdir, f"{mode}.pt"))
    torch.set_num_threads(1)
    json.dump({"capability": torch.backends.cpu.get_cpu_capability()}, sys.stdout)


def run_variant(isa: str | None, modes: list[str], n: int, outdir: str,
                out: IO[str]) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if isa is not None:
        env["ATEN_CPU_CAPABILITY"] = isa
    cmd = [sys.executable, __file__, "--worker", "--modes", ",".join(modes), "--n", str(n),
           "--outdir", outdir]
    # Output to a file, not a pipe: a finished worker must not block on a full pipe buffer.
    return subprocess.Popen(cmd, env=env, stdout=out, text=True, cwd=REPO)


def _claims_rejected(miner: list[float], verifier: list[float], grid_bits: int,
                     margin: float) -> bool:
    from poai.quiz.reduce import claimable_values, is_accepted

    return any(not is_accepted(q, b, grid_bits)
               for a, b in zip(miner, verifier, strict=True)
               for q in claimable_values(a, grid_bits, margin))


def compare(ref: dict[str, Any], other: dict[str, Any], grid_bits: int, margin: float,
            tau: float, top_k: int, salt_len: int) -> dict[str, Any]:
    """Both directions of ref vs other under the publication rule (see module docstring)."""
    import torch
    from poai.quiz.routing import relevant_mask, routing_gaps

    scale = 1 << grid_bits
    la: list[list[float]] = ref["losses"].tolist()
    lb: list[list[float]] = other["losses"].tolist()
    ga, gb = ref["gap"], other["gap"]
    rejections = without_guard = unsafe = dropped_other = identical = 0
    flips = flips_published = 0
    max_div = max_logit_div = max_gap_div = 0.0
    worst: dict[str, Any] = {}
    rejected_without_guard: list[dict[str, Any]] = []
    samples = 0
    for i, (va, vb) in enumerate(zip(la, lb, strict=True)):
        pub_a, pub_b = ga[i] >= tau, gb[i] >= tau
        dropped_other += not pub_b
        xa, xb = ref["logits"][i], other["logits"][i]
        ia = torch.topk(xa, top_k, dim=-1).indices.sort(dim=-1).values
        ib = torch.topk(xb, top_k, dim=-1).indices.sort(dim=-1).values
        mask = relevant_mask(*xa.shape[:3], salt_len)
        flipped = bool(((ia != ib).any(dim=-1) & mask).any())
        if flipped:
            flips += 1
            flips_published += pub_a or pub_b
        else:
            max_logit_div = max(max_logit_div, float((xa - xb).abs().max()))
            gap_div = (routing_gaps(xa, top_k) - routing_gaps(xb, top_k)).abs()
            max_gap_div = max(max_gap_div, float(gap_div.max()))
        bad = {"a": _claims_rejected(va, vb, grid_bits, margin),
               "b": _claims_rejected(vb, va, grid_bits, margin)}
        if bad["a"] or bad["b"]:
            without_guard += 1
            rejected_without_guard.append({"quiz": i, "gap_ref": ga[i], "gap_other": gb[i],
                                           "flipped": flipped})
        if (pub_a and bad["a"]) or (pub_b and bad["b"]):
            rejections += 1
        unsafe += (_claims_rejected(va, vb, grid_bits, 0.0)
                   or _claims_rejected(vb, va, grid_bits, 0.0))
        if pub_a or pub_b:
            for j, (a, b) in enumerate(zip(va, vb, strict=True)):
                samples += 1
                identical += a == b
                if abs(a - b) * scale > max_div:
                    max_div = abs(a - b) * scale
                    worst = {"quiz": i, "sample": j, "v_ref": a, "v_other": b}
    return {"rejections": rejections, "rejections_without_guard": without_guard,
            "rejected_without_guard": rejected_without_guard[:10],
            "unsafe_claim_rejections": unsafe, "dropped_by_guard": dropped_other,
            "routing_flips": flips, "routing_flips_published": flips_published,
            "max_divergence_steps": max_div,
            "max_router_logit_divergence": max_logit_div, "max_gap_divergence": max_gap_div,
            "bit_identical_fraction": identical / samples if samples else 1.0, "worst": worst}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, default=None, help="quizzes (default 2100, quick 24)")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--modes", default="batch", help=argparse.SUPPRESS)
    ap.add_argument("--outdir", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    n = args.n if args.n is not None else (24 if args.quick else 2100)
    if args.worker:
        worker(args.modes.split(","), n, args.outdir)
        return 0

    t0 = time.perf_counter()
    capability: dict[str, str] = {}
    files: dict[str, Path] = {}
    tmp = Path(tempfile.mkdtemp(prefix="quiz-agreement-"))
    try:
        pending = isa_variants(args.quick)
        while pending:  # two processes at a time: the machine has 2 cores
            group, pending = pending[:2], pending[2:]
            procs = []
            for isa in group:
                modes = ["batch", "one_by_one", "threads2"] if isa is None else ["batch"]
                outdir = tmp / (isa or "ref")
                outdir.mkdir()
                out = tempfile.TemporaryFile("w+")
                procs.append((isa, modes, outdir, out,
                              run_variant(isa, modes, n, str(outdir), out)))
            for isa, modes, outdir, out, p in procs:
                p.wait(timeout=7200)
                if p.returncode != 0:
                    raise SystemExit(f"ISA variant {isa} failed (exit {p.returncode})")
                out.seek(0)
                cap = json.load(out)["capability"]
                out.close()
                for mode in modes:
                    name = "ref" if (isa, mode) == (None, "batch") else (
                        mode if isa is None else f"isa_{isa}")
                    files[name] = outdir / f"{mode}.pt"
                    capability[name] = cap
        report = summarise(files, capability, n, args.quick)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(report, sort_keys=True))
    return 0


def summarise(files: dict[str, Path], capability: dict[str, str], n: int,
              quick: bool) -> dict[str, Any]:
    import torch
    from poai.quiz.genesis import devnet_params
    from poai.quiz.miner import DEFAULT_MARGIN
    from poai.quiz.reduce import claimable_values
    from poai.quiz.routing import DEFAULT_TAU, routing_margin

    params = devnet_params()
    grid_bits, salt_len, top_k = params.grid_bits, params.salt_len, 2

    def load(name: str) -> dict[str, Any]:
        d: dict[str, Any] = torch.load(files[name])
        d["gap"] = [routing_margin(x, top_k, salt_len).gap for x in d["logits"]]
        return d

    ref = load("ref")
    gaps = ref["gap"]
    per_setting = {}
    total = {"rejections": 0, "rejections_without_guard": 0, "unsafe_claim_rejections": 0,
             "routing_flips": 0, "routing_flips_published": 0}
    maxes = {"max_divergence_steps": 0.0, "max_router_logit_divergence": 0.0,
             "max_gap_divergence": 0.0}
    for name in sorted(files):
        if name == "ref":
            continue
        c = compare(ref, load(name), grid_bits, DEFAULT_MARGIN, DEFAULT_TAU, top_k, salt_len)
        c["capability"] = capability[name]
        per_setting[name] = c
        for key in total:
            total[key] += c[key]
        for key in maxes:
            maxes[key] = max(maxes[key], c[key])
    dropped = sum(g < DEFAULT_TAU for g in gaps)
    finite = sorted(g for g in gaps if math.isfinite(g))
    # Value-level view of the clearance rule: for candidate margins, the share of quizzes whose
    # every value clears the bucket edges (those the ref miner could publish), and the claims
    # (clear values, guard passed) any setting rejects, over all quizzes.
    others = {name: load(name)["losses"].tolist() for name in files if name != "ref"}
    ref_losses: list[list[float]] = ref["losses"].tolist()
    clear_by_margin: dict[str, float] = {}
    value_rejections_by_margin: dict[str, int] = {}
    for m in CANDIDATE_MARGINS:
        clear_by_margin[f"{m:g}"] = sum(
            all(claimable_values(v, grid_bits, m) for v in vs) for vs in ref_losses) / n
        value_rejections_by_margin[f"{m:g}"] = sum(
            _claims_rejected(ref_losses[i], ls[i], grid_bits, m)
            + _claims_rejected(ls[i], ref_losses[i], grid_bits, m)
            for ls in others.values() for i in range(n) if gaps[i] >= DEFAULT_TAU)
    fully_published = sum(
        gaps[i] >= DEFAULT_TAU and all(claimable_values(v, grid_bits, DEFAULT_MARGIN)
                                       for v in ref_losses[i]) for i in range(n))
    return {
        "bench": "quiz_agreement",
        "quick": quick,
        "quizzes": n,
        "published_quizzes": n - dropped,
        "dropped_by_guard": dropped,
        "dropped_fraction": dropped / n,
        "tau": DEFAULT_TAU,
        "tau_over_max_gap_divergence": (DEFAULT_TAU / maxes["max_gap_divergence"]
                                        if maxes["max_gap_divergence"] else None),
        "guard_drop_fraction_by_tau": {f"{t:g}": sum(g < t for g in gaps) / n
                                       for t in CANDIDATE_TAUS},
        "min_routing_gap": finite[0] if finite else None,
        "samples_per_quiz": params.k,
        "values_per_quiz": params.values,
        "value_claims_checked": n * params.values * (len(files) - 1) * 2,
        "fully_clear_published_quizzes": fully_published,
        "clear_fraction_by_margin": clear_by_margin,
        "claim_rejections_by_margin": value_rejections_by_margin,
        "grid_bits": grid_bits,
        "settings": sorted(files),
        "ref_capability": capability["ref"],
        "comparisons": n * (len(files) - 1),
        "miner_margin_steps": DEFAULT_MARGIN,
        **total,
        **maxes,
        "max_divergence_nats": maxes["max_divergence_steps"] / (1 << grid_bits),
        "per_setting": per_setting,
    }


if __name__ == "__main__":
    sys.exit(main())
