from __future__ import annotations

from pathlib import Path

from poai.inference.stats import ExpertStats
from poai.model.snapshot import read_manifest
from poai.model.store import BlobStore


def test_counts_persist_across_reopen(tmp_path: Path, tiny_store: tuple) -> None:
    store, digest, _ = tiny_store
    manifest = read_manifest(store, digest)
    stats = ExpertStats(tmp_path / "experts")
    stats.record(manifest, [[5, 0, 1, 0], [0, 3, 3, 0]], tokens=3)
    stats.record(manifest, [[1, 0, 0, 0], [0, 0, 0, 2]], tokens=1)
    stats.close()
    again = ExpertStats(tmp_path / "experts")
    rows = {r["name"]: r for r in again.experts(manifest)}
    assert rows["layer0.expert0"]["routedTokens"] == 6
    assert rows["layer0.expert0"]["requests"] == 2
    assert rows["layer1.expert3"]["routedTokens"] == 2
    assert rows["layer0.expert1"]["routedTokens"] == 0
    assert rows["layer0.expert1"]["lastUsed"] is None
    assert rows["layer1.expert1"]["blob"] == "0x" + manifest.experts[1][1]
    assert (again.requests, again.tokens) == (2, 4)
    top = again.top(manifest, 2)
    assert [r["name"] for r in top] == ["layer0.expert0", "layer1.expert1"]
    again.close()


def test_memory_only(tiny_store: tuple) -> None:
    store, digest, _ = tiny_store
    stats = ExpertStats(None)
    stats.record(read_manifest(store, digest), [[1, 1, 0, 0], [0, 0, 1, 1]], tokens=1)
    assert stats.requests == 1
    assert isinstance(store, BlobStore)
