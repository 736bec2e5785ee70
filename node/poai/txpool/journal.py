"""Local transactions on disk, as geth's `transactions.rlp`: what this node's own clients sent
(eth_sendRawTransaction, eth_sendTransaction) survives a restart or a crash while it is still
pending.  Gossiped transactions are not kept: their senders' nodes keep them.

The file is a sequence of records, each `length (4 bytes) | crc32 (4 bytes) | raw transaction`.
A record is appended as the pool accepts a transaction (no fsync: a killed process loses
nothing the kernel holds; a power cut may lose the tail, as in geth).  Reading stops at the
first record that is cut short or fails its checksum — the tail a crash can leave — and says
so; the records before it are kept.  `rewrite` replaces the file atomically with what is still
pending (at start, at a clean stop, and when the file has grown well past the pool's share).
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

log = logging.getLogger(__name__)

_HEADER = struct.Struct(">II")  # length, crc32
MAX_RECORD = 1 << 20  # far above the pool's 128 KiB transaction limit: a bigger length is damage


class TxJournal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: BinaryIO | None = None
        self.appended = 0  # records appended since the last rewrite

    def load(self) -> tuple[list[bytes], str | None]:
        """The raw transactions recorded, in order, and what was wrong with the rest of the
        file (None when it was read to its end)."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return [], None
        records: list[bytes] = []
        pos = 0
        while pos < len(data):
            if len(data) - pos < _HEADER.size:
                return records, f"a record cut short at byte {pos} (dropped)"
            length, crc = _HEADER.unpack_from(data, pos)
            body = data[pos + _HEADER.size:pos + _HEADER.size + length]
            if length > MAX_RECORD or len(body) < length:
                return records, f"a record cut short at byte {pos} (dropped with the rest)"
            if zlib.crc32(body) != crc:
                return records, f"a damaged record at byte {pos} (dropped with the rest)"
            records.append(body)
            pos += _HEADER.size + length
        return records, None

    def append(self, raw: bytes) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 - kept open between appends
        self._file.write(_HEADER.pack(len(raw), zlib.crc32(raw)) + raw)
        self._file.flush()
        self.appended += 1

    def rewrite(self, raws: Iterable[bytes]) -> int:
        """Replace the journal with `raws` (written aside, then renamed over it); returns how
        many were written."""
        self.close()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        count = 0
        with open(tmp, "wb") as f:
            for raw in raws:
                f.write(_HEADER.pack(len(raw), zlib.crc32(raw)) + raw)
                count += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.appended = 0
        return count

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


__all__ = ["MAX_RECORD", "TxJournal"]
