"""Model snapshots: a manifest naming the trunk blob and one expert blob per slot.

The manifest is canonical JSON (sorted keys, no whitespace, ASCII) stored in the blob store and
named by its own sha256, so one hash pins the architecture and every weight.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch
from transformers import MixtralForCausalLM

from poai.model.blobs import (
    EXPERT_PARAMS,
    check_expert_tensors,
    check_trunk_tensors,
    decode_tensors,
    expert_blob,
    expert_key,
    trunk_blob,
    trunk_tensors,
)
from poai.model.config import ModelSpec, build_model, consensus_mode, spec_of
from poai.model.store import BlobError, BlobStore

MANIFEST_FORMAT = "poai-moe-snapshot/1"


class ManifestError(ValueError):
    """A manifest that does not parse or does not fit its model spec."""


def canonical_json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


@dataclass(frozen=True)
class Manifest:
    spec: ModelSpec
    trunk: str
    experts: tuple[tuple[str, ...], ...]  # [layer][expert] -> blob hash

    def __post_init__(self) -> None:
        if len(self.experts) != self.spec.num_hidden_layers:
            raise ManifestError(f"manifest has {len(self.experts)} expert layers, spec has "
                                f"{self.spec.num_hidden_layers}")
        for layer, row in enumerate(self.experts):
            if len(row) != self.spec.num_local_experts:
                raise ManifestError(f"manifest layer {layer} has {len(row)} experts, spec has "
                                    f"{self.spec.num_local_experts}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "config": self.spec.to_dict(),
            "trunk": self.trunk,
            "experts": [list(row) for row in self.experts],
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> Manifest:
        try:
            d = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ManifestError(f"manifest is not JSON: {e}") from e
        if not isinstance(d, dict) or d.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f"manifest format is not {MANIFEST_FORMAT}")
        try:
            m = cls(
                spec=ModelSpec.from_dict(d["config"]),
                trunk=str(d["trunk"]),
                experts=tuple(tuple(str(h) for h in row) for row in d["experts"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ManifestError(f"bad manifest: {e}") from e
        if m.to_bytes() != data:
            raise ManifestError("manifest is not in canonical form")
        return m

    def blob_hashes(self) -> list[str]:
        return [self.trunk] + [h for row in self.experts for h in row]


def save_model(store: BlobStore, model: MixtralForCausalLM) -> str:
    """Write ``model`` as blobs + manifest into ``store``; returns the manifest hash."""
    spec = spec_of(model)
    trunk = store.put(trunk_blob(model))
    experts = tuple(
        tuple(store.put(expert_blob(model, layer, e)) for e in range(spec.num_local_experts))
        for layer in range(spec.num_hidden_layers)
    )
    return store.put(Manifest(spec, trunk, experts).to_bytes())


def read_manifest(store: BlobStore, manifest_hash: str) -> Manifest:
    return Manifest.from_bytes(store.get(manifest_hash))


def assemble_model(store: BlobStore, manifest_hash: str) -> MixtralForCausalLM:
    """A fresh model from the manifest's blobs (each hash-checked), in consensus mode."""
    manifest = read_manifest(store, manifest_hash)
    model = build_model(manifest.spec)
    reference = model.state_dict()
    trunk = decode_tensors(store.get(manifest.trunk), manifest.trunk)
    check_trunk_tensors(trunk, trunk_tensors(reference), manifest.trunk)
    state: dict[str, torch.Tensor] = dict(trunk)
    for layer, row in enumerate(manifest.experts):
        parts: dict[str, list[torch.Tensor]] = {p: [] for p in EXPERT_PARAMS}
        for digest in row:
            t = decode_tensors(store.get(digest), digest)
            check_expert_tensors(t, manifest.spec, digest)
            for p in EXPERT_PARAMS:
                parts[p].append(t[p])
        for p in EXPERT_PARAMS:
            state[expert_key(layer, p)] = torch.stack(parts[p])
    model.load_state_dict(state, strict=True)
    return consensus_mode(model)


_CACHE_SIZE = 4
_cache: OrderedDict[tuple[str, str], MixtralForCausalLM] = OrderedDict()
_cache_lock = threading.Lock()


def load_model(store: BlobStore, manifest_hash: str) -> MixtralForCausalLM:
    """The snapshot's model in consensus mode, cached by (store root, manifest hash).

    The returned instance is shared: do not modify it (use :func:`assemble_model` for a copy).
    """
    key = (str(store.root.resolve()), manifest_hash)
    with _cache_lock:
        model = _cache.get(key)
        if model is not None:
            _cache.move_to_end(key)
            return model
    model = assemble_model(store, manifest_hash)
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()


__all__ = [
    "BlobError",
    "Manifest",
    "ManifestError",
    "assemble_model",
    "canonical_json",
    "clear_cache",
    "load_model",
    "read_manifest",
    "save_model",
]
