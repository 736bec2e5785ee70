"""Splitting a model's weights into content-addressed safetensors blobs, and back.

transformers 5 stores a layer's experts stacked in 3-D parameters
``model.layers.{l}.mlp.experts.gate_up_proj`` [E, 2I, H] and ``...down_proj`` [E, H, I]; one
expert is slice ``[e]``. An expert blob holds that slice under slot-independent names, so the
same expert can be registered, shipped and verified on its own. Everything else (embeddings,
attention, norms, routers, lm_head) is the trunk blob.
"""

from __future__ import annotations

import re

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from transformers import MixtralForCausalLM

from poai.model.config import CONSENSUS_DTYPE, ModelSpec
from poai.model.store import BlobError

EXPERT_PARAMS = ("gate_up_proj", "down_proj")
_EXPERT_KEY = re.compile(r"^model\.layers\.(\d+)\.mlp\.experts\.(gate_up_proj|down_proj)$")


def expert_name(layer: int, expert: int) -> str:
    """The registry name of a slot, e.g. ``layer3.expert5``."""
    return f"layer{layer}.expert{expert}"


def expert_key(layer: int, param: str) -> str:
    return f"model.layers.{layer}.mlp.experts.{param}"


def is_expert_key(name: str) -> bool:
    return _EXPERT_KEY.match(name) is not None


def encode_tensors(tensors: dict[str, torch.Tensor]) -> bytes:
    """Deterministic safetensors bytes: float32, contiguous copies, no metadata."""
    clean = {k: t.detach().to(CONSENSUS_DTYPE).contiguous().clone() for k, t in tensors.items()}
    return st_save(clean)


def decode_tensors(data: bytes, digest: str) -> dict[str, torch.Tensor]:
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError) as e:
        raise BlobError(digest, f"not a safetensors file: {e}") from e
    for k, t in tensors.items():
        if t.dtype != CONSENSUS_DTYPE:
            raise BlobError(digest, f"tensor {k} has dtype {t.dtype}, expected float32")
    return tensors


def trunk_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if not is_expert_key(k)}


def trunk_blob(model: MixtralForCausalLM) -> bytes:
    return encode_tensors(trunk_tensors(model.state_dict()))


def expert_tensors(
    state: dict[str, torch.Tensor], layer: int, expert: int
) -> dict[str, torch.Tensor]:
    return {p: state[expert_key(layer, p)][expert] for p in EXPERT_PARAMS}


def expert_blob(model: MixtralForCausalLM, layer: int, expert: int) -> bytes:
    return encode_tensors(expert_tensors(model.state_dict(), layer, expert))


def expected_expert_shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    h, i = spec.hidden_size, spec.intermediate_size
    return {"gate_up_proj": (2 * i, h), "down_proj": (h, i)}


def check_expert_tensors(
    tensors: dict[str, torch.Tensor], spec: ModelSpec, digest: str
) -> None:
    want = expected_expert_shapes(spec)
    if set(tensors) != set(want):
        raise BlobError(digest, f"expert blob has tensors {sorted(tensors)}, "
                        f"expected {sorted(want)}")
    for k, shape in want.items():
        if tuple(tensors[k].shape) != shape:
            raise BlobError(digest, f"expert tensor {k} has shape {tuple(tensors[k].shape)}, "
                            f"expected {shape}")


def check_trunk_tensors(
    tensors: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], digest: str
) -> None:
    """``reference`` is the trunk part of a freshly built model's state dict."""
    if set(tensors) != set(reference):
        missing = sorted(set(reference) - set(tensors))[:3]
        extra = sorted(set(tensors) - set(reference))[:3]
        raise BlobError(digest, f"trunk blob tensors differ: missing {missing}, extra {extra}")
    for k, ref in reference.items():
        if tensors[k].shape != ref.shape:
            raise BlobError(digest, f"trunk tensor {k} has shape {tuple(tensors[k].shape)}, "
                            f"expected {tuple(ref.shape)}")
