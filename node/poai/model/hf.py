"""HuggingFace checkpoints in and out: a local Mixtral directory (``config.json`` + safetensors)
to trunk + expert blobs + manifest, and a snapshot back to a directory ``transformers`` loads.

Only the Mixtral architecture maps onto a snapshot (a trunk plus per-layer expert slots, top-k
routing); anything else is refused with the name of what is supported. Weights become float32
(the consensus dtype). Nothing is downloaded: the directory must hold the files.

The node's tokenizer is byte-level (ids 0..255, BOS 257, EOS 258): a checkpoint trained with
another tokenizer imports and runs, but its answers through the node's API will be noise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import MixtralForCausalLM

from poai.model.config import ModelConfigError, build_model, consensus_mode, spec_of
from poai.model.snapshot import assemble_model, read_manifest, save_model
from poai.model.store import BlobStore

SUPPORTED = "Mixtral (config.json model_type 'mixtral', MixtralForCausalLM)"


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be imported, or a snapshot that cannot be exported."""


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]


def read_hf_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{directory}: no config.json (not a HuggingFace checkpoint)"
                              ) from None
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable ({exc})") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: not a JSON object")
    model_type = config.get("model_type")
    archs = config.get("architectures") or []
    if model_type != "mixtral" or (archs and "MixtralForCausalLM" not in archs):
        raise CheckpointError(
            f"unsupported architecture {', '.join(archs) or '?'} (model_type {model_type!r}): "
            f"supported is {SUPPORTED}")
    if config.get("sliding_window") is not None:
        raise CheckpointError("sliding-window attention is not supported (sliding_window must "
                              "be null)")
    if config.get("hidden_act", "silu") != "silu":
        raise CheckpointError(f"hidden_act {config.get('hidden_act')!r} is not supported (silu)")
    heads, hidden = config.get("num_attention_heads"), config.get("hidden_size")
    head_dim = config.get("head_dim")
    if head_dim is not None and isinstance(heads, int) and isinstance(hidden, int) \
            and head_dim * heads != hidden:
        raise CheckpointError(f"head_dim {head_dim} x {heads} heads != hidden_size {hidden}")
    if not list(directory.glob("*.safetensors")):
        raise CheckpointError(f"{directory}: no .safetensors weights (pickled .bin weights are "
                              "not loaded)")
    return config


def import_checkpoint(directory: str | Path, store: BlobStore) -> dict[str, Any]:
    """Blobs and manifest of a local Mixtral checkpoint, written into ``store``."""
    directory = Path(directory)
    read_hf_config(directory)
    _quiet_transformers()
    try:
        hf = MixtralForCausalLM.from_pretrained(directory, dtype=torch.float32,
                                                local_files_only=True, use_safetensors=True)
    except (OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{directory}: cannot load the weights: {exc}") from exc
    try:
        spec = spec_of(hf)
    except ModelConfigError as exc:
        raise CheckpointError(f"{directory}: {exc}") from exc
    model = build_model(spec)
    try:
        model.load_state_dict(hf.state_dict(), strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{directory}: weights do not fit the architecture: {exc}"
                              ) from exc
    manifest = save_model(store, consensus_mode(model))
    m = read_manifest(store, manifest)
    return {"manifest": manifest, "store": str(store.root), "config": spec.to_dict(),
            "blobs": len(set(m.blob_hashes())) + 1,
            "bytes": sum(store.size(h) for h in set(m.blob_hashes())) + store.size(manifest)}


def export_checkpoint(store: BlobStore, manifest_hash: str, directory: str | Path) -> Path:
    """Write the snapshot as a HuggingFace Mixtral directory (config.json + model.safetensors)."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise CheckpointError(f"{directory} exists and is not empty")
    model = assemble_model(store, manifest_hash)
    _quiet_transformers()
    model.config.use_cache = True  # a plain transformers user expects generate() to cache
    model.config.architectures = ["MixtralForCausalLM"]
    model.save_pretrained(directory, safe_serialization=True)
    return directory
