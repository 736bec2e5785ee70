import dataclasses
import pickle
from typing import Any

import pytest
import torch
from poai.quiz.context import QuizContext, QuizRunner, load_runner, losses_for
from poai.quiz.params import QuizParams
from poai.quiz.salt import salt_tokens
from poai.quiz.select import attempt_seed, record_indices


def test_context_validates_fields(tiny_ctx: QuizContext) -> None:
    for field, bad in [("epoch_key", bytes(31)), ("dataset_key", b"k"),
                       ("manifest_hash", "AB" * 32), ("manifest_hash", "00")]:
        with pytest.raises(ValueError):
            dataclasses.replace(tiny_ctx, **{field: bad})
    with pytest.raises(TypeError):
        dataclasses.replace(tiny_ctx, params={"k": 4})


def test_context_is_picklable(tiny_ctx: QuizContext) -> None:
    assert pickle.loads(pickle.dumps(tiny_ctx)) == tiny_ctx


def test_attempt_inputs_follow_the_protocol(tiny_ctx: QuizContext) -> None:
    runner = load_runner(tiny_ctx)
    sh, nonce = bytes(range(32)), 77
    a = runner.attempt(tiny_ctx.epoch_key, sh, nonce)
    s = attempt_seed(sh, nonce)
    p = tiny_ctx.params
    assert a.seed == s
    assert a.indices == record_indices(s, tiny_ctx.epoch_key, p.k, 50)
    assert a.batch.shape == (p.k, p.salt_len + p.sample_len)
    for j in range(p.k):
        row = a.batch[j].tolist()
        assert tuple(row[: p.salt_len]) == salt_tokens(s, tiny_ctx.epoch_key, j, p.salt_len, 0, 256)
        assert row[p.salt_len :] == runner.dataset.record_tokens(a.indices[j])


def test_losses_deterministic_and_salt_sensitive(tiny_ctx: QuizContext) -> None:
    sh = bytes(32)
    v1 = losses_for(tiny_ctx, sh, 5)
    assert v1 == losses_for(tiny_ctx, sh, 5)
    assert len(v1) == 16 and all(v > 0 for v in v1)  # K = 4 samples x G = 4 segments
    # a different nonce gives different records/salts, hence different losses
    assert v1 != losses_for(tiny_ctx, sh, 6)


def test_same_record_different_salt_changes_loss(tiny_ctx: QuizContext) -> None:
    runner = load_runner(tiny_ctx)
    rec = list(runner.record(3))
    salts = [[1] * 8, [200] * 8]
    batch = torch.tensor([s + rec for s in salts])
    from poai.quiz.loss import sample_losses

    v = sample_losses(runner.model, batch, 8)
    assert v[0] != v[1]


def test_loader_caches_runner(tiny_ctx: QuizContext) -> None:
    assert load_runner(tiny_ctx) is load_runner(tiny_ctx)
    other = dataclasses.replace(tiny_ctx, epoch_key=bytes([1] * 32))
    assert load_runner(other) is load_runner(tiny_ctx)  # epoch key is per call, assets shared


class _Records:
    def __init__(self, n: int, length: int) -> None:
        self.n, self.length = n, length

    def __len__(self) -> int:
        return self.n

    def record_tokens(self, index: int) -> list[int]:
        return [index % 256] * self.length


def test_short_record_is_a_clear_error(tiny_ctx: QuizContext) -> None:
    model = load_runner(tiny_ctx).model
    runner = QuizRunner(QuizParams(sample_len=64), model, _Records(3, 10))
    with pytest.raises(ValueError, match="fewer than sample_len"):
        runner.attempt(bytes(32), bytes(32), 0)


def test_empty_dataset_rejected(tiny_ctx: QuizContext) -> None:
    with pytest.raises(ValueError, match="no records"):
        QuizRunner(QuizParams(), load_runner(tiny_ctx).model, _Records(0, 64))


def test_missing_assets_are_clear_errors(tiny_ctx: QuizContext, tmp_path: Any) -> None:
    from poai.model.dataset import DatasetError
    from poai.model.store import BlobError

    with pytest.raises(BlobError, match="f" * 64):
        load_runner(dataclasses.replace(tiny_ctx, manifest_hash="f" * 64))
    with pytest.raises(DatasetError):
        load_runner(dataclasses.replace(tiny_ctx, dataset_path=str(tmp_path / "nope")))
    with pytest.raises(DatasetError, match="wrong key"):
        load_runner(dataclasses.replace(tiny_ctx, dataset_key=bytes(32)))


def test_losses_many_match_one_by_one_on_the_genesis_model() -> None:
    """Several attempts in one forward pass give each attempt's losses up to last-bit noise
    (a taller batch blocks the matmuls differently), far inside the 1/8-step claim margin,
    and every golden q is still accepted."""
    import json
    from pathlib import Path

    from poai.quiz.context import losses_many_for
    from poai.quiz.genesis import genesis_context
    from poai.quiz.reduce import is_accepted

    golden = json.loads((Path(__file__).parent / "golden" / "genesis.json").read_text())
    ctx = genesis_context(bytes.fromhex(golden["epoch_key"]),
                          QuizParams.from_dict(golden["params"]))
    rows = golden["attempts"]
    attempts = [(bytes.fromhex(r["seal_hash"]), r["nonce"]) for r in rows]
    many = losses_many_for(ctx, attempts)
    assert len(many) == len(rows)
    scale = 1 << ctx.params.grid_bits
    for (sh, nonce), batched, row in zip(attempts, many, rows, strict=True):
        single = losses_for(ctx, sh, nonce)
        assert len(batched) == ctx.params.values
        assert max(abs(a - b) for a, b in zip(batched, single, strict=True)) * scale < 0.01
        # exact acceptance: every golden q whose loss is not within 0.01 steps of an edge
        assert all(is_accepted(q, v, ctx.params.grid_bits)
                   for q, v, g in zip(row["q"], batched, row["losses"], strict=True)
                   if 0.01 < (g * scale) % 1 < 0.99)


def test_losses_many_keeps_order_and_handles_empty(tiny_ctx: QuizContext) -> None:
    runner = load_runner(tiny_ctx)
    attempts = [(bytes([n] * 32), n) for n in (5, 1, 9)]
    many = runner.losses_many(tiny_ctx.epoch_key, attempts)
    singles = [runner.losses(tiny_ctx.epoch_key, sh, n) for sh, n in attempts]
    for batched, single in zip(many, singles, strict=True):
        assert batched == pytest.approx(single, abs=1e-5)
    assert many[0] != many[1]  # rows are not mixed up
    assert runner.losses_many(tiny_ctx.epoch_key, []) == []
