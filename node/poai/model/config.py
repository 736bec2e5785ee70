"""The PoAI model: a small Mixtral-style MoE causal LM, and the pinned consensus compute settings.

Everything that decides the bits of a quiz loss is fixed here and only here:
float32 weights and activations, eager attention, eager expert kernels (the per-expert loop),
eval mode, no autograd, and one intra-op thread per process. transformers picks ``sdpa``
attention and ``grouped_mm`` experts on CPU by default; those give different last bits, so a
consensus model is always built and checked through :func:`consensus_mode`.

How transformers 5.23 selects the experts kernel: ``@use_experts_implementation`` replaces
``MixtralExperts.forward`` with a dispatcher that reads ``config._experts_implementation`` on
every call (checked here through poai.compat.transformers); ``PreTrainedModel.__init__``
resolves ``None`` to ``grouped_mm`` (falling back to ``eager`` only if grouped_mm cannot
dispatch). Passing ``experts_implementation="eager"`` to the config and re-asserting it with
``set_experts_implementation`` pins the loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, cast

import torch
from torch import nn
from transformers import MixtralConfig, MixtralForCausalLM

from poai.compat.transformers import attn_implementation, experts_implementation
from poai.model.tokenizer import VOCAB_SIZE

CONSENSUS_DTYPE = torch.float32
CONSENSUS_ATTN = "eager"
CONSENSUS_EXPERTS = "eager"
CONSENSUS_THREADS = 1


class ModelConfigError(ValueError):
    """A model spec or a model instance that does not satisfy the consensus settings."""


@dataclass(frozen=True)
class ModelSpec:
    """The architecture fields that a snapshot manifest records (library-independent)."""

    vocab_size: int = VOCAB_SIZE
    hidden_size: int = 128
    intermediate_size: int = 128  # per expert
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    num_local_experts: int = 8
    num_experts_per_tok: int = 2  # top-2 routing
    max_position_embeddings: int = 512
    rms_norm_eps: float = 1e-5
    rope_theta: float = 10000.0
    tie_word_embeddings: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                if f.name != "tie_word_embeddings":
                    raise ModelConfigError(f"model spec field {f.name}={v!r} must be a number")
            elif v <= 0:
                raise ModelConfigError(f"model spec field {f.name}={v!r} must be positive")
        if self.hidden_size % self.num_attention_heads:
            raise ModelConfigError("hidden_size must be a multiple of num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ModelConfigError("num_attention_heads must be a multiple of num_key_value_heads")
        if not 1 <= self.num_experts_per_tok <= self.num_local_experts:
            raise ModelConfigError("num_experts_per_tok must be in [1, num_local_experts]")
        if self.vocab_size < VOCAB_SIZE:
            raise ModelConfigError(f"vocab_size must be at least {VOCAB_SIZE} (byte vocabulary)")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSpec:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ModelConfigError(f"unknown model spec fields: {sorted(unknown)}")
        missing = known - set(d)
        if missing:
            raise ModelConfigError(f"missing model spec fields: {sorted(missing)}")
        return cls(**d)

    def to_mixtral_config(self) -> MixtralConfig:
        # Kernel choices go through **kwargs: MixtralConfig's stub does not declare them.
        kernels: dict[str, Any] = {"attn_implementation": CONSENSUS_ATTN,
                                   "experts_implementation": CONSENSUS_EXPERTS}
        return MixtralConfig(
            vocab_size=self.vocab_size,
            hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size,
            num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads,
            num_key_value_heads=self.num_key_value_heads,
            num_local_experts=self.num_local_experts,
            num_experts_per_tok=self.num_experts_per_tok,
            max_position_embeddings=self.max_position_embeddings,
            rms_norm_eps=self.rms_norm_eps,
            rope_parameters={"rope_type": "default", "rope_theta": self.rope_theta},
            tie_word_embeddings=self.tie_word_embeddings,
            sliding_window=None,
            attention_dropout=0.0,
            router_jitter_noise=0.0,
            output_router_logits=False,
            use_cache=False,
            dtype=CONSENSUS_DTYPE,
            **kernels,
        )


# The genesis architecture: 4 layers x 8 experts, top-2, hidden 128 -> 1.91M parameters, 7.6 MB
# float32, 82% of it in experts (one expert blob per layer per slot, ~197 KB each).
GENESIS_SPEC = ModelSpec()


def set_consensus_threads() -> None:
    """One intra-op thread for this process (two threads in one process collapse under load;
    run one process per core instead). Process-global: call it in each worker process."""
    if torch.get_num_threads() != CONSENSUS_THREADS:
        torch.set_num_threads(CONSENSUS_THREADS)


def build_model(spec: ModelSpec | MixtralConfig = GENESIS_SPEC) -> MixtralForCausalLM:
    """A freshly initialised model (random weights, train mode) with the consensus kernels."""
    cfg = spec.to_mixtral_config() if isinstance(spec, ModelSpec) else spec
    model = MixtralForCausalLM(cfg)
    cast(nn.Module, model).to(CONSENSUS_DTYPE)  # (transformers' override is untyped)
    _pin_kernels(model)
    return model


def _pin_kernels(model: MixtralForCausalLM) -> None:
    model.set_attn_implementation(CONSENSUS_ATTN)
    model.set_experts_implementation(CONSENSUS_EXPERTS)
    model.config.use_cache = False


def consensus_mode(model: MixtralForCausalLM) -> MixtralForCausalLM:
    """Put ``model`` in the consensus compute settings (in place) and return it: float32, eager
    attention and experts, eval mode, no gradients. Thread count is per process: see
    :func:`set_consensus_threads`."""
    cast(nn.Module, model).to(CONSENSUS_DTYPE)  # (transformers' override is untyped)
    _pin_kernels(model)
    model.train(False)  # eval mode
    model.requires_grad_(False)
    check_consensus_mode(model)
    return model


def check_consensus_mode(model: MixtralForCausalLM) -> None:
    """Raise :class:`ModelConfigError` unless ``model`` computes with the consensus settings."""
    problems: list[str] = []
    if attn_implementation(model.config) != CONSENSUS_ATTN:
        problems.append(f"attention {attn_implementation(model.config)!r}")
    if experts_implementation(model.config) != CONSENSUS_EXPERTS:
        problems.append(f"experts {experts_implementation(model.config)!r}")
    for layer in model.model.layers:
        impl = experts_implementation(layer.mlp.experts.config)
        if impl != CONSENSUS_EXPERTS:
            problems.append(f"layer experts {impl!r}")
            break
    if model.training:
        problems.append("training mode")
    bad = [n for n, t in model.state_dict().items() if t.dtype != CONSENSUS_DTYPE]
    if bad:
        problems.append(f"non-float32 tensors {bad[:3]}")
    if problems:
        raise ModelConfigError("model is not in consensus mode: " + ", ".join(problems))


def _rope_theta(c: MixtralConfig) -> float:
    rope = c.rope_parameters
    if not isinstance(rope, dict) or rope.get("rope_type", "default") != "default":
        raise ModelConfigError(f"unsupported rope parameters {rope!r}")
    theta = rope["rope_theta"]
    if not isinstance(theta, int | float):
        raise ModelConfigError(f"unsupported rope_theta {theta!r}")
    return float(theta)


def spec_of(model: MixtralForCausalLM) -> ModelSpec:
    """The :class:`ModelSpec` a model was built from."""
    c = model.config
    return ModelSpec(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_hidden_layers,
        num_attention_heads=c.num_attention_heads,
        num_key_value_heads=c.num_key_value_heads,
        num_local_experts=c.num_local_experts,
        num_experts_per_tok=c.num_experts_per_tok,
        max_position_embeddings=c.max_position_embeddings,
        rms_norm_eps=c.rms_norm_eps,
        rope_theta=_rope_theta(c),
        tie_word_embeddings=bool(c.tie_word_embeddings),
    )
