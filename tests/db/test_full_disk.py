"""A block this node built, committed onto a full disk: one StorageError in words, the node
told once (the CLI then stops with that line), mining halted, nothing half-written; on room to
spare the data dir opens at the previous head and takes the next block.  The disk is a real
tmpfs filled up where the machine lets the test mount one (root), and always a file-size limit
(RLIMIT_FSIZE) that makes LevelDB's next write fail with EFBIG as a full disk would.  (The
import path, a sync onto a full disk, runs against a real node in
tests/integration/test_crash_moments.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest
from poai.db.leveldb import StorageError
from poai.node import Node
from support.disk import file_size_limit, fill, mount_tmpfs, unmount
from support.p2p_chainmaker import seal_template
from support.poai_tiny import tiny_config


def _sealed(node: Node) -> tuple[object, int, bytes]:
    pending = node.build_template()
    block = seal_template(node, pending.template)
    return pending, int.from_bytes(block.header.nonce, "big"), bytes(block.header.mix_hash)


@contextmanager
def _tmpfs_full(disk: Path) -> Iterator[None]:
    fill(disk)
    yield
    (disk / "filler").unlink()


def _largest_file(datadir: Path) -> Path:
    return max((p for p in datadir.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


@pytest.mark.parametrize("how", ["tmpfs", "file-size limit"])
def test_commit_on_a_full_disk(tmp_path: Path, how: str) -> None:
    disk = tmp_path / "disk"
    if how == "tmpfs" and not mount_tmpfs(disk, "2m"):
        pytest.skip("needs root to mount a small tmpfs (the file-size limit case runs anyway)")
    try:
        config = tiny_config(tmp_path / "assets")
        node = Node(disk / "data", config)
        node.start()
        failures: list[StorageError] = []
        node.on_storage_failure(failures.append)
        try:
            before = node.head()
            pending, nonce, mix = _sealed(node)
            full: AbstractContextManager[None] = _tmpfs_full(disk) if how == "tmpfs" else \
                file_size_limit(_largest_file(disk / "data"))
            words = "No space left on device" if how == "tmpfs" else "File too large"
            with full:
                with pytest.raises(StorageError, match=words) as err:
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
        if how == "tmpfs":
            unmount(disk)
