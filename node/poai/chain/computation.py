"""PoAI's EVM computation: Prague's, with each contract's jump-destination analysis shared.

py-evm's `CodeStream` works out lazily which positions are real opcodes (not PUSH data), for
each JUMP/JUMPI target, into two sets that start empty for every call: a contract called 500
times in a block re-derives the same answers 500 times (a tenth of building a block of counter
increments).  Those answers depend on the code bytes alone, so the sets are kept per code and
every later call of the same code starts with them.

PoaiComputation adds the INFERENCE_CHECK precompile (poai.chain.inference) at 0x…0f00; a chain
class binds it to the node's blob store through `snapshot_models` (chain_class_for).
"""

from __future__ import annotations

from typing import Any, ClassVar

from eth.abc import MessageAPI, StateAPI, TransactionContextAPI
from eth.vm.computation import BaseComputation
from eth.vm.forks.prague.computation import PragueComputation
from lru import LRU

from poai.chain.inference import PRECOMPILE, SnapshotModels
from poai.compat.pyevm import share_jump_analysis

JUMP_ANALYSIS_CACHE_SIZE = 256  # contracts; an entry is two sets of checked positions
_analysis: Any = LRU(JUMP_ANALYSIS_CACHE_SIZE)  # code bytes -> (valid, invalid positions)


class SharedJumpAnalysis(BaseComputation):
    """Any fork's computation with the per-code analysis shared (mixed in before the fork's
    class; tests/conformance runs it on the Cancun rules the official fixtures were filled for)."""

    def __init__(
        self,
        state: StateAPI,
        message: MessageAPI,
        transaction_context: TransactionContextAPI,
    ) -> None:
        super().__init__(state, message, transaction_context)
        code = message.code
        # Init code runs once: not worth keeping (nor hashing).
        if code and not message.is_create:
            shared = _analysis.get(code)
            if shared is None:
                shared = _analysis[code] = (set(), set())
            # Sets only ever gain facts about these bytes, true for every call of them.
            share_jump_analysis(self.code, *shared)


class PoaiComputation(SharedJumpAnalysis, PragueComputation):
    _precompiles = {**PragueComputation.get_precompiles(), PRECOMPILE[0]: PRECOMPILE[1]}
    # Set per chain (chain_class_for): where the precompile finds snapshots and their blobs.
    snapshot_models: ClassVar[SnapshotModels | None] = None


__all__ = ["PoaiComputation", "SharedJumpAnalysis"]
