from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from poai.model.store import BlobError, BlobStore


def test_put_get_names_blob_by_sha256(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    data = b"expert weights" * 100
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.path(digest) == tmp_path / digest
    assert store.has(digest)
    assert store.get(digest) == data
    assert store.put(data) == digest  # idempotent
    assert store.digests() == [digest]
    assert [p.name for p in tmp_path.iterdir()] == [digest]  # no temp files left behind


def test_missing_blob_error_names_hash(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = hashlib.sha256(b"absent").hexdigest()
    assert not store.has(digest)
    with pytest.raises(BlobError, match=f"{digest}.*missing") as e:
        store.get(digest)
    assert e.value.digest == digest


def test_corrupted_blob_is_rejected_and_names_hash(
    tmp_path: Path, flip_byte: Callable[[Path, int], None],
) -> None:
    store = BlobStore(tmp_path)
    digest = store.put(b"0123456789" * 50)
    flip_byte(store.path(digest), 17)
    with pytest.raises(BlobError, match=f"{digest}.*corrupted"):
        store.get(digest)


def test_truncated_blob_is_rejected(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.put(b"abc" * 99)
    store.path(digest).write_bytes(b"abc")
    with pytest.raises(BlobError, match=digest):
        store.get(digest)


def test_put_repairs_a_corrupted_file(
    tmp_path: Path, flip_byte: Callable[[Path, int], None],
) -> None:
    store = BlobStore(tmp_path)
    data = b"payload" * 20
    digest = store.put(data)
    flip_byte(store.path(digest), 0)
    assert store.put(data) == digest
    assert store.get(digest) == data


@pytest.mark.parametrize("bad", ["", "abc", "A" * 64, "g" * 64, "../" + "0" * 61, "0" * 65])
def test_malformed_digest_is_rejected(tmp_path: Path, bad: str) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(BlobError, match="not a lowercase hex sha256"):
        store.get(bad)
