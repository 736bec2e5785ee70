"""Selective expert loading on the genesis model: bytes loaded vs the whole model.

Prints one JSON object. For each case a fresh SelectiveModel (trunk only) runs the input and the
bytes it had to read (manifest + trunk + routed experts, all hash-checked) are compared with the
whole snapshot; the logits are checked bit-equal to the fully loaded model's. Also times the
full model on a quiz-shaped batch (K=4 x (8 salt + 64 data) tokens, one thread) for scale.

Usage: ETH_HASH_BACKEND=pysha3 .venv/bin/python bench/selective_loading.py [--cases N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from poai.model.config import set_consensus_threads
from poai.model.genesis import VALIDATION_TEXT, genesis_manifest_hash, genesis_store
from poai.model.selective import SelectiveModel
from poai.model.snapshot import load_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=16, help="inputs per case kind")
    args = parser.parse_args()
    set_consensus_threads()
    store, h = genesis_store(), genesis_manifest_hash()
    full = load_model(store, h)
    text = torch.tensor(list(VALIDATION_TEXT.read_bytes()), dtype=torch.long)
    stride = (text.numel() - 129) // args.cases

    def run(length: int) -> dict[str, object]:
        fractions, experts, equal = [], [], True
        total = 0
        for c in range(args.cases):
            ids = text[c * stride : c * stride + length][None, :]
            sel = SelectiveModel(store, h)
            with torch.no_grad():
                equal &= torch.equal(sel.model(input_ids=ids).logits, full(input_ids=ids).logits)
            fractions.append(sel.fraction_loaded())
            experts.append(len(sel.loaded_experts()))
            total = sel.total_bytes
        return {"tokens": length, "fraction_mean": round(statistics.mean(fractions), 4),
                "fraction_min": round(min(fractions), 4), "fraction_max": round(max(fractions), 4),
                "bytes_loaded_mean": int(statistics.mean(fractions) * total),
                "experts_loaded_mean": round(statistics.mean(experts), 2),
                "logits_bit_equal": bool(equal)}

    one, prompt = run(1), run(128)
    spec = full.config
    batch = text[: 4 * 72].reshape(4, 72)
    with torch.no_grad():
        for _ in range(5):
            full(input_ids=batch)
        reps, t0 = 50, time.perf_counter()
        for _ in range(reps):
            full(input_ids=batch)
        forward_ms = (time.perf_counter() - t0) / reps * 1000
    sel = SelectiveModel(store, h)
    print(json.dumps({
        "bench": "selective_loading",
        "manifest": h,
        "experts": spec.num_hidden_layers * spec.num_local_experts,
        "top_k": spec.num_experts_per_tok,
        "parameters": sum(p.numel() for p in full.parameters()),
        "whole_model_bytes": sel.total_bytes,
        "trunk_bytes": store.size(sel.manifest.trunk),
        "one_token_step": one,
        "prompt_128_tokens": prompt,
        "cases": args.cases,
        "full_forward_ms_k4x72_1thread": round(forward_ms, 2),
    }))


if __name__ == "__main__":
    main()
