"""Which quiz a header's seal answers: its epoch key, model snapshot and dataset.

The epoch key comes from the seed block on the header's own ancestry (not the canonical chain:
a side-chain block is judged by its own history); that ancestry may run through `parents`,
headers not stored yet (a sync batch, py-evm's `validate_seal_extension`).  The model and
dataset come from `assets_for_epoch`: the genesis ones for a chain without governance
contracts, otherwise what ModelRegistry / DatasetDAO name in the state after the seed block on
that same ancestry (`poai.chain.governed.GovernedEpochAssets`, cached per seed hash); a seed
block whose state is not stored yet raises `SeedStateUnavailable`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from eth.abc import BlockHeaderAPI, HeaderDatabaseAPI, StateAPI
from eth_typing import Hash32

from poai.chain.config import ChainConfig
from poai.consensus.engine import Parents
from poai.governance.epoch_context import EpochAssets
from poai.quiz.context import QuizContext
from poai.quiz.epoch import epoch_index, epoch_key, seed_block_number

_CACHE = 256


StateAt = Callable[[BlockHeaderAPI], StateAPI]  # the state after a stored block


class EpochAssetSource(Protocol):
    def assets_for(
        self, epoch: int, seed: BlockHeaderAPI, headers: HeaderDatabaseAPI, state_at: StateAt
    ) -> EpochAssets: ...


class _HeadersWithParents:
    """A header db seen through headers not stored yet (by hash)."""

    def __init__(self, headers: HeaderDatabaseAPI, parents: Parents) -> None:
        self._headers = headers
        self._parents = parents

    def get_block_header_by_hash(self, block_hash: Hash32) -> BlockHeaderAPI:
        found = self._parents.get(bytes(block_hash))
        if found is not None:
            return found
        return self._headers.get_block_header_by_hash(block_hash)


class EpochQuizContexts:
    """QuizContextSource over a chain's header database.

    `assets` + `state_at`: where epoch assets come from and how to read the state after a
    block (a chain passes its own); a chain with governance contracts needs them.  Without
    them: the genesis assets.
    """

    def __init__(
        self,
        config: ChainConfig,
        headers: HeaderDatabaseAPI,
        assets: EpochAssetSource | None = None,
        state_at: StateAt | None = None,
    ) -> None:
        self.config = config
        self.headers = headers
        if (assets is None) != (state_at is None):
            raise ValueError("pass both assets and state_at, or neither")
        if assets is None and config.genesis_contracts is not None:
            raise ValueError("a chain with governance contracts needs its epoch asset source "
                             "(governance decides the quiz)")
        self.assets = assets
        self.state_at = state_at
        self._seed_of: OrderedDict[bytes, bytes] = OrderedDict()  # block hash -> seed hash
        self._contexts: OrderedDict[bytes, QuizContext] = OrderedDict()  # seed hash -> ctx
        self._lock = threading.Lock()

    def assets_for_epoch(
        self, epoch: int, seed: BlockHeaderAPI, parents: Parents | None = None
    ) -> EpochAssets:
        """The model snapshot and dataset of `epoch` (seed block `seed` on the judged branch)."""
        cfg = self.config
        if self.assets is None or self.state_at is None:
            return EpochAssets(
                cfg.model_manifest, str(cfg.model_dir), str(cfg.dataset.path), cfg.dataset.key
            )
        headers: Any = _HeadersWithParents(self.headers, parents) if parents else self.headers
        return self.assets.assets_for(epoch, seed, headers, self.state_at)

    def seed_header(
        self, header: BlockHeaderAPI, parents: Parents | None = None
    ) -> BlockHeaderAPI:
        """The seed block of the header's epoch, found by walking the header's own ancestry
        (stored headers and `parents`)."""
        if header.block_number < 1:
            raise ValueError("the genesis block has no quiz")
        e = epoch_index(header.block_number, self.config.quiz.epoch_blocks)
        seed_number = seed_block_number(e, self.config.quiz.epoch_blocks)
        headers = _HeadersWithParents(self.headers, parents) if parents else self.headers
        with self._lock:
            known = self._seed_of.get(header.parent_hash)
        if known is not None:
            seed = headers.get_block_header_by_hash(Hash32(known))
            if seed.block_number == seed_number:
                return seed
        walked: list[bytes] = []
        cur = headers.get_block_header_by_hash(header.parent_hash)
        while cur.block_number > seed_number:
            walked.append(cur.hash)
            cur = headers.get_block_header_by_hash(cur.parent_hash)
        with self._lock:
            for h in walked:
                self._seed_of[h] = cur.hash
            while len(self._seed_of) > _CACHE * 4:
                self._seed_of.popitem(last=False)
        return cur

    def quiz_context_for(
        self, header: BlockHeaderAPI, parents: Parents | None = None
    ) -> QuizContext:
        seed = self.seed_header(header, parents)
        with self._lock:
            ctx = self._contexts.get(seed.hash)
        if ctx is not None:
            return ctx
        e = epoch_index(header.block_number, self.config.quiz.epoch_blocks)
        assets = self.assets_for_epoch(e, seed, parents)
        ctx = QuizContext(
            params=self.config.quiz,
            epoch_key=epoch_key(seed.hash, e),
            manifest_hash=assets.manifest_hash,
            blob_dir=assets.blob_dir,
            dataset_path=assets.dataset_path,
            dataset_key=assets.dataset_key,
        )
        with self._lock:
            self._contexts[seed.hash] = ctx
            while len(self._contexts) > _CACHE:
                self._contexts.popitem(last=False)
        return ctx
