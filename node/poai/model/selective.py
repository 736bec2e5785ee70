"""Selective loading: the trunk is loaded up front, an expert only when the router picks it.

A forward pre-hook on each layer's experts module sees the router's ``top_k_index`` before the
expert loop runs, fetches the missing experts from the blob store (hash-checked by the store,
shape-checked here) and copies them into the stacked parameters. Experts that were never loaded
hold NaN, so an unloaded expert could never contribute silently. The computation is the same
eager loop as the full model's, so logits are bit-equal.

With ``max_experts`` the loaded experts form an LRU cache of that many (layer, expert) slots:
an evicted expert is set back to NaN and fetched again when next routed to. The experts that
one layer's call needs are never evicted during that call, so a call that routes to more
experts than the bound holds them all until a later layer's call.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
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

    def __init__(self, store: BlobStore, manifest_hash: str,
                 max_experts: int | None = None) -> None:
        if max_experts is not None and max_experts < 1:
            raise ValueError(f"max_experts must be >= 1, got {max_experts}")
        self.store = store
        self.max_experts = max_experts
        self.hits = 0  # routed (layer, expert) already loaded, counted once per layer call
        self.misses = 0  # ... fetched from the store
        self.evictions = 0
        self.manifest_hash = manifest_hash
        self.manifest = read_manifest(store, manifest_hash)
        spec = self.manifest.spec
        manifest_size = len(self.manifest.to_bytes())
        self.total_bytes = manifest_size + sum(store.size(h) for h in self.manifest.blob_hashes())
        self._loaded: OrderedDict[tuple[int, int], None] = OrderedDict()  # LRU order
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
            needed = [int(e) for e in torch.unique(top_k_index).tolist()]
            with self._lock:
                for e in needed:
                    self._ensure(layer, e, module)
                self._evict(layer, needed)

        return hook

    def _evict(self, layer: int, needed: list[int]) -> None:
        if self.max_experts is None:
            return
        keep = {(layer, e) for e in needed}
        while len(self._loaded) > self.max_experts:
            oldest = next(iter(self._loaded))
            if oldest in keep:  # every older slot is gone: this call needs the rest
                return
            del self._loaded[oldest]
            self.evictions += 1
            experts = self.model.model.layers[oldest[0]].mlp.experts
            with torch.no_grad():
                for p in EXPERT_PARAMS:
                    getattr(experts, p)[oldest[1]].fill_(float("nan"))

    def _ensure(self, layer: int, expert: int, module: nn.Module) -> None:
        """Load one routed expert (caller holds ``self._lock``)."""
        if (layer, expert) in self._loaded:
            self._loaded.move_to_end((layer, expert))
            self.hits += 1
            return
        self.misses += 1
        digest = self.manifest.experts[layer][expert]
        data = self.store.get(digest)
        tensors = decode_tensors(data, digest)
        check_expert_tensors(tensors, self.manifest.spec, digest)
        with torch.no_grad():
            for p in EXPERT_PARAMS:
                getattr(module, p)[expert].copy_(tensors[p])
        self._loaded[(layer, expert)] = None
        self.bytes_loaded += len(data)
        log.debug("loaded expert layer%d.expert%d (%s, %d bytes)", layer, expert, digest,
                  len(data))

    def loaded_experts(self) -> set[tuple[int, int]]:
        with self._lock:
            return set(self._loaded)

    def fraction_loaded(self) -> float:
        return self.bytes_loaded / self.total_bytes
