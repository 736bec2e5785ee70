"""The quality gate as the chain runs it: the pure decision (`poai.quiz.gate.judge`) on the
models a governance reading names, with each model's validation losses computed once.

`EpochAssetResolver` (poai.governance.epoch_context) calls a `SnapshotGate` for each newly
scheduled snapshot at the first epoch reading that reaches its activation epoch; the verdict is
a function of content only (both manifests, the claim, the chain parameters), so it is cached
by content, in memory and in `<blob_dir>/gate/` (one small JSON file per decision; the node
recomputes when a file is missing or unreadable).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path

from poai.chain.config import ChainConfig
from poai.governance.epoch_context import GateCase, GateDecision
from poai.quiz.gate import GateParams, judge, validation_windows, window_losses

log = logging.getLogger("poai.governance")

_LOSSES_CACHE = 4


def gate_params(config: ChainConfig) -> GateParams:
    return GateParams(windows=config.quality_gate.windows, grid_bits=config.quiz.grid_bits,
                      min_delta=Fraction(config.quality_gate.min_delta))


def validation_text() -> bytes:
    # deferred: poai.model.genesis names the packaged assets (no heavy import)
    from poai.model.genesis import VALIDATION_TEXT

    return VALIDATION_TEXT.read_bytes()


def model_window_losses(blob_dir: str | Path, manifest_hash: str, params: GateParams,
                        text: bytes | None = None) -> list[float]:
    """One snapshot's per-window validation losses under the consensus settings."""
    # deferred: transformers (~1-2 s to import) loads on the first gate evaluation
    from poai.model.config import set_consensus_threads
    from poai.model.snapshot import assemble_model
    from poai.model.store import BlobStore

    set_consensus_threads()
    model = assemble_model(BlobStore(blob_dir), manifest_hash)
    windows = validation_windows(text if text is not None else validation_text(), params)
    return window_losses(model, windows)


class SnapshotGate:
    """`SnapshotJudge` of one chain: `gate(case) -> GateDecision`. Thread-safe."""

    def __init__(self, config: ChainConfig, cache_dir: str | Path | None = None) -> None:
        self.params = gate_params(config)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._losses: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()
        self._text: bytes | None = None

    def losses(self, blob_dir: str, manifest_hash: str) -> list[float]:
        with self._lock:
            known = self._losses.get(manifest_hash)
            if self._text is None:
                self._text = validation_text()
            text = self._text
        if known is not None:
            return known
        got = model_window_losses(blob_dir, manifest_hash, self.params, text)
        with self._lock:
            self._losses[manifest_hash] = got
            while len(self._losses) > _LOSSES_CACHE:
                self._losses.popitem(last=False)
        return got

    def _cache_path(self, case: GateCase) -> Path | None:
        if self.cache_dir is None:
            return None
        p = self.params
        key = hashlib.sha256(json.dumps([
            case.manifest_hash, case.base_manifest_hash, case.claim.hex(), p.windows,
            p.grid_bits, str(p.min_delta), p.seq_len,
            hashlib.sha256(self._text or validation_text()).hexdigest(),
        ]).encode()).hexdigest()
        return self.cache_dir / f"{key}.json"

    def __call__(self, case: GateCase) -> GateDecision:
        path = self._cache_path(case)
        if path is not None and path.is_file():
            try:
                doc = json.loads(path.read_text())
                return GateDecision(bool(doc["accepted"]), str(doc["reason"]))
            except (OSError, ValueError, KeyError, TypeError):
                pass  # recompute
        started = time.monotonic()
        base = self.losses(case.base_blob_dir, case.base_manifest_hash)
        new = self.losses(case.blob_dir, case.manifest_hash)
        verdict = judge(case.claim, base, new, self.params)
        log.info("quality gate: snapshot %d evaluated on %d windows in %.1f s", case.snapshot_id,
                 self.params.windows, time.monotonic() - started)
        decision = GateDecision(verdict.accepted, verdict.reason)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps({"accepted": decision.accepted,
                                           "reason": decision.reason}))
                tmp.replace(path)
            except OSError as exc:
                log.warning("quality gate: decision not cached: %s", exc)
        return decision


__all__ = ["SnapshotGate", "gate_params", "model_window_losses", "validation_text"]
