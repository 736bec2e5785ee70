"""The INFERENCE_CHECK precompile (address 0x…0f00) in PoAI's EVM, and the same check for node
services (the market challenger) against the node's own chain state.

The precompile decodes the job (``poai.consensus.inference_check.decode_call``), charges its
gas, resolves the job's model snapshot in the calling state (ModelRegistry ``snapshot(id)`` ->
trunk and per-slot expert blobs and registry expert ids -> a manifest whose blobs are in the
node's blob store, as epoch quiz assets are resolved), loads the model (a bounded LRU cache by
manifest hash), runs ``check_claim`` (float32, eager kernels, one thread) and returns the
ABI-encoded verdict.  Anything else — malformed or over-limit input, an unknown snapshot, blobs
missing from the store, a chain without ModelRegistry — fails the call with
:class:`InferenceCheckFailed` (a ``VMError``: the gas given is consumed, the one-line reason is
the computation's error), never an exception that escapes the EVM.

Gas: ``G_BASE + G_PER_TOKEN * (len(prompt) + 1 + len(output))``, charged before the replay.
Sizing (bench/inference_check.py, docs/BENCHMARKS.md "INFERENCE_CHECK"): the check replays a
token of the genesis model in 0.54 ms plus 15 ms per call (1 thread); py-evm runs ordinary
opcodes at 0.74 Mgas/s in the same run, so gas at the speed of ordinary code would be ~400 per
token and ~11,000 per call.  G_PER_TOKEN = 2,000 and G_BASE = 50,000 charge ~5x that (the
slowest honest kernels are 1.3x slower; the figures move with load); the largest job (512
positions) costs 1,074,000 gas, 3.6% of a 30M-gas block.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth.abc import ComputationAPI, StateAPI
from eth.exceptions import VMError
from eth_typing import Address

from poai.chain.config import ChainConfig, config_contracts
from poai.consensus.inference_check import (
    INFERENCE_CHECK_ADDRESS,
    JobClaim,
    MalformedCall,
    Verdict,
    check_claim,
    decode_call,
    encode_call,
    encode_verdict,
    gas_for,
)
from poai.governance.epoch_context import EpochAssetResolver, GenesisAssets, GovernanceError
from poai.governance.reader import GovernanceReadError, snapshot_by_id
from poai.model.snapshot import ManifestError
from poai.model.store import BlobError

log = logging.getLogger("poai.inference_check")

MODEL_CACHE_SIZE = 2  # loaded snapshot models (the active one and the one before it)


class InferenceCheckFailed(VMError):
    """The INFERENCE_CHECK call cannot give a verdict; the message says why in one line."""


@dataclass(frozen=True)
class JobSnapshot:
    """A snapshot as the check needs it: its manifest in a blob store and its registry ids."""

    snapshot_id: int
    manifest_hash: str
    blob_dir: str
    expert_ids_by_slot: tuple[tuple[int, ...], ...]  # [layer][expert] -> registry expert id


class SnapshotModels:
    """Resolves a job's snapshot in a chain state and keeps the loaded models (LRU by manifest
    hash).  One per chain (the node's blob store); thread-safe: checks run one at a time."""

    def __init__(self, registry: bytes, resolver: EpochAssetResolver,
                 cache_size: int = MODEL_CACHE_SIZE) -> None:
        self.registry = registry
        self.resolver = resolver
        self.cache_size = cache_size
        self._models: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def for_config(cls, config: ChainConfig, blob_dir: Any, dataset_dir: Any) -> SnapshotModels:
        cc = config_contracts(config)
        if cc is None:
            raise ValueError("the chain config has no genesis contracts (no ModelRegistry)")
        resolver = EpochAssetResolver(cc.contracts, GenesisAssets.from_chain_config(config),
                                      blob_dir, dataset_dir)
        return cls(cc.contracts.registry, resolver)

    def resolve(self, state: StateAPI, snapshot_id: int) -> JobSnapshot:
        """The snapshot in `state`; raises InferenceCheckFailed (unknown, blobs missing)."""
        try:
            info = snapshot_by_id(state, self.registry, snapshot_id)
            manifest_hash, blob_dir = self.resolver.snapshot_assets(info)
        except GovernanceReadError as exc:
            raise InferenceCheckFailed(f"unknown snapshot {snapshot_id}: {_last(exc)}") from exc
        except (GovernanceError, BlobError, ManifestError, OSError) as exc:
            raise InferenceCheckFailed(f"snapshot {snapshot_id}: {exc}") from exc
        return JobSnapshot(snapshot_id, manifest_hash, blob_dir, info.expert_ids)

    def model(self, snap: JobSnapshot) -> Any:
        # deferred: transformers (~1-2 s to import) loads on the first check, not with the chain
        from poai.model.config import set_consensus_threads
        from poai.model.snapshot import assemble_model
        from poai.model.store import BlobStore

        with self._lock:
            model = self._models.get(snap.manifest_hash)
            if model is not None:
                self._models.move_to_end(snap.manifest_hash)
                return model
        set_consensus_threads()
        try:
            model = assemble_model(BlobStore(snap.blob_dir), snap.manifest_hash)
        except (BlobError, ManifestError, OSError, ValueError) as exc:
            raise InferenceCheckFailed(f"snapshot {snap.snapshot_id}: {exc}") from exc
        with self._lock:
            self._models[snap.manifest_hash] = model
            while len(self._models) > self.cache_size:
                self._models.popitem(last=False)
        return model

    def check(self, state: StateAPI, claim: JobClaim) -> Verdict:
        """The verdict on `claim` under its snapshot as `state` names it."""
        # deferred: see model()
        from poai.model.config import set_consensus_threads

        snap = self.resolve(state, claim.snapshot_id)
        model = self.model(snap)
        with self._lock:
            set_consensus_threads()
            return check_claim(model, snap.expert_ids_by_slot, claim)


def _last(exc: Exception) -> str:
    return str(exc).rsplit(": ", 1)[-1]


def inference_check_precompile(computation: ComputationAPI) -> ComputationAPI:
    """The precompile: see the module docstring."""
    models: SnapshotModels | None = getattr(computation, "snapshot_models", None)
    try:
        claim = decode_call(bytes(computation.msg.data))
    except MalformedCall as exc:
        raise InferenceCheckFailed(f"INFERENCE_CHECK: {exc}") from exc
    computation.consume_gas(gas_for(claim), reason="INFERENCE_CHECK precompile")
    if models is None:
        raise InferenceCheckFailed("INFERENCE_CHECK: this chain has no ModelRegistry")
    try:
        verdict = models.check(computation.state, claim)
    except InferenceCheckFailed:
        raise
    except Exception as exc:  # noqa: BLE001 - a check must never take the EVM down
        log.exception("INFERENCE_CHECK failed unexpectedly")
        raise InferenceCheckFailed(f"INFERENCE_CHECK: {type(exc).__name__}: {exc}") from exc
    computation.output = encode_verdict(verdict)
    return computation


PRECOMPILE: tuple[Address, Callable[[ComputationAPI], ComputationAPI]] = (
    Address(INFERENCE_CHECK_ADDRESS), inference_check_precompile)


def check_job_locally(chain: Any, claim: JobClaim, at: Any = None) -> Verdict:
    """The verdict the precompile would give on `claim`, computed by this node against the
    state after block `at` (a header; default the canonical head) of `chain` (a PoaiChain whose
    class carries the node's SnapshotModels).  Raises InferenceCheckFailed when the check
    cannot run (unknown snapshot, blobs missing); MalformedCall for out-of-range parameters."""
    decode_call(encode_call(claim))  # the precompile's input checks (limits, ranges)
    models = snapshot_models_of(chain)
    header = at if at is not None else chain.get_canonical_head()
    return models.check(chain.get_vm(header).state, claim)


def job_snapshot(chain: Any, snapshot_id: int, at: Any = None) -> JobSnapshot:
    """Snapshot `snapshot_id` as the state after block `at` (default: the canonical head) names
    it, its blobs in the node's store: what a market worker generates a job's answer with."""
    header = at if at is not None else chain.get_canonical_head()
    return snapshot_models_of(chain).resolve(chain.get_vm(header).state, snapshot_id)


def snapshot_models_of(chain: Any) -> SnapshotModels:
    """The SnapshotModels a chain's VM runs the precompile with."""
    vm_class = chain.get_vm_class_for_block_number(0)
    models: SnapshotModels | None = getattr(
        vm_class.get_state_class().computation_class, "snapshot_models", None)
    if models is None:
        raise InferenceCheckFailed("this chain has no ModelRegistry: nothing to check against")
    return models


__all__ = [
    "InferenceCheckFailed",
    "JobSnapshot",
    "PRECOMPILE",
    "SnapshotModels",
    "check_job_locally",
    "inference_check_precompile",
    "job_snapshot",
    "snapshot_models_of",
]
