"""Which quiz a header's seal answers: its epoch key, model snapshot and dataset.

The epoch key comes from the seed block on the header's own ancestry (not the canonical chain:
a side-chain block is judged by its own history).  The model and dataset are the genesis ones
for now; `snapshot_for_epoch` is the hook where governance (ModelRegistry / DatasetDAO state at
the epoch's first block) will choose them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from eth.abc import BlockHeaderAPI, HeaderDatabaseAPI
from eth_typing import Hash32

from poai.chain.config import ChainConfig
from poai.quiz.context import QuizContext
from poai.quiz.epoch import epoch_index, epoch_key, seed_block_number

_CACHE = 256


@dataclass(frozen=True)
class EpochAssets:
    manifest_hash: str
    blob_dir: str
    dataset_path: str
    dataset_key: bytes


class EpochQuizContexts:
    """QuizContextSource over a chain's header database."""

    def __init__(self, config: ChainConfig, headers: HeaderDatabaseAPI) -> None:
        self.config = config
        self.headers = headers
        self._seed_of: OrderedDict[bytes, bytes] = OrderedDict()  # block hash -> seed hash
        self._contexts: OrderedDict[bytes, QuizContext] = OrderedDict()  # seed hash -> ctx
        self._lock = threading.Lock()

    def snapshot_for_epoch(self, epoch: int, seed: BlockHeaderAPI) -> EpochAssets:
        """The model snapshot and dataset of `epoch`.  Governance hook: today always genesis."""
        cfg = self.config
        return EpochAssets(
            cfg.model_manifest, str(cfg.model_dir), str(cfg.dataset.path), cfg.dataset.key
        )

    def seed_header(self, header: BlockHeaderAPI) -> BlockHeaderAPI:
        """The seed block of the header's epoch, found by walking the header's own ancestry."""
        if header.block_number < 1:
            raise ValueError("the genesis block has no quiz")
        e = epoch_index(header.block_number, self.config.quiz.epoch_blocks)
        seed_number = seed_block_number(e, self.config.quiz.epoch_blocks)
        with self._lock:
            known = self._seed_of.get(header.parent_hash)
        if known is not None:
            seed = self.headers.get_block_header_by_hash(Hash32(known))
            if seed.block_number == seed_number:
                return seed
        walked: list[bytes] = []
        cur = self.headers.get_block_header_by_hash(header.parent_hash)
        while cur.block_number > seed_number:
            walked.append(cur.hash)
            cur = self.headers.get_block_header_by_hash(cur.parent_hash)
        with self._lock:
            for h in walked:
                self._seed_of[h] = cur.hash
            while len(self._seed_of) > _CACHE * 4:
                self._seed_of.popitem(last=False)
        return cur

    def quiz_context_for(self, header: BlockHeaderAPI) -> QuizContext:
        seed = self.seed_header(header)
        with self._lock:
            ctx = self._contexts.get(seed.hash)
        if ctx is not None:
            return ctx
        e = epoch_index(header.block_number, self.config.quiz.epoch_blocks)
        assets = self.snapshot_for_epoch(e, seed)
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
