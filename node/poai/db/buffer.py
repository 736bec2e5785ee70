"""A block's worth of writes held in memory, then flushed to disk as one batch.

py-evm writes a block's state trie nodes, receipts, transactions, header and canonical-head
pointers in many small steps.  The chain runs over a `WriteBuffer`; after a block is imported
(or mined) the node calls `flush()`, which hands every write to the underlying database's
`atomic_batch()` at once (one LevelDB WriteBatch), so a crash leaves either the whole block or
the previous head.  `discard()` drops the writes of a block that failed.
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from eth.abc import AtomicDatabaseAPI, AtomicWriteBatchAPI
from eth.db.backends.base import BaseAtomicDB

from poai.db.leveldb import LevelDB, WritesOverlay, collected_batch


class WriteBuffer(WritesOverlay, BaseAtomicDB):
    def __init__(self, base: AtomicDatabaseAPI) -> None:
        self.base = base
        self._changes = {}

    def atomic_batch(self) -> AbstractContextManager[AtomicWriteBatchAPI]:
        return collected_batch(self, lambda changes: self._changes.update(changes))

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
