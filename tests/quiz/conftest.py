"""Fixtures for the quiz tests: golden vectors and small on-disk quiz assets.

The small assets are a freshly initialised (seeded) 2-layer model in a temporary blob store and
an encrypted dataset of random records: enough to exercise the protocol end to end in seconds.
Consensus output itself is pinned by the golden vectors against the committed genesis assets.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).parent / "golden"


def _load(name: str) -> Any:
    return json.loads((GOLDEN / name).read_text())


@pytest.fixture(scope="session")
def pure_golden() -> Any:
    return _load("pure.json")


TINY_SPEC_ARGS: dict[str, int] = {
    "hidden_size": 64, "intermediate_size": 64, "num_hidden_layers": 2, "num_local_experts": 4,
    "num_attention_heads": 4, "num_key_value_heads": 4}


def tiny_model(tied_router: bool = False) -> Any:
    """The small seeded model; `tied_router`: layer 0's router has expert 0 at logit 0 and
    experts 1..3 within a few float32 ulps of each other, so every token's 2nd and 3rd logits
    are within ~1e-6 (a near-tie the routing guard must catch)."""
    import torch
    from poai.model.config import ModelSpec, build_model

    torch.manual_seed(1234)
    model = build_model(ModelSpec(**TINY_SPEC_ARGS))
    if tied_router:
        w = model.model.layers[0].mlp.gate.weight
        with torch.no_grad():
            v = w[1].clone()
            w[0].zero_()
            for e in range(1, w.shape[0]):
                w[e] = v * (1 + 3e-7 * e)
    return model


@pytest.fixture(scope="session")
def tiny_ctx(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A QuizContext over a small random model and a 50-record encrypted dataset."""
    from poai.model.dataset import encrypt_records
    from poai.model.snapshot import save_model
    from poai.model.store import BlobStore
    from poai.quiz.context import QuizContext
    from poai.quiz.epoch import epoch_key
    from poai.quiz.params import QuizParams

    root = tmp_path_factory.mktemp("quiz-assets")
    manifest = save_model(BlobStore(root / "model"), tiny_model())
    rng = random.Random(99)
    text = b"the quick brown fox jumps over the lazy dog; " * 2
    records = [bytes(rng.choice(text) for _ in range(32)) for _ in range(50)]
    key = bytes(range(32))
    (root / "data.poaids").write_bytes(encrypt_records(key, 32, records))
    params = QuizParams(k=4, salt_len=8, grid_bits=12, sample_len=32, epoch_blocks=10)
    return QuizContext(params, epoch_key(bytes(32), 0), manifest, str(root / "model"),
                       str(root / "data.poaids"), key)


@pytest.fixture(scope="session")
def tied_ctx(tiny_ctx: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """tiny_ctx with the near-tied layer-0 router of tiny_model(tied_router=True)."""
    import dataclasses

    from poai.model.snapshot import save_model
    from poai.model.store import BlobStore

    root = tmp_path_factory.mktemp("quiz-tied")
    manifest = save_model(BlobStore(root / "model"), tiny_model(tied_router=True))
    return dataclasses.replace(tiny_ctx, manifest_hash=manifest, blob_dir=str(root / "model"))


@pytest.fixture(scope="session")
def clear_attempt() -> Any:
    """_clear_attempt, for tests that need seals an honest miner would publish."""
    return _clear_attempt


def _clear_attempt(ctx: Any, seal_hash: bytes, nonce: int) -> tuple[int, list[int]]:
    """The first nonce from `nonce` on (stepping by 1,000) whose every value clears the miner's
    margin, and its q values: the attempts an honest miner publishes, which every verifier
    (batched or not, any worker) floors the same way."""
    from poai.quiz.context import losses_for
    from poai.quiz.miner import DEFAULT_MARGIN
    from poai.quiz.reduce import claimable_values

    for n in range(nonce, nonce + 100_000, 1000):
        choices = [claimable_values(v, ctx.params.grid_bits, DEFAULT_MARGIN)
                   for v in losses_for(ctx, seal_hash, n)]
        if all(choices):
            return n, [c[0] for c in choices]
    raise AssertionError("no clear attempt in 100 tries")
