"""LevelDB (plyvel) behind py-evm's AtomicDatabaseAPI.

Each `atomic_batch()` is committed as one LevelDB WriteBatch, which LevelDB applies atomically
(all or nothing, even across a crash).  Deliberately not `AtomicDB(wrapped_db=...)`: that commits
a batch key by key, so a crash mid-commit leaves half a block on disk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import plyvel
from eth.abc import AtomicWriteBatchAPI
from eth.db.backends.base import BaseAtomicDB, BaseDB

_DELETED = None


class DatabaseError(RuntimeError):
    """The data directory cannot be opened (locked, corrupted, not a LevelDB)."""


class StorageError(DatabaseError):
    """A write to the database failed (disk full, read-only file system, I/O error).  LevelDB
    applied none of it: the database still ends at the last batch that was written."""


def _reason(exc: plyvel.Error) -> str:
    """plyvel's message (it carries LevelDB's status as bytes)."""
    arg = exc.args[0] if exc.args else exc
    return arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg)


def _write_failed(path: Path, exc: plyvel.Error) -> StorageError:
    return StorageError(
        f"cannot write the chain database {path}: {_reason(exc)} (disk full or read-only? "
        "the chain stays at its last stored block; free space or fix the mount, then restart)"
    )


class LevelDB(BaseAtomicDB):
    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if create:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db: plyvel.DB | None = plyvel.DB(
                str(self.path), create_if_missing=create, paranoid_checks=True
            )
        except plyvel.CorruptionError as exc:
            raise DatabaseError(f"database {self.path} is corrupted: {_reason(exc)}") from exc
        except plyvel.Error as exc:
            raise DatabaseError(f"cannot open database {self.path}: {_reason(exc)}") from exc

    @property
    def db(self) -> plyvel.DB:
        if self._db is None:
            raise DatabaseError(f"database {self.path} is closed")
        return self._db

    def __getitem__(self, key: bytes) -> bytes:
        value = self.db.get(key)
        if value is None:
            raise KeyError(key)
        return bytes(value)

    def __setitem__(self, key: bytes, value: bytes) -> None:
        try:
            self.db.put(key, value)
        except plyvel.Error as exc:
            raise _write_failed(self.path, exc) from exc

    def __delitem__(self, key: bytes) -> None:
        # py-evm expects KeyError for a missing key.
        if self.db.get(key) is None:
            raise KeyError(key)
        try:
            self.db.delete(key)
        except plyvel.Error as exc:
            raise _write_failed(self.path, exc) from exc

    def _exists(self, key: bytes) -> bool:
        return self.db.get(key) is not None

    def atomic_batch(self) -> AbstractContextManager[AtomicWriteBatchAPI]:
        return collected_batch(self, self.write)

    def write(self, changes: dict[bytes, bytes | None]) -> None:
        """Apply puts (value) and deletes (None) as one LevelDB WriteBatch."""
        if not changes:
            return
        try:
            with self.db.write_batch(transaction=True) as wb:
                for key, value in changes.items():
                    if value is _DELETED:
                        wb.delete(key)
                    else:
                        wb.put(key, value)
        except plyvel.Error as exc:
            raise _write_failed(self.path, exc) from exc

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def closed(self) -> bool:
        return self._db is None


class WritesOverlay:
    """Writes held in a dict over a base database (None marks a delete): reads see them first.
    Shared by a block's write batch (PendingWrites) and the node's per-block WriteBuffer."""

    _changes: dict[bytes, bytes | None]
    base: Any

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._changes:
            value = self._changes[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        return self.base[key]  # type: ignore[no-any-return]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.base  # noqa: B018 - raises when out of context
        self._changes[key] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._changes[key] = _DELETED

    def _exists(self, key: bytes) -> bool:
        if key in self._changes:
            return self._changes[key] is not _DELETED
        return bool(self.base.exists(key))


@contextmanager
def collected_batch(
    db: BaseDB, apply: Callable[[dict[bytes, bytes | None]], None]
) -> Iterator[AtomicWriteBatchAPI]:
    """An atomic_batch() body: writes collect in a PendingWrites over `db`; on success `apply`
    gets them all at once, on an exception they are dropped."""
    batch = PendingWrites(db)
    try:
        yield batch
    except BaseException:
        batch.close()
        raise
    apply(batch.take())


class PendingWrites(WritesOverlay, BaseDB, AtomicWriteBatchAPI):
    """Uncommitted writes over a database: reads see them first, then the database."""

    def __init__(self, base: BaseDB) -> None:
        self._base: BaseDB | None = base
        self._changes = {}

    @property
    def base(self) -> BaseDB:
        if self._base is None:
            raise RuntimeError("write batch used outside its context")
        return self._base

    def take(self) -> dict[bytes, bytes | None]:
        changes = self._changes
        self.close()
        return changes

    def close(self) -> None:
        self._changes = {}
        self._base = None

    def __len__(self) -> int:
        return len(self._changes)
