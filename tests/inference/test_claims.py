"""A market worker's claim from the inference engine passes INFERENCE_CHECK; forged ones do not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from poai.chain.inference import JobSnapshot
from poai.consensus import inference_check as ic
from poai.consensus.inference_check import Decoding, Fault, MalformedCall, check_claim
from poai.inference.claims import generate_claim
from poai.inference.engine import InferenceEngine, SnapshotRef
from poai.model.config import set_consensus_threads
from poai.model.genesis import GENESIS_MODEL_DIR, genesis_manifest_hash, genesis_store
from poai.model.snapshot import load_model

GENESIS_IDS = tuple(tuple(1 + layer * 8 + e for e in range(8)) for layer in range(4))


def test_engine_claims_pass_the_check_and_forgeries_fail() -> None:
    set_consensus_threads()
    digest = genesis_manifest_hash()
    snap = JobSnapshot(1, digest, str(GENESIS_MODEL_DIR), GENESIS_IDS)
    engine = InferenceEngine(lambda: SnapshotRef(digest, str(GENESIS_MODEL_DIR)))
    model = load_model(genesis_store(), digest)
    jobs = [(b"Proof of work ", Decoding(16, 0, 1_000_000, 0)),
            (b"A chain ", Decoding(16, 900, 950_000, 3)),
            (b"x", Decoding(3, 1_500, 1_000_000, 2**64 - 1))]
    for prompt, decoding in jobs:
        claim = generate_claim(engine, snap, prompt, decoding)
        assert claim.snapshot_id == 1 and 1 <= len(claim.output) <= decoding.max_tokens
        assert sum(claim.counts) == (len(prompt) + len(claim.output)) * 4 * 2
        v = check_claim(model, GENESIS_IDS, claim)
        assert v.holds and v.counts == claim.counts, v
        again = generate_claim(engine, snap, prompt, decoding)
        assert again == claim  # the seed pins the answer
        counts = (claim.counts[0] + 1, *claim.counts[1:])
        assert check_claim(model, GENESIS_IDS, replace(claim, counts=counts)).fault \
            == Fault.WRONG_COUNT
    with pytest.raises(MalformedCall, match="prompt"):
        generate_claim(engine, snap, b"x" * (ic.MAX_PROMPT_BYTES + 1), jobs[0][1])
    with pytest.raises(MalformedCall, match="maxTokens"):
        generate_claim(engine, snap, b"x", Decoding(0, 0, 1_000_000, 0))


def test_answers_that_stop_with_eos_pass(tmp_path: Path) -> None:
    """A model that often stops (EOS's output row boosted): seeded answers that end with EOS
    pass, and the same answer cut before the EOS or continued after it does not."""
    import torch
    from poai.model.snapshot import save_model
    from poai.model.store import BlobStore
    from poai.model.tokenizer import EOS_ID
    from support.tinymodel import TINY_SPEC, tiny_model

    model = tiny_model(99)
    with torch.no_grad():
        model.lm_head.weight[EOS_ID] = model.lm_head.weight[65] * 0 + 0.6
    store = BlobStore(tmp_path / "blobs")
    digest = save_model(store, model)
    ids = tuple(tuple(100 + 4 * layer + e for e in range(TINY_SPEC.num_local_experts))
                for layer in range(TINY_SPEC.num_hidden_layers))
    snap = JobSnapshot(7, digest, str(store.root), ids)
    engine = InferenceEngine(lambda: SnapshotRef(digest, str(store.root)))
    stopped = 0
    for seed in range(12):
        claim = generate_claim(engine, snap, b"ab", Decoding(20, 1_000, 1_000_000, seed))
        assert check_claim(model, ids, claim).holds
        if claim.output[-1] != EOS_ID:
            continue
        stopped += 1
        if len(claim.output) > 1:
            cut = replace(claim, output=claim.output[:-1])
            assert check_claim(model, ids, cut).fault == Fault.WRONG_END
        more = replace(claim, output=(*claim.output, 65))
        assert check_claim(model, ids, more).fault == Fault.WRONG_END
    assert stopped >= 3
