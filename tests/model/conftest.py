from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from poai.model.config import ModelSpec, build_model, consensus_mode
from poai.model.snapshot import save_model
from poai.model.store import BlobStore
from transformers import MixtralForCausalLM

# Small enough for fast tests, same structure as the genesis model.
TINY_SPEC = ModelSpec(hidden_size=32, intermediate_size=32, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                      num_experts_per_tok=2, max_position_embeddings=256)


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # The consensus setting, and two threads in one process collapse on a busy 2-core machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_spec() -> ModelSpec:
    return TINY_SPEC


@pytest.fixture
def flip_byte() -> Callable[[Path, int], None]:
    return _flip_byte


@pytest.fixture
def tiny_model() -> MixtralForCausalLM:
    torch.manual_seed(1234)
    return consensus_mode(build_model(TINY_SPEC))


@pytest.fixture
def tiny_snapshot(tmp_path: Path, tiny_model: MixtralForCausalLM
                  ) -> tuple[BlobStore, str, MixtralForCausalLM]:
    store = BlobStore(tmp_path / "blobs")
    return store, save_model(store, tiny_model), tiny_model
