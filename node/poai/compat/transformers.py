"""transformers: which attention and experts kernels a model config selects.

transformers 5.23 has public setters (`set_attn_implementation`, `set_experts_implementation`)
but no public getters: the kernels a model will run are the config's private
`_attn_implementation` and `_experts_implementation` properties, read by the dispatchers on
every forward call.  The quiz's consensus check (poai.model.config) reads them here.
"""

from __future__ import annotations

from typing import Any

from poai.compat import Reliance

RELIES_ON: tuple[Reliance, ...] = (
    Reliance("transformers.configuration_utils:PreTrainedConfig._attn_implementation",
             "(self)"),
    Reliance("transformers.configuration_utils:PreTrainedConfig._experts_implementation",
             "(self)"),
    Reliance("transformers.modeling_utils:PreTrainedModel.set_attn_implementation",
             "(self, attn_implementation, allow_all_kernels=False)"),
    Reliance("transformers.modeling_utils:PreTrainedModel.set_experts_implementation",
             "(self, experts_implementation)"),
)


def attn_implementation(config: Any) -> Any:
    """The attention kernel `config` selects ("eager", "sdpa", ...)."""
    return config._attn_implementation


def experts_implementation(config: Any) -> Any:
    """The MoE experts kernel `config` selects ("eager", "grouped_mm", ...)."""
    return config._experts_implementation


__all__ = ["RELIES_ON", "attn_implementation", "experts_implementation"]
