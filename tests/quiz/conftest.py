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


@pytest.fixture(scope="session")
def tiny_ctx(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A QuizContext over a small random model and a 50-record encrypted dataset."""
    import torch
    from poai.model.config import ModelSpec, build_model
    from poai.model.snapshot import save_model
    from poai.model.store import BlobStore
    from poai.quiz.context import QuizContext
    from poai.quiz.dataset import encrypt_records
    from poai.quiz.epoch import epoch_key
    from poai.quiz.params import QuizParams

    root = tmp_path_factory.mktemp("quiz-assets")
    torch.manual_seed(1234)
    spec = ModelSpec(hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                     num_local_experts=4, num_attention_heads=4, num_key_value_heads=4)
    manifest = save_model(BlobStore(root / "model"), build_model(spec))
    rng = random.Random(99)
    text = b"the quick brown fox jumps over the lazy dog; " * 2
    records = [bytes(rng.choice(text) for _ in range(32)) for _ in range(50)]
    key = bytes(range(32))
    (root / "data.poaids").write_bytes(encrypt_records(key, 32, records))
    params = QuizParams(k=4, salt_len=8, grid_bits=12, sample_len=32, epoch_blocks=10)
    return QuizContext(params, epoch_key(bytes(32), 0), manifest, str(root / "model"),
                       str(root / "data.poaids"), key)
