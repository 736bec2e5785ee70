"""Regenerate the quiz golden vectors (run only for a deliberate consensus change):

    .venv/bin/python tests/quiz/golden/generate.py            # print both files' JSON
    .venv/bin/python tests/quiz/golden/generate.py --write    # overwrite the checked-in files

pure.json: epoch keys, attempt seeds, record indices, salts, quantisation, packing, loss hashes.
genesis.json: full attempts against the committed genesis model and dataset (q, mixHash, ℓ̂).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from poai.quiz.context import SALT_COUNT, SALT_FIRST
from poai.quiz.epoch import epoch_key
from poai.quiz.reduce import loss_hash, pack_q, quantize
from poai.quiz.salt import salt_tokens
from poai.quiz.select import attempt_seed, record_indices

HERE = Path(__file__).parent
SEAL_HASHES = [bytes(32), bytes(range(32)), bytes.fromhex("ff" * 32)]
NONCES = [0, 1, 0xDEADBEEF, (1 << 64) - 1]
EPOCH_SEED = bytes.fromhex("5a" * 32)


def pure_vectors() -> dict[str, Any]:
    out: dict[str, Any] = {"epoch_keys": [], "attempts": [], "quantize": [], "loss_hashes": []}
    for seed in (bytes(32), EPOCH_SEED):
        for e in (0, 1, 7, (1 << 64) - 1):
            out["epoch_keys"].append(
                {"seed": seed.hex(), "epoch": e, "key": epoch_key(seed, e).hex()}
            )
    ek = epoch_key(EPOCH_SEED, 3)
    for sh in SEAL_HASHES:
        for n in NONCES:
            s = attempt_seed(sh, n)
            out["attempts"].append({
                "seal_hash": sh.hex(), "nonce": n, "epoch_key": ek.hex(), "seed": s.hex(),
                "indices_n1000": list(record_indices(s, ek, 4, 1000)),
                "indices_n7": list(record_indices(s, ek, 4, 7)),
                "indices_n2_255_plus_1": [str(i) for i in record_indices(s, ek, 4, (1 << 255) + 1)],
                "salts": [list(salt_tokens(s, ek, j, 8, SALT_FIRST, SALT_COUNT)) for j in range(4)],
                "salt_40_range_3_250": list(salt_tokens(s, ek, 0, 40, 3, 250)),
            })
    for v in (0.0, 1.0, 2.5, 5.569851875305176, 1.2345678, 1e-9, 0.999999940395355):
        out["quantize"].append({"v": v, "B": 12, "q": quantize(v, 12)})
    for sh in SEAL_HASHES:
        for n in NONCES[:2]:
            mix = pack_q([5000, 6000, 7, 2**16 - 1, *range(9000, 9012)])
            out["loss_hashes"].append({"seal_hash": sh.hex(), "nonce": n, "mix_hash": mix.hex(),
                                       "lhat": hex(loss_hash(sh, n, mix))})
    return out


def genesis_vectors() -> dict[str, Any]:
    from poai.quiz.context import QuizContext, losses_for
    from poai.quiz.genesis import genesis_context

    ctx: QuizContext = genesis_context(epoch_key(EPOCH_SEED, 0))
    params = ctx.params
    rows = []
    for sh in SEAL_HASHES:
        for n in NONCES:
            losses = losses_for(ctx, sh, n)
            qs = [quantize(v, params.grid_bits) for v in losses]
            mix = pack_q(qs)
            rows.append({"seal_hash": sh.hex(), "nonce": n, "losses": losses, "q": qs,
                         "mix_hash": mix.hex(), "lhat": hex(loss_hash(sh, n, mix))})
    # Seals found by a deterministic search (nonces 0, 1, ... floor-first tickets with the
    # miner's margin) at the devnet difficulty: end-to-end vectors for verify_seal.
    from poai.quiz.genesis import devnet_difficulty
    from poai.quiz.miner import DEFAULT_MARGIN
    from poai.quiz.reduce import claimable_values, find_ticket

    difficulty = devnet_difficulty()
    seals = []
    for sh in SEAL_HASHES:
        nonce = 0
        while True:
            losses = losses_for(ctx, sh, nonce)
            choices = [claimable_values(v, params.grid_bits, DEFAULT_MARGIN) for v in losses]
            mix = find_ticket(sh, nonce, choices, difficulty)
            if mix is not None:
                seals.append({"seal_hash": sh.hex(), "nonce": nonce, "mix_hash": mix.hex(),
                              "difficulty": difficulty, "losses": losses})
                break
            nonce += 1
    return {"params": params.to_dict(), "epoch_key": ctx.epoch_key.hex(),
            "manifest_hash": ctx.manifest_hash, "dataset_sha256": _dataset_sha(ctx),
            "attempts": rows, "seals": seals}


def _dataset_sha(ctx: object) -> str:
    from poai.model.dataset import file_sha256

    return file_sha256(ctx.dataset_path)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--only", choices=["pure", "genesis"])
    args = ap.parse_args()
    files = {"pure": pure_vectors, "genesis": genesis_vectors}
    for name, fn in files.items():
        if args.only and args.only != name:
            continue
        text = json.dumps(fn(), indent=1, sort_keys=True) + "\n"
        if args.write:
            (HERE / f"{name}.json").write_text(text)
        else:
            sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
