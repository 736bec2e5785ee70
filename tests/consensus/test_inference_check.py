"""INFERENCE_CHECK on the genesis model: golden vectors (claims + verdicts + replay fingerprints,
tests/consensus/golden/inference_check.json) that fail on any numeric change, and the rules.

Regenerate (only when the model or the rule changes on purpose):
    ETH_HASH_BACKEND=pysha3 .venv/bin/python tests/consensus/test_inference_check.py
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from poai.consensus import inference_check as ic
from poai.consensus.inference_check import Decoding, Fault, JobClaim, check_claim
from poai.model.tokenizer import BOS_ID, EOS_ID

GOLDEN = Path(__file__).parent / "golden" / "inference_check.json"
GENESIS_IDS = tuple(tuple(1 + layer * 8 + e for e in range(8)) for layer in range(4))
JOBS = [  # prompt, max_tokens, temperature_milli, top_p_micro, seed
    (b"The history of ", 12, 0, 1_000_000, 0),
    (b"def main():\n", 10, 0, 1_000_000, 0),
    (b"", 6, 0, 1_000_000, 0),
    (b"Once upon a time", 12, 800, 1_000_000, 7),
    (b"The ", 12, 1_000, 900_000, 2**64 - 1),
    (b"import ", 10, 300, 500_000, 12345),
]


def genesis_model() -> Any:
    from poai.model.config import set_consensus_threads
    from poai.model.genesis import genesis_manifest_hash, genesis_store
    from poai.model.snapshot import load_model

    set_consensus_threads()
    return load_model(genesis_store(), genesis_manifest_hash())


def honest_claim(model: Any, prompt: bytes, d: Decoding) -> JobClaim:
    """The rule's answer by full recomputation at every step (no KV cache, no engine)."""
    out: list[int] = []
    for i in range(d.max_tokens):
        logits, _ = ic.forward(model, [BOS_ID, *prompt, *out])
        t = ic.choose(logits[-1], d, i)
        out.append(t)
        if t == EOS_ID:
            break
    _, router = ic.forward(model, ic.replay_ids(prompt, out))
    counts = ic.routed_counts(router, 2, GENESIS_IDS)
    ids = tuple(sorted(counts))
    return JobClaim(1, prompt, d, tuple(out), ids, tuple(counts[i] for i in ids))


def low_token(logits: Any) -> int:
    """A byte far from the top (the allowed byte with the lowest logit)."""
    row = logits[:256]
    return int(row.argmin())


def forgeries(model: Any, claim: JobClaim) -> list[tuple[str, JobClaim]]:
    p = len(claim.prompt)
    logits, _ = ic.forward(model, ic.replay_ids(claim.prompt, claim.output))
    out = list(claim.output)
    i = min(2, len(out) - 1)
    wrong = [*out[:i], low_token(logits[p + i]), *out[i + 1:]]
    forged = [("wrong_token", replace(claim, output=tuple(wrong)))]
    if len(out) > 1:
        forged.append(("truncated", replace(claim, output=tuple(out[:-1]))))
    forged.append(("truncated_eos", replace(claim, output=(*out[:1], EOS_ID))))
    forged.append(("extended", replace(claim, output=(*out, 65))))
    counts = list(claim.counts)
    counts[0] += 1
    forged.append(("inflated_count", replace(claim, counts=tuple(counts))))
    moved = list(claim.counts)
    moved[0] += 3
    moved[-1] -= 3
    forged.append(("moved_count", replace(claim, counts=tuple(moved))))
    return forged


def fingerprint(model: Any, claim: JobClaim) -> list[float]:
    """Logit of each claimed token (within the vocabulary), rounded to 1e-4: moves with any
    numeric change of the replay beyond float noise."""
    p = len(claim.prompt)
    fed = [t for t in claim.output if t < ic.VOCAB_SIZE]
    logits, _ = ic.forward(model, ic.replay_ids(claim.prompt, [*fed, EOS_ID])[: p + 1 + len(fed)])
    return [round(float(logits[p + i, t]), 4) for i, t in enumerate(fed) if p + i < len(logits)]


def _claim_json(c: JobClaim) -> dict[str, Any]:
    d = c.decoding
    return {"snapshot": c.snapshot_id, "prompt": c.prompt.hex(),
            "decoding": [d.max_tokens, d.temperature_milli, d.top_p_micro, d.seed],
            "output": list(c.output), "expertIds": list(c.expert_ids), "counts": list(c.counts)}


def _claim_of(j: dict[str, Any]) -> JobClaim:
    return JobClaim(j["snapshot"], bytes.fromhex(j["prompt"]), Decoding(*j["decoding"]),
                    tuple(j["output"]), tuple(j["expertIds"]), tuple(j["counts"]))


def build_golden() -> list[dict[str, Any]]:
    model = genesis_model()
    cases: list[dict[str, Any]] = []
    for prompt, *dec in JOBS:
        honest = honest_claim(model, prompt, Decoding(*dec))
        for name, claim in [("honest", honest), *forgeries(model, honest)]:
            v = check_claim(model, GENESIS_IDS, claim)
            assert (v.fault == Fault.NONE) == (name == "honest"), (name, v)
            cases.append({"name": name, "claim": _claim_json(claim),
                          "verdict": [int(v.fault), v.index, list(v.expert_ids), list(v.counts)],
                          "logits": fingerprint(model, claim)})
    return cases


@pytest.fixture(scope="module")
def model() -> Any:
    return genesis_model()


def test_golden_vectors(model: Any) -> None:
    cases = json.loads(GOLDEN.read_text())
    assert len(cases) >= 40
    for case in cases:
        claim = _claim_of(case["claim"])
        v = check_claim(model, GENESIS_IDS, claim)
        got = [int(v.fault), v.index, list(v.expert_ids), list(v.counts)]
        assert got == case["verdict"], case["name"]
        assert fingerprint(model, claim) == pytest.approx(case["logits"], abs=2e-4), case["name"]


def test_tokens_outside_the_vocabulary_are_wrong_tokens(model: Any) -> None:
    claim = _claim_of(json.loads(GOLDEN.read_text())[0]["claim"])
    for bad in (ic.VOCAB_SIZE, 0xFFFF, 256, 257):  # beyond the vocabulary, PAD, BOS
        v = check_claim(model, GENESIS_IDS, replace(claim, output=(*claim.output[:1], bad)))
        assert (v.fault, v.index) == (Fault.WRONG_TOKEN, 1)


def test_end_rules(model: Any) -> None:
    claim = _claim_of(json.loads(GOLDEN.read_text())[0]["claim"])  # greedy, max_tokens 12
    assert claim.output[-1] != EOS_ID and len(claim.output) == 12
    assert check_claim(model, GENESIS_IDS, replace(claim, output=())).fault == Fault.WRONG_END
    v = check_claim(model, GENESIS_IDS, replace(claim, output=claim.output[:5]))
    assert (v.fault, v.index) == (Fault.WRONG_END, 5)
    v = check_claim(model, GENESIS_IDS, replace(claim, output=(*claim.output[:3], EOS_ID, 65)))
    assert v.fault == Fault.WRONG_END and v.index == 3  # the EOS the rule did not choose
    v = check_claim(model, GENESIS_IDS, replace(
        claim, decoding=replace(claim.decoding, max_tokens=4), output=claim.output[:6]))
    assert (v.fault, v.index) == (Fault.WRONG_END, 4)


def test_count_claims_in_canonical_form(model: Any) -> None:
    claim = _claim_of(json.loads(GOLDEN.read_text())[0]["claim"])
    assert check_claim(model, GENESIS_IDS, claim).holds
    swapped = replace(claim, expert_ids=tuple(reversed(claim.expert_ids)),
                      counts=tuple(reversed(claim.counts)))
    assert check_claim(model, GENESIS_IDS, swapped).fault == Fault.WRONG_COUNT
    outside = replace(claim, expert_ids=(*claim.expert_ids[:-1], 999))
    assert check_claim(model, GENESIS_IDS, outside).fault == Fault.WRONG_COUNT
    v = check_claim(model, GENESIS_IDS, replace(claim, counts=claim.counts[:-1]))
    assert v.fault == Fault.WRONG_COUNT and sum(v.counts) == (len(claim.prompt) + 12) * 4 * 2


if __name__ == "__main__":
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(build_golden(), indent=1) + "\n")
    print(f"wrote {GOLDEN}")
