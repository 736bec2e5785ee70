"""Selective loading: the trunk is loaded up front, an expert only when the router picks it.

A forward pre-hook on each layer's experts module sees the router's ``top_k_index`` before the
expert loop runs, fetches the missing experts from the blob store (hash-checked by the store,
shape-checked here) and copies them into the stacked parameters. Experts that were never loaded
hold NaN, so an unloaded expert could never contribute silently. The computation is the same
eager loop as the full model's, so logits are bit-equal.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import torch
from torch import nn
from transformers import MixtralForCausalLM

from poai.model.blobs import (
    EXPERT_PARAMS,
    check_expert_tensors,
    check_trunk_tensors,
    decode_tensors,
    is_expert_key,
    trunk_tensors,
)
from poai.model.config import build_model, consensus_mode
from poai.model.snapshot import read_manifest
from poai.model.store import BlobStore

log = logging.getLogger(__name__)


class SelectiveModel:
    """A snapshot's model whose experts are fetched from ``store`` on first use."""

    def __init__(self, store: BlobStore, manifest_hash: str) -> None:
        self.store = store
        self.manifest_hash = manifest_hash
        self.manifest = read_manifest(store, manifest_hash)
        spec = self.manifest.spec
        manifest_size = len(self.manifest.to_bytes())
        self.total_bytes = manifest_size + sum(store.size(h) for h in self.manifest.blob_hashes())
        self._loaded: set[tuple[int, int]] = set()
        self._lock = threading.Lock()

        model = build_model(spec)
        trunk_blob = store.get(self.manifest.trunk)
        trunk = decode_tensors(trunk_blob, self.manifest.trunk)
        check_trunk_tensors(trunk, trunk_tensors(model.state_dict()), self.manifest.trunk)
        missing, unexpected = model.load_state_dict(trunk, strict=False)
        assert not unexpected and all(is_expert_key(k) for k in missing)
        with torch.no_grad():
            for layer in model.model.layers:
                for p in EXPERT_PARAMS:
                    getattr(layer.mlp.experts, p).fill_(float("nan"))
        self.bytes_loaded = manifest_size + len(trunk_blob)
        self.model: MixtralForCausalLM = consensus_mode(model)
        for i, layer in enumerate(model.model.layers):
            layer.mlp.experts.register_forward_pre_hook(self._hook_for(i), with_kwargs=True)

    def _hook_for(self, layer: int) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            top_k_index = args[1] if len(args) > 1 else kwargs["top_k_index"]
            for e in torch.unique(top_k_index).tolist():
                self._ensure(layer, int(e), module)

        return hook

    def _ensure(self, layer: int, expert: int, module: nn.Module) -> None:
        with self._lock:
            if (layer, expert) in self._loaded:
                return
            digest = self.manifest.experts[layer][expert]
            data = self.store.get(digest)
            tensors = decode_tensors(data, digest)
            check_expert_tensors(tensors, self.manifest.spec, digest)
            with torch.no_grad():
                for p in EXPERT_PARAMS:
                    getattr(module, p)[expert].copy_(tensors[p])
            self._loaded.add((layer, expert))
            self.bytes_loaded += len(data)
            log.debug("loaded expert layer%d.expert%d (%s, %d bytes)", layer, expert, digest,
                      len(data))

    def loaded_experts(self) -> set[tuple[int, int]]:
        with self._lock:
            return set(self._loaded)

    def fraction_loaded(self) -> float:
        return self.bytes_loaded / self.total_bytes
