"""Golden vectors against the committed genesis model and dataset: fixed (sealHash, nonce) give
fixed q values, mixHash and loss hash, and fixed seals verify.  Any change to the consensus
output (selection, salts, loss positions, model assets, quantisation, packing) fails here.

Honest machines may differ from the machine that wrote the vectors in the last float bits
(≤ 0.003 grid steps measured by bench/quiz_agreement.py), so the losses are compared within
0.05 steps and q exactly unless the golden loss sits that close to a grid boundary.  There are
K·G committed values per attempt (K samples × G segments).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from poai.model.dataset import file_sha256
from poai.quiz.context import QuizContext, losses_for
from poai.quiz.genesis import genesis_context
from poai.quiz.params import QuizParams
from poai.quiz.reduce import is_accepted, loss_hash, pack_q, quantize
from poai.quiz.seal import InvalidSeal, verify_seal

GOLDEN: dict[str, Any] = json.loads((Path(__file__).parent / "golden" / "genesis.json").read_text())
TOL_STEPS = 0.05


@pytest.fixture(scope="module")
def ctx() -> QuizContext:
    c = genesis_context(bytes.fromhex(GOLDEN["epoch_key"]),
                        QuizParams.from_dict(GOLDEN["params"]))
    assert c.manifest_hash == GOLDEN["manifest_hash"], "genesis model changed: regenerate?"
    assert file_sha256(c.dataset_path) == GOLDEN["dataset_sha256"], "genesis dataset changed"
    return c


@pytest.mark.parametrize(
    "row", GOLDEN["attempts"], ids=lambda r: f"{r['seal_hash'][:4]}-{r['nonce']}"
)
def test_attempt_golden(ctx: QuizContext, row: dict[str, Any]) -> None:
    sh, nonce = bytes.fromhex(row["seal_hash"]), row["nonce"]
    v = losses_for(ctx, sh, nonce)
    scale = 1 << ctx.params.grid_bits
    for j, (now, then, q) in enumerate(zip(v, row["losses"], row["q"], strict=True)):
        assert abs(now - then) * scale <= TOL_STEPS, f"value {j}: loss {now} vs golden {then}"
        f = then * scale
        if min(f % 1, 1 - f % 1) > TOL_STEPS:
            assert quantize(now, ctx.params.grid_bits) == q
            assert is_accepted(q, now, ctx.params.grid_bits)
    mix = pack_q(row["q"])
    assert mix.hex() == row["mix_hash"]
    assert hex(loss_hash(sh, nonce, mix)) == row["lhat"]


@pytest.mark.parametrize("seal", GOLDEN["seals"], ids=lambda s: s["seal_hash"][:4])
def test_golden_seal_verifies(ctx: QuizContext, seal: dict[str, Any]) -> None:
    sh, mix = bytes.fromhex(seal["seal_hash"]), bytes.fromhex(seal["mix_hash"])
    verify_seal(ctx, sh, seal["nonce"], mix, seal["difficulty"])
    # the same seal one nonce later is not valid
    with pytest.raises(InvalidSeal):
        verify_seal(ctx, sh, seal["nonce"] + 1, mix, seal["difficulty"])
