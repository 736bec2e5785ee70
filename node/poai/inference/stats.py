"""Expert use: routed tokens and requests per expert, over every request this node served.

Kept by expert blob hash (an expert's identity: the same weights in another snapshot are the
same expert) in a LevelDB beside the chain (``<datadir>/inference/experts``), so the counts
survive restarts. These are the node's own traffic statistics, not consensus data.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from poai.db.leveldb import LevelDB
from poai.model.blobs import expert_name
from poai.model.snapshot import Manifest

_PREFIX = b"expert:"
_TOTAL = b"total"


class ExpertStats:
    """Counts in memory, written through to LevelDB at ``path`` (memory only when None)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._lock = threading.Lock()
        self._db: LevelDB | None = None
        self._records: dict[str, dict[str, int]] = {}
        self.requests = 0
        self.tokens = 0
        if path is not None:
            Path(path).mkdir(parents=True, exist_ok=True)
            self._db = LevelDB(path)
            for key, value in self._db.db.iterator(prefix=_PREFIX):
                self._records[key[len(_PREFIX):].decode()] = json.loads(value)
            if self._db.exists(_TOTAL):
                total = json.loads(self._db[_TOTAL])
                self.requests, self.tokens = int(total["requests"]), int(total["tokens"])

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def record(self, manifest: Manifest, counts: list[list[int]], tokens: int) -> None:
        """One served request: ``counts[layer][expert]`` routed tokens (prompt and output)."""
        now = int(time.time())
        with self._lock:
            changed: dict[str, dict[str, int]] = {}
            for layer, row in enumerate(counts):
                for e, n in enumerate(row):
                    if n <= 0:
                        continue
                    digest = manifest.experts[layer][e]
                    rec = self._records.setdefault(
                        digest, {"routedTokens": 0, "requests": 0, "lastUsed": 0})
                    rec["routedTokens"] += int(n)
                    rec["requests"] += 1
                    rec["lastUsed"] = now
                    changed[digest] = rec
            self.requests += 1
            self.tokens += tokens
            if self._db is not None:
                with self._db.db.write_batch(sync=False) as batch:
                    for digest, rec in changed.items():
                        batch.put(_PREFIX + digest.encode(), json.dumps(rec).encode())
                    batch.put(_TOTAL, json.dumps({"requests": self.requests,
                                                  "tokens": self.tokens}).encode())

    def experts(self, manifest: Manifest,
                contributors: dict[tuple[int, int], str] | None = None) -> list[dict[str, Any]]:
        """Every expert slot of ``manifest`` with its counts (zero when never routed to)."""
        out = []
        per_layer = manifest.spec.num_local_experts
        with self._lock:
            for layer, row in enumerate(manifest.experts):
                for e, digest in enumerate(row):
                    rec = self._records.get(digest, {})
                    last = rec.get("lastUsed", 0)
                    out.append({
                        "id": layer * per_layer + e, "name": expert_name(layer, e),
                        "layer": layer, "index": e, "blob": "0x" + digest,
                        "contributor": (contributors or {}).get((layer, e)),
                        "routedTokens": rec.get("routedTokens", 0),
                        "requests": rec.get("requests", 0),
                        "lastUsed": last or None,
                    })
        return out

    def top(self, manifest: Manifest, n: int,
            contributors: dict[tuple[int, int], str] | None = None) -> list[dict[str, Any]]:
        rows = self.experts(manifest, contributors)
        rows.sort(key=lambda r: (-r["routedTokens"], r["id"]))
        return rows[:n]
