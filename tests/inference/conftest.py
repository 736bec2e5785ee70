from __future__ import annotations

import sys
from pathlib import Path

import pytest
from poai.model.snapshot import save_model
from poai.model.store import BlobStore
from transformers import MixtralForCausalLM

sys.path.insert(0, str(Path(__file__).parent))
from tinymodel import tiny_model  # noqa: E402


@pytest.fixture
def tiny_store(tmp_path: Path) -> tuple[BlobStore, str, MixtralForCausalLM]:
    store = BlobStore(tmp_path / "blobs")
    model = tiny_model(1234)
    return store, save_model(store, model), model
