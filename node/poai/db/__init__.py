"""Persistence: LevelDB behind py-evm's AtomicDatabaseAPI, and the per-block write buffer."""

from poai.db.buffer import WriteBuffer
from poai.db.leveldb import DatabaseError, LevelDB, StorageError

__all__ = ["DatabaseError", "LevelDB", "StorageError", "WriteBuffer"]
