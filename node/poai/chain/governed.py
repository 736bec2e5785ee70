"""Governance in the chain: the contracts a genesis config places at fixed addresses, and each
epoch's quiz assets as ModelRegistry / DatasetDAO name them.

DESIGN "Quiz-loss seal" step 2 and docs/CONTRACTS.md "Node rule": epoch e's model snapshot and
dataset are read in the state after e's seed block *on the branch being judged*, by
`poai.governance.EpochAssetResolver`.  A reading costs ~0.1-0.4 s, so it is cached per seed
block hash (one per epoch per branch, never per block).  Verification (import, P2P) and mining
reach it through the same `EpochQuizContexts.quiz_context_for`, so they cannot disagree.

The contracts a config names are read and checked by `poai.chain.config.config_contracts`.

Errors: `MissingBlobs` / `MissingDataset` mean the node cannot judge that epoch's seals yet (the
block is not bad: fetch the files and retry); `SeedStateUnavailable` means the seed block's
state is not stored yet (e.g. a sync batch verified ahead of its import); `GovernanceReadError`
means the contracts' state is not what genesis put there: fatal.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections import OrderedDict
from pathlib import Path

from eth.abc import BlockHeaderAPI, HeaderDatabaseAPI, StateAPI
from eth_typing import Hash32

from poai.chain.config import ChainConfig, config_contracts
from poai.chain.epochs import StateAt
from poai.chain.quality_gate import SnapshotGate
from poai.governance.epoch_context import (
    EpochAssetResolver,
    EpochAssets,
    GenesisAssets,
    GovernanceError,
    MissingBlobs,
    MissingDataset,
)
from poai.governance.reader import GovernanceReadError, storage_fingerprint
from poai.quiz.epoch import seed_block_number

log = logging.getLogger("poai.governance")

_CACHE = 256


class SeedStateUnavailable(GovernanceError):
    """The state after an epoch's seed block is not stored (yet): its quiz cannot be read."""


def _default_blob_dir() -> Path:
    # Only for chains used without a Node (tools, tests): content-addressed, so sharing is safe.
    return Path(tempfile.gettempdir()) / "poai-epoch-assets"


class GovernedEpochAssets:
    """Epoch quiz assets from governance state, shared by every chain object of one node.

    `blob_dir` / `dataset_dir`: the node's stores (`<datadir>/blobs`, `<datadir>/datasets`);
    snapshots other than genesis get their manifest (and copies of reused genesis blobs) there.
    """

    def __init__(
        self,
        config: ChainConfig,
        blob_dir: str | Path | None = None,
        dataset_dir: str | Path | None = None,
    ) -> None:
        cc = config_contracts(config)
        if cc is None:
            raise ValueError("the chain config has no genesis contracts")
        self.config = config
        self.contracts = cc
        base = _default_blob_dir()
        self.blob_dir = Path(blob_dir) if blob_dir is not None else base / "blobs"
        self.dataset_dir = Path(dataset_dir) if dataset_dir is not None else base / "datasets"
        self.gate = SnapshotGate(config, self.blob_dir / "gate")
        self.resolver = EpochAssetResolver(
            cc.contracts, GenesisAssets.from_chain_config(config), self.blob_dir,
            self.dataset_dir, judge=self.gate,
        )
        self._cache: OrderedDict[bytes, tuple[int, EpochAssets]] = OrderedDict()
        self._lock = threading.Lock()
        self._prefetch_seen: tuple[bytes, bytes] | None = None
        self._prefetched: set[tuple[str, str]] = set()

    def prefetch_gate(self, state: StateAPI, epoch_now: int) -> threading.Thread | None:
        """Evaluate, off the chain lock and before their boundary, the models the quality gate
        will need for snapshots scheduled after `epoch_now` (state: the head's), so that the
        boundary only judges. Cheap when the registry's storage has not changed."""
        registry = self.contracts.contracts.registry
        try:
            fingerprint = storage_fingerprint(state, registry)
            if fingerprint is not None and fingerprint == self._prefetch_seen:
                return None
            jobs = self.resolver.pending_gate_models(state, epoch_now)
        except (GovernanceError, GovernanceReadError) as exc:
            log.debug("quality gate prefetch skipped: %s", exc)
            return None
        self._prefetch_seen = fingerprint
        with self._lock:
            jobs = [j for j in jobs if j not in self._prefetched]
            self._prefetched.update(jobs)
        if not jobs:
            return None
        thread = threading.Thread(target=self._warm, args=(jobs,), name="gate-prefetch",
                                  daemon=True)
        thread.start()
        return thread

    def _warm(self, jobs: list[tuple[str, str]]) -> None:
        for blob_dir, manifest in jobs:
            try:
                self.gate.losses(blob_dir, manifest)
            except Exception as exc:  # noqa: BLE001 - a prefetch failure only costs time later
                log.warning("quality gate prefetch of %s failed: %s", manifest, exc)
                with self._lock:
                    self._prefetched.discard((blob_dir, manifest))

    def cached(self, seed_hash: bytes) -> tuple[int, EpochAssets] | None:
        """(epoch, assets) resolved for the epoch whose seed block is `seed_hash`."""
        with self._lock:
            return self._cache.get(seed_hash)

    def assets_for(
        self, epoch: int, seed: BlockHeaderAPI, headers: HeaderDatabaseAPI, state_at: StateAt
    ) -> EpochAssets:
        """The quiz assets of `epoch`, whose seed block (on the branch judged) is `seed`."""
        hit = self.cached(seed.hash)
        if hit is not None and hit[0] == epoch:
            return hit[1]
        eb = self.config.quiz.epoch_blocks

        def seed_header_of(k: int) -> BlockHeaderAPI:
            target = seed_block_number(k, eb)
            cur = seed
            while cur.block_number > target:
                cur = headers.get_block_header_by_hash(Hash32(cur.parent_hash))
            return cur

        def seed_state(k: int) -> StateAPI:
            return state_at(seed if k == epoch else seed_header_of(k))

        def known(k: int) -> EpochAssets | None:
            h = self.cached(seed_header_of(k).hash)
            return h[1] if h is not None and h[0] == k else None

        started = time.monotonic()
        where = f"epoch {epoch} (seed #{seed.block_number} 0x{seed.hash.hex()[:16]})"
        try:
            assets = self.resolver.resolve(epoch, seed_state, known)
        except (MissingBlobs, MissingDataset) as exc:
            log.error("%s: cannot build the quiz yet, its seals cannot be judged: %s", where, exc)
            raise
        except GovernanceReadError as exc:
            log.critical("%s: governance contracts unreadable (fatal): %s", where, exc)
            raise
        with self._lock:
            self._cache[bytes(seed.hash)] = (epoch, assets)
            while len(self._cache) > _CACHE:
                self._cache.popitem(last=False)
        fallback = (
            f" (epoch {assets.dataset_epoch}'s: key unrevealed)"
            if assets.dataset_epoch != epoch else ""
        )
        log.info(
            "%s: model snapshot %d manifest %s, dataset %d%s (read in %.2f s)",
            where, assets.snapshot_id, assets.manifest_hash, assets.dataset_id, fallback,
            time.monotonic() - started,
        )
        if assets.gate_note:
            log.warning("%s: %s", where, assets.gate_note)
        return assets


__all__ = [
    "GovernanceError",
    "GovernanceReadError",
    "GovernedEpochAssets",
    "MissingBlobs",
    "MissingDataset",
    "SeedStateUnavailable",
]
