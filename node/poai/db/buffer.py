"""A block's worth of writes held in memory, then flushed to disk as one batch.

py-evm writes a block's state trie nodes, receipts, transactions, header and canonical-head
pointers in many small steps.  The chain runs over a `WriteBuffer`; after a block is imported
(or mined) the node calls `flush()`, which hands every write to the underlying database's
`atomic_batch()` at once (one LevelDB WriteBatch), so a crash leaves either the whole block or
the previous head.  `discard()` drops the writes of a block that failed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from eth.abc import AtomicDatabaseAPI, AtomicWriteBatchAPI
from eth.db.backends.base import BaseAtomicDB

from poai.db.leveldb import LevelDB, PendingWrites


class WriteBuffer(BaseAtomicDB):
    def __init__(self, base: AtomicDatabaseAPI) -> None:
        self.base = base
        self._changes: dict[bytes, bytes | None] = {}

    def __getitem__(self, key: bytes) -> bytes:
        if key in self._changes:
            value = self._changes[key]
            if value is None:
                raise KeyError(key)
            return value
        return self.base[key]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._changes[key] = bytes(value)

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._changes[key] = None

    def _exists(self, key: bytes) -> bool:
        if key in self._changes:
            return self._changes[key] is not None
        return self.base.exists(key)

    @contextmanager
    def atomic_batch(self) -> Iterator[AtomicWriteBatchAPI]:
        batch = PendingWrites(self)
        try:
            yield batch
        except BaseException:
            batch.close()
            raise
        self._changes.update(batch.take())

    @property
    def pending(self) -> int:
        return len(self._changes)

    def flush(self) -> None:
        """Write everything buffered to the base database in one atomic batch."""
        if not self._changes:
            return
        changes, self._changes = self._changes, {}
        if isinstance(self.base, LevelDB):
            self.base.write(changes)
            return
        with self.base.atomic_batch() as batch:
            for key, value in changes.items():
                if value is None:
                    if key in batch:
                        del batch[key]
                else:
                    batch[key] = value

    def discard(self) -> None:
        self._changes = {}
