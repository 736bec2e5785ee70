"""The quality gate's pure functions (poai.quiz.gate): claim encoding, nearest claims,
floor-or-ceiling acceptance, the decision, and golden vectors on the genesis model.

Regenerate the golden file only for a deliberate consensus change:
    .venv/bin/python tests/quiz/test_gate.py --regenerate
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from poai.quiz.gate import (
    Claim,
    GateParams,
    MalformedClaim,
    accepts,
    claim_for,
    decode_claim,
    encode_claim,
    judge,
    nearest_q,
    validation_windows,
    window_losses,
)

GOLDEN = Path(__file__).parent / "golden" / "gate.json"
B = 10
PARAMS = GateParams(windows=4, grid_bits=B, min_delta=Fraction(1, 500))


def test_nearest_claims_and_floor_or_ceiling() -> None:
    step = 2.0 ** -B
    assert nearest_q(3 * step, B) == 3
    assert nearest_q(3.49 * step, B) == 3 and nearest_q(3.5 * step, B) == 4
    assert accepts(3, 3.2 * step, B) and accepts(4, 3.2 * step, B)
    assert not accepts(2, 3.2 * step, B) and not accepts(5, 3.2 * step, B)
    assert accepts(3, 3 * step, B) and not accepts(4, 3 * step, B)  # integral: floor = ceil
    assert not accepts(3, float("nan"), B) and not accepts(0, -1.0, B)
    with pytest.raises(ValueError):
        nearest_q(float("inf"), B)
    with pytest.raises(ValueError):
        nearest_q(70.0, B)  # above the uint16 grid


def test_an_honest_claim_survives_verifier_noise_below_half_a_step() -> None:
    step = 2.0 ** -B
    for frac in (0.0, 0.1, 0.49, 0.5, 0.51, 0.9, 0.999):
        v = (1000 + frac) * step
        q = nearest_q(v, B)
        for noise in (-0.49, -0.01, 0.0, 0.01, 0.49):
            assert accepts(q, v + noise * step, B), (frac, noise)


def test_claim_encoding_round_trips_and_rejects_bad_lengths() -> None:
    c = Claim((1, 2, 3, 65535), (0, 9, 8, 7))
    data = encode_claim(c)
    assert len(data) == 16 and data[:2] == b"\x00\x01" and data[6:8] == b"\xff\xff"
    assert decode_claim(data, 4) == c
    with pytest.raises(MalformedClaim):
        decode_claim(data[:-1], 4)
    with pytest.raises(MalformedClaim):
        decode_claim(data, 3)
    with pytest.raises(MalformedClaim):
        encode_claim(Claim((1,), (2, 3)))
    with pytest.raises(MalformedClaim):
        encode_claim(Claim((70000,), (2,)))
    assert c.delta_q() == (1 + 2 + 3 + 65535) - (0 + 9 + 8 + 7)
    assert c.delta(B) == Fraction(c.delta_q(), 4 * 1024)


def _losses(qs: list[float]) -> list[float]:
    return [q * 2.0 ** -B for q in qs]


def test_judge_accepts_a_true_claim_and_names_every_failure() -> None:
    base = _losses([3000.2, 3100.7, 2900.4, 3050.0])
    new = _losses([2995.1, 3090.3, 2897.6, 3044.9])
    claim = encode_claim(claim_for(base, new, B))
    v = judge(claim, base, new, PARAMS)
    assert v.accepted and v.mismatches == 0, v.reason
    assert v.delta == Fraction((3000 + 3101 + 2900 + 3050) - (2995 + 3090 + 2898 + 3045), 4096)
    # Another honest node, last bits apart: same decision.
    nudged = [x + 3e-7 for x in new]
    assert judge(claim, base, nudged, PARAMS).accepted
    # A false claim: one new value two steps better than this node computes.
    forged = claim_for(base, new, B)
    forged = Claim(forged.base, (forged.new[0] - 2, *forged.new[1:]))
    v = judge(encode_claim(forged), base, new, PARAMS)
    assert not v.accepted and v.mismatches == 1 and v.reason.startswith("false claim")
    assert "new window 0" in v.reason
    # True but too small an improvement.
    tiny = _losses([2999.9, 3100.5, 2900.4, 3050.0])
    v = judge(encode_claim(claim_for(base, tiny, B)), base, tiny, PARAMS)
    assert not v.accepted and "below the minimum" in v.reason and v.delta is not None
    # A worse model claiming to be worse is still rejected (delta < 0 < minimum).
    v = judge(encode_claim(claim_for(new, base, B)), new, base, PARAMS)
    assert not v.accepted and v.delta is not None and v.delta < 0
    # Malformed.
    v = judge(claim[:-2], base, new, PARAMS)
    assert not v.accepted and v.reason.startswith("malformed claim") and v.delta is None
    assert not judge(b"", base, new, PARAMS).accepted


def test_minimum_delta_is_compared_exactly() -> None:
    params = GateParams(windows=1, grid_bits=B, min_delta=Fraction(2, 1024))
    base, new = _losses([100.0]), _losses([98.0])  # exactly 2 steps = the minimum
    assert judge(encode_claim(claim_for(base, new, B)), base, new, params).accepted
    new = _losses([98.4])  # claims 98: still exactly the minimum
    assert judge(encode_claim(claim_for(base, new, B)), base, new, params).accepted
    new = _losses([98.6])  # claims 99: one step
    assert not judge(encode_claim(claim_for(base, new, B)), base, new, params).accepted


def _genesis_losses(windows: int | None = None) -> tuple[Any, list[float]]:
    from poai.chain.config import load_genesis_config
    from poai.chain.quality_gate import gate_params, validation_text
    from poai.model.genesis import genesis_manifest_hash, genesis_store
    from poai.model.snapshot import load_model

    params = gate_params(load_genesis_config())
    w = validation_windows(validation_text(), params)
    model = load_model(genesis_store(), genesis_manifest_hash())
    return params, window_losses(model, w[:windows] if windows else w)


def golden_vectors() -> dict[str, Any]:
    """The genesis model's claim values on the chain's validation windows."""
    from poai.chain.quality_gate import validation_text
    from poai.model.genesis import genesis_manifest_hash

    params, losses = _genesis_losses()
    qs = [nearest_q(v, params.grid_bits) for v in losses]
    windows = validation_windows(validation_text(), params)
    return {
        "manifest": genesis_manifest_hash(),
        "windows": params.windows,
        "grid_bits": params.grid_bits,
        "min_delta": str(params.min_delta),
        "validation_sha256": hashlib.sha256(validation_text()).hexdigest(),
        "windows_sha256": hashlib.sha256(windows.numpy().tobytes()).hexdigest(),
        "q": qs,
        "claim_sha256": hashlib.sha256(encode_claim(Claim(tuple(qs), tuple(qs)))).hexdigest(),
    }


def test_golden_genesis_claim() -> None:
    """The chain's gate parameters and windows are pinned, and this machine's recomputation
    accepts the golden claim of the genesis model (floor-or-ceiling, as every node must).
    Under CI=true: the first 16 windows."""
    from poai.chain.quality_gate import validation_text

    want = json.loads(GOLDEN.read_text())
    n = 16 if os.environ.get("CI") == "true" else None
    params, losses = _genesis_losses(n)
    assert (params.windows, params.grid_bits, str(params.min_delta)) == \
        (want["windows"], want["grid_bits"], want["min_delta"])
    assert hashlib.sha256(validation_text()).hexdigest() == want["validation_sha256"]
    windows = validation_windows(validation_text(), params)
    assert hashlib.sha256(windows.numpy().tobytes()).hexdigest() == want["windows_sha256"]
    qs = want["q"][: len(losses)]
    bad = [i for i, (q, v) in enumerate(zip(qs, losses, strict=True))
           if not accepts(q, v, params.grid_bits)]
    assert not bad, f"windows {bad} no longer accept the golden claim"
    assert hashlib.sha256(encode_claim(Claim(tuple(want["q"]), tuple(want["q"])))).hexdigest() \
        == want["claim_sha256"]


def test_window_losses_are_the_quiz_loss_per_window() -> None:
    import torch
    import torch.nn.functional as F
    from poai.model.genesis import genesis_manifest_hash, genesis_store
    from poai.model.snapshot import load_model

    model = load_model(genesis_store(), genesis_manifest_hash())
    text = bytes(range(32, 127)) * 10
    windows = validation_windows(text, GateParams(windows=3, grid_bits=B, min_delta=Fraction(0)))
    got = window_losses(model, windows, batch_size=2)
    with torch.inference_mode():
        logits = model(input_ids=windows[:, :-1]).logits
    ce = F.cross_entropy(logits.transpose(1, 2), windows[:, 1:], reduction="none").mean(dim=1)
    assert got == pytest.approx([float(x) for x in ce], abs=2e-6)
    assert len(got) == 3


if __name__ == "__main__":
    if sys.argv[1:] == ["--regenerate"]:
        GOLDEN.write_text(json.dumps(golden_vectors(), indent=1) + "\n")
        print(f"wrote {GOLDEN}")
    else:
        print(json.dumps(golden_vectors(), indent=1))
