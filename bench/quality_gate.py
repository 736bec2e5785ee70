"""Quality-gate benchmark: evaluation time at activation, and agreement of honest nodes with
different compute settings on the gate's decisions (poai.quiz.gate).

Models: the genesis model and M variants, variant k = genesis with expert (k mod 8) of layer
(k mod 4) scaled by 1 + 0.25 k (elementwise, so every setting builds the same weights). Each
setting computes every model's per-window validation losses (the chain's 256 windows), each ISA
in its own process (torch reads ATEN_CPU_CAPABILITY at import):

  ref          consensus mode: 1 thread, 32 windows per forward pass, torch's best kernels
  threads2     2 intra-op threads
  one_by_one   each window as its own batch of 1
  isa_default  ATEN_CPU_CAPABILITY=default (no vector ISA)
  isa_avx2     ATEN_CPU_CAPABILITY=avx2            (if the CPU has it)
  isa_avx512   ATEN_CPU_CAPABILITY=avx512          (if the CPU has it)

Evaluations: for every variant k, two honest snapshot proposals (genesis -> k and k -> genesis:
a worse variant proposed, and the genesis model proposed over it), each claimed by a claimant in
every setting (`claim_for` on its own losses) and judged by a verifier in every setting
(`judge` with the devnet minDelta). `disagreements` counts evaluations whose decision on a claim
differs from the reference verifier's on the same claim bytes, and `honest_rejected_as_false`
honest claims a verifier called false (both must be 0); `decision_differs_by_claimant_setting`
counts evaluations of claims (made in another setting) whose decision differs from the one on
the reference claim (a rounding step moved the claimed delta across minDelta: not a
disagreement between nodes, which all judge the same bytes). False claims (the new model's
values 2 grid steps better on every window; one window 2 steps better; the base 2 steps worse
on one window) are judged in every setting: `false_accepted` must be 0. `max_divergence_steps`
is the largest |v - v_ref| * 2**B over all windows, models and settings.

Timing (`activation_s`): `SnapshotGate(case)` as a node runs it when a snapshot's activation
epoch begins: both models assembled from a blob store and evaluated, then judged (nothing
cached; one distinct variant per run).

    nice .venv/bin/python bench/quality_gate.py            # full: 10 variants
    nice .venv/bin/python bench/quality_gate.py --quick    # bounded: 2 variants, 2 ISAs

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from quiz_agreement import isa_variants  # noqa: E402 - the same ISA choice as the seal bench


def variant_model(k: int) -> Any:
    """The genesis model (k = 0) or variant k (one expert slice scaled by 1 + 0.25 k)."""
    import torch
    from poai.model.genesis import genesis_manifest_hash, genesis_store
    from poai.model.snapshot import assemble_model

    model = assemble_model(genesis_store(), genesis_manifest_hash())
    if k:
        layer, expert = k % 4, k % 8
        experts = model.model.layers[layer].mlp.experts
        with torch.no_grad():
            experts.gate_up_proj[expert] *= 1 + 0.25 * k
    return model


def worker(modes: list[str], variants: int, outdir: str) -> None:
    """Per-window losses of every model under each of `modes` (this process's ISA)."""
    import torch
    from poai.chain.config import load_genesis_config
    from poai.chain.quality_gate import gate_params, validation_text
    from poai.quiz.gate import validation_windows, window_losses

    params = gate_params(load_genesis_config())
    windows = validation_windows(validation_text(), params)
    models = [variant_model(k) for k in range(variants + 1)]
    out: dict[str, list[list[float]]] = {}
    for mode in modes:
        torch.set_num_threads(2 if mode == "threads2" else 1)
        batch = 1 if mode == "one_by_one" else 32
        out[mode] = [window_losses(m, windows, batch) for m in models]
    torch.set_num_threads(1)
    Path(outdir, f"{'_'.join(modes)}.json").write_text(json.dumps(out))
    json.dump({"capability": torch.backends.cpu.get_cpu_capability()}, sys.stdout)


def run_variant(isa: str | None, modes: list[str], variants: int, outdir: str,
                out: IO[str]) -> subprocess.Popen[str]:
    env = dict(os.environ)
    env.pop("ATEN_CPU_CAPABILITY", None)
    if isa is not None:
        env["ATEN_CPU_CAPABILITY"] = isa
    cmd = [sys.executable, __file__, "--worker", "--modes", ",".join(modes), "--variants",
           str(variants), "--outdir", outdir]
    return subprocess.Popen(cmd, env=env, stdout=out, text=True, cwd=REPO)


def activation_times(runs: int, first_variant: int) -> list[float]:
    """SnapshotGate(case) on fresh blob stores: assemble both models, evaluate, judge."""
    from poai.chain.config import load_genesis_config
    from poai.chain.quality_gate import SnapshotGate
    from poai.governance.epoch_context import GateCase
    from poai.model.snapshot import save_model
    from poai.model.store import BlobStore

    config = load_genesis_config()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(runs):
            store = BlobStore(Path(tmp) / f"s{r}")
            base = save_model(store, variant_model(0))
            new = save_model(store, variant_model(first_variant + r))
            gate = SnapshotGate(config)  # nothing cached
            case = GateCase(2, new, str(store.root), 1, base, str(store.root),
                            b"\x00" * (4 * gate.params.windows))
            t = time.perf_counter()
            gate(case)
            times.append(time.perf_counter() - t)
    return times


def summarise(results: dict[str, list[list[float]]], capability: dict[str, str],
              variants: int) -> dict[str, Any]:
    from poai.chain.config import load_genesis_config
    from poai.chain.quality_gate import gate_params
    from poai.quiz.gate import Claim, claim_for, encode_claim, judge

    params = gate_params(load_genesis_config())
    scale = 1 << params.grid_bits
    settings = sorted(results)
    ref = results["ref"]
    max_div = max(abs(a - b) * scale for s in settings for m, losses in enumerate(results[s])
                  for a, b in zip(losses, ref[m], strict=True))
    evaluations = disagreements = honest_false = accepted = changed_by_claimant = 0
    false_evals = false_accepted = 0
    deltas = []
    for k in range(1, variants + 1):
        for base_i, new_i in ((0, k), (k, 0)):
            ref_claim = encode_claim(claim_for(ref[base_i], ref[new_i], params.grid_bits))
            want = judge(ref_claim, ref[base_i], ref[new_i], params).accepted
            deltas.append(float(Claim.delta(
                claim_for(ref[base_i], ref[new_i], params.grid_bits), params.grid_bits)))
            for claimant in settings:
                c = encode_claim(claim_for(results[claimant][base_i], results[claimant][new_i],
                                           params.grid_bits))
                # Nodes judge the same claim bytes: every verifier must decide as ref does.
                agreed = judge(c, ref[base_i], ref[new_i], params).accepted
                for verifier in settings:
                    v = judge(c, results[verifier][base_i], results[verifier][new_i], params)
                    evaluations += 1
                    accepted += v.accepted
                    disagreements += v.accepted != agreed
                    honest_false += v.mismatches > 0
                    changed_by_claimant += agreed != want
            honest = claim_for(ref[base_i], ref[new_i], params.grid_bits)
            forged = [
                Claim(honest.base, tuple(max(0, q - 2) for q in honest.new)),
                Claim(honest.base, (max(0, honest.new[0] - 2), *honest.new[1:])),
                Claim((honest.base[0] + 2, *honest.base[1:]), honest.new),
            ]
            for f in forged:
                for verifier in settings:
                    v = judge(encode_claim(f), results[verifier][base_i],
                              results[verifier][new_i], params)
                    false_evals += 1
                    false_accepted += v.accepted or v.mismatches == 0
    return {
        "settings": settings, "capability": capability, "variants": variants,
        "windows": params.windows, "grid_bits": params.grid_bits,
        "min_delta": float(Fraction(params.min_delta)),
        "honest_evaluations": evaluations, "accepted": accepted,
        "disagreements": disagreements, "honest_rejected_as_false": honest_false,
        "decision_differs_by_claimant_setting": changed_by_claimant,
        "false_claim_evaluations": false_evals, "false_accepted": false_accepted,
        "max_divergence_steps": round(max_div, 6),
        "claimed_delta_range": [round(min(deltas), 6), round(max(deltas), 6)],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="2 variants, 2 ISAs (a test's size)")
    ap.add_argument("--variants", type=int, help="variant models (default 10; --quick 2)")
    ap.add_argument("--activation-runs", type=int, default=3)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--modes", help=argparse.SUPPRESS)
    ap.add_argument("--outdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    variants = args.variants or (2 if args.quick else 10)
    if args.worker:
        worker(args.modes.split(","), variants, args.outdir)
        return 0
    started = time.monotonic()
    results: dict[str, list[list[float]]] = {}
    capability: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as outdir:
        procs = []
        for isa in isa_variants(args.quick):
            modes = ["ref", "threads2", "one_by_one"] if isa is None else [f"isa_{isa}"]
            log = open(Path(outdir) / f"{modes[0]}.out", "w")  # noqa: SIM115 - closed below
            procs.append((modes, log, run_variant(isa, modes, variants, outdir, log)))
        for modes, log, proc in procs:
            if proc.wait() != 0:
                print(json.dumps({"error": f"worker {modes} failed"}))
                return 1
            log.close()
            cap = json.loads(Path(log.name).read_text())["capability"]
            for m in modes:
                capability[m] = cap
            results.update(json.loads((Path(outdir) / f"{'_'.join(modes)}.json").read_text()))
    summary = summarise(results, capability, variants)
    times = activation_times(1 if args.quick else args.activation_runs, variants + 1)
    summary["activation_s"] = [round(t, 2) for t in times]
    summary["wall_s"] = round(time.monotonic() - started, 1)
    summary["load_avg"] = os.getloadavg()[0]
    print(json.dumps(summary))
    ok = summary["disagreements"] == 0 and summary["false_accepted"] == 0 and \
        summary["honest_rejected_as_false"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
