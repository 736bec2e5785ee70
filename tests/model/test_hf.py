"""Import and export of HuggingFace Mixtral checkpoints (a tiny random one, saved locally)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from poai.model.hf import CheckpointError, export_checkpoint, import_checkpoint
from poai.model.snapshot import load_model, read_manifest
from poai.model.store import BlobError, BlobStore
from transformers import AutoModelForCausalLM, MixtralConfig, MixtralForCausalLM

CLI = [sys.executable, "-m", "poai.cli", "model"]


def _tiny_checkpoint(directory: Path, vocab: int = 300) -> MixtralForCausalLM:
    cfg = MixtralConfig(vocab_size=vocab, hidden_size=32, intermediate_size=24,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=64,
                        sliding_window=None)
    torch.manual_seed(7)
    model = MixtralForCausalLM(cfg)
    model.save_pretrained(directory)
    return model


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300)


def _logits(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits  # type: ignore[no-any-return]


def test_import_export_round_trip_logits_equal(tmp_path: Path) -> None:
    original = _tiny_checkpoint(tmp_path / "hf")
    res = _run("import", str(tmp_path / "hf"), "--store", str(tmp_path / "blobs"))
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    store = BlobStore(tmp_path / "blobs")
    manifest = read_manifest(store, out["manifest"])
    assert manifest.spec.num_local_experts == 4 and manifest.spec.vocab_size == 300
    ours = load_model(store, out["manifest"])
    ids = torch.tensor([[1, 5, 200, 42, 7, 99]])
    original.set_attn_implementation("eager")
    original.set_experts_implementation("eager")
    assert torch.equal(_logits(ours, ids), _logits(original.eval(), ids))

    res = _run("export", str(tmp_path / "out"), "--store", str(tmp_path / "blobs"),
               "--manifest", out["manifest"])
    assert res.returncode == 0, res.stderr
    eager = AutoModelForCausalLM.from_pretrained(tmp_path / "out", attn_implementation="eager",
                                                 experts_implementation="eager")
    assert torch.equal(_logits(eager, ids), _logits(ours, ids))
    default = AutoModelForCausalLM.from_pretrained(tmp_path / "out")  # sdpa, grouped_mm
    assert torch.allclose(_logits(default, ids), _logits(ours, ids), atol=1e-5)
    with pytest.raises(CheckpointError, match="not empty"):
        export_checkpoint(store, out["manifest"], tmp_path / "out")


@pytest.mark.parametrize("config, message", [
    ({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}, "supported is Mixtral"),
    ({"model_type": "mixtral", "sliding_window": 4096}, "sliding"),
])
def test_unsupported_checkpoint_clear_error(tmp_path: Path, config: dict, message: str
                                            ) -> None:
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        import_checkpoint(tmp_path / "hf", BlobStore(tmp_path / "blobs"))
    assert not (tmp_path / "blobs").exists()


def test_cli_error_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    res = _run("import", str(tmp_path / "hf"), "--store", str(tmp_path / "blobs"))
    assert res.returncode == 2
    assert "supported is Mixtral" in res.stderr and res.stderr.count("\n") == 1


def test_import_bad_inputs(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")
    with pytest.raises(CheckpointError, match="no config.json"):
        import_checkpoint(tmp_path / "nowhere", store)
    _tiny_checkpoint(tmp_path / "small", vocab=100)  # smaller than the byte vocabulary
    with pytest.raises(CheckpointError, match="vocab_size"):
        import_checkpoint(tmp_path / "small", store)
    with pytest.raises(BlobError, match="missing"):
        export_checkpoint(store, "ab" * 32, tmp_path / "x")
