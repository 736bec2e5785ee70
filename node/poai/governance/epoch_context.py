"""Which model snapshot and dataset an epoch's quiz uses, from governance state.

DESIGN ("Quiz-loss seal", step 2): the active snapshot and dataset of epoch e are those
ModelRegistry and DatasetDAO name as active at the epoch's first block. Their reading is taken
from the state after the epoch's seed block (`poai.quiz.epoch.seed_block_number(e)`, the last
block of epoch e-1; genesis for epoch 0), i.e. the state the first block of e is built
on: the seal of that first block already needs the quiz, so nothing inside it can change the
quiz. Every scheduling for epoch e is in that state (the contracts only accept activation epochs
after the current one).

Node rule (docs/CONTRACTS.md "Node rule"): a dataset whose key is not revealed in the reading
is not usable yet, so epoch e keeps the dataset epoch e-1 used (recursively; epoch 0 always has
the genesis dataset, whose key is public). DatasetDAO only accepts a reveal once the activation
epoch has begun, so a newly scheduled dataset is first used, at the earliest, in the epoch after
its activation epoch. The model snapshot has no such delay.

The resolved assets map to a QuizContext: the genesis snapshot -> the genesis manifest and model
directory; any other snapshot -> a manifest rebuilt from the trunk and expert hashes (the
registry fixes the shape, the rest of the architecture is the genesis manifest's spec) and stored
with all its blobs in the node's blob store. The genesis dataset -> the genesis file; any other
-> `<dataset_dir>/<sha256>.poaids`. A missing blob or dataset file raises (MissingBlobs /
MissingDataset): the node cannot judge that epoch's seals until P2P fetches them.

Quality gate (DESIGN "Model"): the snapshot an epoch uses is not simply the one ModelRegistry
schedules. Walking the registry's schedule (read in the same seed state) from the genesis entry,
each newly scheduled snapshot replaces the one before it only if its quality claim holds against
that one (`judge`, poai.quiz.gate through poai.chain.governed): its claim must name that
snapshot as its base, and every node's recomputation must accept it. A rejected snapshot never
activates and the previous one stays; `EpochAssets.gate_note` says why. Everything here is a
function of the seed state and the content it names, so every node decides alike, and decisions
are cached by content (manifests and claim).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth.abc import StateAPI

from poai.governance.contracts import GenesisContracts
from poai.governance.reader import (
    DatasetInfo,
    SnapshotInfo,
    active_dataset,
    schedule,
    snapshot_by_id,
    snapshot_claim,
)
from poai.model.dataset import DatasetError, EncryptedDataset
from poai.model.snapshot import Manifest, read_manifest
from poai.model.store import BlobStore

log = logging.getLogger(__name__)

DATASET_SUFFIX = ".poaids"


class GovernanceError(RuntimeError):
    """Governance state cannot be turned into quiz assets (see the subclasses)."""


class MissingBlobs(GovernanceError):
    """Blobs of the active snapshot are in no local store; `digests` lists them (fetch by P2P)."""

    def __init__(self, snapshot_id: int, digests: list[str]) -> None:
        super().__init__(
            f"snapshot {snapshot_id}: {len(digests)} blob(s) missing locally: {', '.join(digests)}"
        )
        self.snapshot_id = snapshot_id
        self.digests = digests


class MissingDataset(GovernanceError):
    """The active dataset's file is not in the node's dataset directory (fetch by P2P)."""

    def __init__(self, content_hash: str, path: Path) -> None:
        super().__init__(f"dataset {content_hash} missing: expected at {path}")
        self.content_hash = content_hash
        self.path = path


@dataclass(frozen=True)
class GenesisAssets:
    """The genesis quiz assets named by the chain config."""

    manifest_hash: str  # hex sha256 of the genesis manifest
    model_dir: Path  # blob store holding it
    dataset_path: Path
    dataset_sha256: str  # hex
    dataset_key: bytes  # 32 bytes, public

    @classmethod
    def from_chain_config(cls, config: Any) -> GenesisAssets:
        """From a `poai.chain.config.ChainConfig` (model_manifest, model_dir, dataset)."""
        return cls(
            manifest_hash=str(config.model_manifest),
            model_dir=Path(config.model_dir),
            dataset_path=Path(config.dataset.path),
            dataset_sha256=str(config.dataset.sha256).lower().removeprefix("0x"),
            dataset_key=bytes(config.dataset.key),
        )


@dataclass(frozen=True)
class EpochAssets:
    """One epoch's quiz assets: the QuizContext fields that governance chooses, and why (a
    chain without governance contracts uses its genesis assets: ids 0)."""

    manifest_hash: str
    blob_dir: str
    dataset_path: str
    dataset_key: bytes
    snapshot_id: int = 0
    dataset_id: int = 0
    dataset_epoch: int = 0  # the epoch whose reading supplied the dataset (< epoch: a fallback)
    scheduled_snapshot_id: int = 0  # what ModelRegistry schedules (0: same as snapshot_id)
    gate_note: str = ""  # why the scheduled snapshot did not activate ("" when it did)


@dataclass(frozen=True)
class GateCase:
    """A scheduled snapshot's quality claim against the snapshot it would replace."""

    snapshot_id: int
    manifest_hash: str
    blob_dir: str
    base_id: int
    base_manifest_hash: str
    base_blob_dir: str
    claim: bytes


@dataclass(frozen=True)
class GateDecision:
    accepted: bool
    reason: str  # one line


SnapshotJudge = Callable[[GateCase], GateDecision]

SeedState = Callable[[int], StateAPI]  # epoch k -> state after the seed block of k (same branch)
KnownAssets = Callable[[int], "EpochAssets | None"]  # epoch k -> assets already resolved


class EpochAssetResolver:
    """Turns ModelRegistry / DatasetDAO readings into an epoch's quiz assets.

    `blob_dir` and `dataset_dir` are the node's own stores (e.g. `<datadir>/blobs`,
    `<datadir>/datasets`). Thread-safe; keeps only verification caches keyed by content, so
    readings from different branches never mix.
    """

    def __init__(
        self,
        contracts: GenesisContracts,
        genesis: GenesisAssets,
        blob_dir: str | Path,
        dataset_dir: str | Path,
        judge: SnapshotJudge | None = None,
    ) -> None:
        self.contracts = contracts
        self.judge = judge  # None: no quality gate (every scheduled snapshot activates)
        self._decisions: dict[tuple[str, str, bytes], GateDecision] = {}
        self.genesis = genesis
        self.store = BlobStore(blob_dir)
        self.genesis_store = BlobStore(genesis.model_dir)
        self.dataset_dir = Path(dataset_dir)
        self._genesis_manifest: Manifest | None = None
        self._checked_datasets: set[tuple[str, bytes]] = set()
        self._lock = threading.Lock()

    # ---- the epoch ------------------------------------------------------------------------

    def resolve(
        self, epoch: int, seed_state: SeedState, known: KnownAssets | None = None
    ) -> EpochAssets:
        """The assets of `epoch`. `seed_state(k)` gives the state after epoch k's seed block on
        the branch being judged; it is called for `epoch` and, only while the active dataset is
        unrevealed, for earlier epochs (`known(k)` may short-cut with assets already resolved
        for epoch k on the same branch)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        state = seed_state(epoch)
        snapshot, scheduled, note = self.effective_snapshot(state, epoch)
        manifest_hash, blob_dir = self.snapshot_assets(snapshot)
        scheduled_id = scheduled if scheduled != snapshot.snapshot_id else 0
        k = epoch
        dataset = active_dataset(state, self.contracts.dataset_dao, k)
        while dataset.key is None:
            # Node rule: an unrevealed dataset is not usable; keep epoch k-1's dataset.
            if k == 0:
                raise GovernanceError("epoch 0's dataset has no revealed key (bad genesis)")
            k -= 1
            earlier = known(k) if known is not None else None
            if earlier is not None:
                log.info("epoch %d: dataset %d unrevealed, keeping epoch %d's dataset %d",
                         epoch, dataset.dataset_id, k, earlier.dataset_id)
                return EpochAssets(manifest_hash, blob_dir, earlier.dataset_path,
                                      earlier.dataset_key, snapshot.snapshot_id,
                                      earlier.dataset_id, earlier.dataset_epoch, scheduled_id, note)
            dataset = active_dataset(seed_state(k), self.contracts.dataset_dao, k)
        path, key = self.dataset_assets(dataset)
        if k != epoch:
            log.info("epoch %d: active dataset unrevealed, keeping epoch %d's dataset %d",
                     epoch, k, dataset.dataset_id)
        return EpochAssets(manifest_hash, blob_dir, str(path), key, snapshot.snapshot_id,
                              dataset.dataset_id, k, scheduled_id, note)

    # ---- quality gate ---------------------------------------------------------------------

    def effective_snapshot(self, state: StateAPI, epoch: int) -> tuple[SnapshotInfo, int, str]:
        """(the snapshot epoch `epoch` uses, the one the registry schedules, why they differ).

        Walks the schedule in order: a newly scheduled snapshot replaces the current one only
        when its claim holds against it (``judge``); without a judge the registry decides."""
        registry = self.contracts.registry
        entries = [(ep, sid) for ep, sid in schedule(state, registry) if ep <= epoch]
        if not entries:
            raise GovernanceError("ModelRegistry has no snapshot scheduled at epoch 0")
        scheduled = entries[-1][1]
        if self.judge is None:
            return snapshot_by_id(state, registry, scheduled), scheduled, ""
        current, note = entries[0][1], ""
        for ep, sid in entries[1:]:
            if sid == current:
                continue
            decision = self._decide(state, sid, current)
            if decision.accepted:
                current, note = sid, ""
            else:
                note = (f"snapshot {sid} (scheduled from epoch {ep}) rejected by the quality "
                        f"gate: {decision.reason}; snapshot {current} stays")
        return snapshot_by_id(state, registry, current), scheduled, note

    def pending_gate_models(self, state: StateAPI, after_epoch: int) -> list[tuple[str, str]]:
        """(blob dir, manifest hash) of every model the gate will evaluate for the snapshots
        scheduled after `after_epoch` (each claimed snapshot and its claim's base), for a node
        to evaluate ahead of the boundary; snapshots whose blobs are missing are skipped."""
        registry = self.contracts.registry
        out: dict[tuple[str, str], None] = {}
        for ep, sid in schedule(state, registry):
            if ep <= after_epoch:
                continue
            base, _claim = snapshot_claim(state, registry, sid)
            if base == 0:
                continue
            try:
                for s in (sid, base):
                    m, d = self.snapshot_assets(snapshot_by_id(state, registry, s))
                    out[(d, m)] = None
            except MissingBlobs:
                continue
        return list(out)

    def _decide(self, state: StateAPI, snapshot_id: int, current: int) -> GateDecision:
        registry = self.contracts.registry
        base, claim = snapshot_claim(state, registry, snapshot_id)
        if base == 0:
            return GateDecision(False, "it carries no quality claim")
        if base != current:
            return GateDecision(False, f"its claim is measured against snapshot {base}, but "
                                f"snapshot {current} is active before it")
        assert self.judge is not None
        new_m, new_dir = self.snapshot_assets(snapshot_by_id(state, registry, snapshot_id))
        base_m, base_dir = self.snapshot_assets(snapshot_by_id(state, registry, current))
        key = (new_m, base_m, hashlib.sha256(claim).digest())
        with self._lock:
            known = self._decisions.get(key)
        if known is not None:
            return known
        decision = self.judge(GateCase(snapshot_id, new_m, new_dir, current, base_m, base_dir,
                                       claim))
        with self._lock:
            self._decisions[key] = decision
        log.log(logging.INFO if decision.accepted else logging.WARNING,
                "quality gate: snapshot %d against snapshot %d: %s", snapshot_id, current,
                decision.reason)
        return decision

    # ---- model ----------------------------------------------------------------------------

    def genesis_manifest(self) -> Manifest:
        with self._lock:
            if self._genesis_manifest is None:
                self._genesis_manifest = read_manifest(
                    self.genesis_store, self.genesis.manifest_hash
                )
            return self._genesis_manifest

    def manifest_of(self, snapshot: SnapshotInfo) -> Manifest:
        """The snapshot as a manifest; the architecture beyond the shape is the genesis spec."""
        spec = self.genesis_manifest().spec
        shape = (len(snapshot.expert_hashes), {len(row) for row in snapshot.expert_hashes})
        if shape != (spec.num_hidden_layers, {spec.num_local_experts}):
            raise GovernanceError(
                f"snapshot {snapshot.snapshot_id} does not have the genesis shape "
                f"{spec.num_hidden_layers}x{spec.num_local_experts}"
            )
        return Manifest(
            spec=spec,
            trunk=snapshot.trunk_hash.hex(),
            experts=tuple(tuple(h.hex() for h in row) for row in snapshot.expert_hashes),
        )

    def snapshot_assets(self, snapshot: SnapshotInfo) -> tuple[str, str]:
        """(manifest hash, blob dir) of a snapshot; non-genesis manifests are written, with
        copies of any genesis blobs they reuse, into the node's blob store."""
        manifest = self.manifest_of(snapshot)
        data = manifest.to_bytes()
        digest = _sha256_hex(data)
        if digest == self.genesis.manifest_hash:
            return digest, str(self.genesis.model_dir)
        if snapshot.snapshot_id == 1:
            # Snapshot 1 is registered by ModelRegistry's constructor from the genesis assets.
            raise GovernanceError(
                f"genesis snapshot rebuilds to manifest {digest}, but the chain config names "
                f"{self.genesis.manifest_hash}: genesis_contracts.json and the genesis model differ"
            )
        missing = []
        for blob in dict.fromkeys(manifest.blob_hashes()):
            if self.store.has(blob):
                continue
            if self.genesis_store.has(blob):
                self.store.put(self.genesis_store.get(blob))  # get() re-verifies the hash
            else:
                missing.append(blob)
        if missing:
            raise MissingBlobs(snapshot.snapshot_id, missing)
        self.store.put(data)
        return digest, str(self.store.root)

    # ---- dataset --------------------------------------------------------------------------

    def dataset_path(self, content_hash: bytes) -> Path:
        return self.dataset_dir / f"{content_hash.hex()}{DATASET_SUFFIX}"

    def dataset_assets(self, dataset: DatasetInfo) -> tuple[Path, bytes]:
        """(file, key) of a revealed dataset, checked once: file sha256 = content hash and the
        key opens it. A record count that differs from the chain's is logged, not fatal: the
        content hash already pins the file governance voted for."""
        if dataset.key is None:
            raise ValueError(f"dataset {dataset.dataset_id} has no revealed key")
        content = dataset.content_hash.hex()
        if content == self.genesis.dataset_sha256:
            path = self.genesis.dataset_path
        else:
            path = self.dataset_path(dataset.content_hash)
            if not path.is_file():
                raise MissingDataset(content, path)
        check = (str(path), dataset.key)
        with self._lock:
            done = check in self._checked_datasets
        if not done:
            try:
                with EncryptedDataset.open(path, dataset.key, expected_sha256=content) as ds:
                    records = len(ds)
            except DatasetError as exc:
                raise GovernanceError(f"dataset {dataset.dataset_id}: {exc}") from exc
            if records != dataset.record_count:
                log.warning("dataset %d: file has %d records, DatasetDAO says %d",
                            dataset.dataset_id, records, dataset.record_count)
            with self._lock:
                self._checked_datasets.add(check)
        return path, dataset.key


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


__all__ = [
    "EpochAssetResolver",
    "GateCase",
    "GateDecision",
    "SnapshotJudge",
    "GenesisAssets",
    "GovernanceError",
    "EpochAssets",
    "MissingBlobs",
    "MissingDataset",
]
