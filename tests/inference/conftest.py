from __future__ import annotations

from pathlib import Path

import pytest
from poai.model.snapshot import save_model
from poai.model.store import BlobStore
from support.tinymodel import tiny_model
from transformers import MixtralForCausalLM


@pytest.fixture
def tiny_store(tmp_path: Path) -> tuple[BlobStore, str, MixtralForCausalLM]:
    store = BlobStore(tmp_path / "blobs")
    model = tiny_model(1234)
    return store, save_model(store, model), model
