from __future__ import annotations

from pathlib import Path

import pytest
from poai.db.buffer import WriteBuffer
from poai.db.leveldb import DatabaseError, LevelDB


def test_reads_writes_deletes(tmp_path: Path) -> None:
    db = LevelDB(tmp_path / "db")
    db[b"a"] = b"1"
    assert db[b"a"] == b"1" and db.exists(b"a") and b"a" in db
    del db[b"a"]
    assert not db.exists(b"a")
    with pytest.raises(KeyError):
        db[b"a"]
    with pytest.raises(KeyError):
        del db[b"missing"]
    db.close()


def test_atomic_batch_commits_all_or_nothing(tmp_path: Path) -> None:
    db = LevelDB(tmp_path / "db")
    db[b"old"] = b"x"
    with db.atomic_batch() as batch:
        batch[b"k1"] = b"v1"
        del batch[b"old"]
        assert batch[b"k1"] == b"v1"  # the batch reads its own writes
        assert not batch.exists(b"old")
        assert not db.exists(b"k1")  # nothing on disk before the end
    assert db[b"k1"] == b"v1" and not db.exists(b"old")

    with pytest.raises(RuntimeError):
        with db.atomic_batch() as batch:
            batch[b"k2"] = b"v2"
            raise RuntimeError("boom")
    assert not db.exists(b"k2")
    db.close()


def test_data_survives_reopen_and_close_is_explicit(tmp_path: Path) -> None:
    db = LevelDB(tmp_path / "db")
    with db.atomic_batch() as batch:
        batch[b"k"] = b"v"
    db.close()
    assert db.closed
    with pytest.raises(DatabaseError, match="closed"):
        db[b"k"]
    again = LevelDB(tmp_path / "db")
    assert again[b"k"] == b"v"
    again.close()


def test_second_open_of_the_same_dir_is_a_clear_error(tmp_path: Path) -> None:
    db = LevelDB(tmp_path / "db")
    with pytest.raises(DatabaseError, match="cannot open"):
        LevelDB(tmp_path / "db")
    db.close()


def test_corrupted_database_is_a_clear_error(tmp_path: Path) -> None:
    db = LevelDB(tmp_path / "db")
    for i in range(100):
        db[b"key%d" % i] = b"value" * 100
    db.close()
    for f in (tmp_path / "db").iterdir():
        if f.name.startswith("MANIFEST"):
            f.write_bytes(b"garbage" * 10)
    with pytest.raises(DatabaseError):
        LevelDB(tmp_path / "db")


def test_write_buffer_holds_writes_until_flush(tmp_path: Path) -> None:
    db = LevelDB(tmp_path / "db")
    db[b"gone"] = b"1"
    buf = WriteBuffer(db)
    buf[b"a"] = b"1"
    with buf.atomic_batch() as batch:  # py-evm's nested batches land in the buffer
        batch[b"b"] = b"2"
    del buf[b"gone"]
    assert buf[b"a"] == b"1" and buf[b"b"] == b"2" and not buf.exists(b"gone")
    assert not db.exists(b"a") and db.exists(b"gone")
    buf.flush()
    assert db[b"a"] == b"1" and db[b"b"] == b"2" and not db.exists(b"gone")
    buf[b"c"] = b"3"
    buf.discard()
    assert not buf.exists(b"c")
    buf.flush()
    assert not db.exists(b"c")
    db.close()


def test_buffer_over_buffer_flushes_into_its_parent(tmp_path: Path) -> None:
    db = LevelDB(tmp_path / "db")
    parent = WriteBuffer(db)
    child = WriteBuffer(parent)
    child[b"x"] = b"1"
    child.flush()
    assert parent[b"x"] == b"1" and not db.exists(b"x")
    parent.flush()
    assert db[b"x"] == b"1"
    db.close()
