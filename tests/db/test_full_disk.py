"""A block this node built, committed onto a full disk: one StorageError in words, the node
told once (the CLI then stops with that line), mining halted, nothing half-written; on room to
spare the data dir opens at the previous head and takes the next block.  (The import path, a
sync onto a full disk, runs against a real node in tests/integration/test_crash_moments.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest
from poai.db.leveldb import StorageError
from poai.node import Node
from support.disk import fill, mount_tmpfs, unmount
from support.p2p_chainmaker import seal_template
from support.poai_tiny import tiny_config


def _sealed(node: Node) -> tuple[object, int, bytes]:
    pending = node.build_template()
    block = seal_template(node, pending.template)
    return pending, int.from_bytes(block.header.nonce, "big"), bytes(block.header.mix_hash)


def test_commit_on_a_full_disk(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    if not mount_tmpfs(disk, "2m"):
        pytest.skip("needs root to mount a small tmpfs")
    try:
        config = tiny_config(tmp_path / "assets")
        node = Node(disk / "data", config)
        node.start()
        failures: list[StorageError] = []
        node.on_storage_failure(failures.append)
        try:
            before = node.head()
            pending, nonce, mix = _sealed(node)
            fill(disk)
            with pytest.raises(StorageError, match="No space left on device") as err:
                node.commit_block(pending, nonce, mix)  # type: ignore[arg-type]
            assert "cannot write the chain database" in str(err.value)
            assert "b'" not in str(err.value)  # LevelDB's words, not a bytes repr
            assert failures == [err.value]
            assert node.head() == before
            assert node.producer._stop.is_set()  # mining would stop here
            pending, nonce, mix = _sealed(node)
            with pytest.raises(StorageError):
                node.commit_block(pending, nonce, mix)  # type: ignore[arg-type]
            assert len(failures) == 1  # told once
        finally:
            node.stop()
        (disk / "filler").unlink()
        again = Node(disk / "data", config)
        again.start()
        try:
            assert again.head() == before
            pending, nonce, mix = _sealed(again)
            result = again.commit_block(pending, nonce, mix)  # type: ignore[arg-type]
            assert result is not None and again.head().block_number == before.block_number + 1
        finally:
            again.stop()
    finally:
        unmount(disk)
