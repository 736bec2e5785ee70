"""Expert payloads carried by the chain: from ModelRegistry upload transactions to the blob store.

An expert registered after genesis carries its bytes in calldata: ``registerExpert`` declares the
payload's sha256 and the sha256 of each ``CHUNK_BYTES`` chunk, then one ``uploadChunk(expertId,
chunkIndex, data)`` transaction per chunk, in order; the contract hashes each chunk against its
declaration and emits ``ChunkUploaded`` (and ``PayloadComplete`` after the last one). A snapshot
may only name experts whose payload is complete, so a node that imports the chain holds every
governed expert's bytes by the time a snapshot naming it can activate.

While importing canonical blocks, :class:`PayloadCollector` keeps the bytes of every accepted
chunk (a ``ChunkUploaded`` log in a successful receipt, the call sent straight to the registry)
in a content-addressed chunk store, and on ``PayloadComplete`` joins the chunks the registry
declared (read from the state after that block), checks the whole payload's sha256 against the
registered payload hash and writes it into the blob store. Reorgs: everything is addressed by
content — a chunk is stored under its own sha256, a blob under the sha256 of its bytes, and every
read re-hashes — so bytes seen in a block that later leaves the canonical chain are never taken
for anything but what they hash to; which expert a snapshot names, and that its payload is
complete, is only ever read from the canonical chain's state. Chunks sent through another
contract (an internal call) are not extracted: P2P blob exchange remains the fallback.

Dataset files travel the same way through DatasetDAO (``announceFile`` + ``uploadFileChunk``,
``FileChunkUploaded`` / ``FileComplete``): :class:`DatasetFileCollector` writes each completed
file, checked against its sha256 (the dataset's content hash), as
``<dataset_dir>/<sha256>.poaids``, where the epoch reading looks for it.

Abandoned uploads are bounded: the contracts expire an upload that is not complete
``UPLOAD_WINDOW`` blocks after its announcement, and the collectors delete stored chunks older
than ``CHUNK_TTL_S`` (a chunk dropped early only means the P2P fallback for that payload).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth.abc import BlockAPI, ChainAPI, ReceiptAPI, StateAPI
from eth_abi.abi import decode
from eth_utils.crypto import keccak

from poai.governance.contracts import DATASET_DAO, REGISTRY
from poai.governance.reader import GovernanceReadError, call_view
from poai.model.store import BlobError, BlobStore

log = logging.getLogger(__name__)

CHUNK_BYTES = 120_000  # ModelRegistry.CHUNK_BYTES
UPLOAD_SELECTOR = keccak(text="uploadChunk(uint256,uint256,bytes)")[:4]
CHUNK_UPLOADED = keccak(text="ChunkUploaded(uint256,uint256,bytes32)")
PAYLOAD_COMPLETE = keccak(text="PayloadComplete(uint256,bytes32)")
FILE_UPLOAD_SELECTOR = keccak(text="uploadFileChunk(bytes32,uint256,bytes)")[:4]
FILE_CHUNK_UPLOADED = keccak(text="FileChunkUploaded(bytes32,uint256,bytes32)")
FILE_COMPLETE = keccak(text="FileComplete(bytes32)")
DATASET_SUFFIX = ".poaids"  # (governance.epoch_context looks for <sha256>.poaids)
CHUNK_TTL_S = 3 * 86400  # stored chunks of an upload that never completed are deleted after
_PRUNE_EVERY_S = 600.0


def split_chunks(payload: bytes) -> list[bytes]:
    """The chunks ``uploadChunk`` carries, in order."""
    return [payload[o : o + CHUNK_BYTES] for o in range(0, len(payload), CHUNK_BYTES)]


def chunk_hashes(payload: bytes) -> list[bytes]:
    """``registerExpert``'s ``chunkHashes``: the sha256 of each chunk."""
    return [hashlib.sha256(c).digest() for c in split_chunks(payload)]


@dataclass(frozen=True)
class UploadedChunk:
    expert_id: int
    chunk_index: int
    data: bytes


def _topic_int(topic: Any) -> int:
    return int.from_bytes(topic, "big") if isinstance(topic, bytes) else int(topic)


def uploaded_chunks(
    transactions: Sequence[Any], receipts: Sequence[ReceiptAPI], registry: bytes,
    selector: bytes = UPLOAD_SELECTOR, event: bytes = CHUNK_UPLOADED,
    key_type: str = "uint256",
) -> list[UploadedChunk]:
    """Chunks the registry accepted in one block: a ``ChunkUploaded`` log whose transaction
    called ``uploadChunk`` directly, with bytes that hash to the logged chunk hash. (With
    DatasetDAO's selector, event and ``bytes32`` key: its dataset file chunks, ``expert_id``
    then holding the file's content hash as an integer.)"""
    out = []
    for tx, receipt in zip(transactions, receipts, strict=True):
        logs = [lg for lg in receipt.logs
                if lg.address == registry and lg.topics and
                _topic_int(lg.topics[0]) == int.from_bytes(event, "big")]
        if not logs:  # (a reverted call logs nothing)
            continue
        data = bytes(tx.data)
        if tx.to != registry or data[:4] != selector:
            log.warning("tx 0x%s uploads an expert chunk through another contract: not "
                        "extracted (peers may serve the blob)", tx.hash.hex())
            continue
        key, index, chunk = decode([key_type, "uint256", "bytes"], data[4:])
        expert_id = _topic_int(key)
        for lg in logs:
            logged_index, logged_hash = decode(["uint256", "bytes32"], lg.data)
            if (_topic_int(lg.topics[1]), logged_index) == (expert_id, index) and \
                    hashlib.sha256(chunk).digest() == logged_hash:
                out.append(UploadedChunk(int(expert_id), int(index), bytes(chunk)))
    return out


def completed_payloads(receipts: Sequence[ReceiptAPI], registry: bytes) -> list[tuple[int, bytes]]:
    """(expert id, payload hash) of every ``PayloadComplete`` the registry logged."""
    topic = int.from_bytes(PAYLOAD_COMPLETE, "big")
    return [(_topic_int(lg.topics[1]), bytes(decode(["bytes32"], lg.data)[0]))
            for r in receipts for lg in r.logs
            if lg.address == registry and lg.topics and _topic_int(lg.topics[0]) == topic]


class PayloadCollector:
    """Writes the expert payloads completed in canonical blocks into ``blob_store``."""

    def __init__(self, registry: bytes, blob_store: BlobStore, chunk_store: BlobStore) -> None:
        self.registry = registry
        self.blob_store = blob_store
        self.chunk_store = chunk_store
        self._last_prune = 0.0

    def on_block(
        self, block: BlockAPI, receipts: Callable[[], Sequence[ReceiptAPI]],
        state_after: Callable[[], StateAPI],
    ) -> list[str]:
        """Collect one canonical block; returns the digests of the blobs written."""
        if not any(tx.to == self.registry for tx in block.transactions):
            return []  # nothing for us: do not read the receipts back
        got = receipts()
        for chunk in uploaded_chunks(block.transactions, got, self.registry):
            self.chunk_store.put(chunk.data)
        written = []
        for expert_id, payload_hash in completed_payloads(got, self.registry):
            digest = self._assemble(expert_id, payload_hash, state_after)
            if digest is not None:
                written.append(digest)
                log.info("expert %d payload %s stored from the chain (block #%d)", expert_id,
                         digest, block.number)
        return written

    def _assemble(self, expert_id: int, payload_hash: bytes,
                  state_after: Callable[[], StateAPI]) -> str | None:
        digest = payload_hash.hex()
        if self.blob_store.has(digest):
            return digest
        try:
            (hashes,) = call_view(state_after(), self.registry, REGISTRY, "payloadChunkHashes",
                                  expert_id)
            data = b"".join(self.chunk_store.get(bytes(h).hex()) for h in hashes)
        except (GovernanceReadError, BlobError) as exc:
            log.warning("expert %d payload %s not assembled: %s", expert_id, digest, exc)
            return None
        actual = hashlib.sha256(data).hexdigest()
        if actual != digest:
            # Possible for multi-chunk payloads: the contract hashes chunks, not the whole.
            log.warning("expert %d payload does not match its registered hash %s (the chunks "
                        "hash to %s): not stored", expert_id, digest, actual)
            return None
        self.blob_store.put(data)
        for h in hashes:
            path = self.chunk_store.path(bytes(h).hex())
            path.unlink(missing_ok=True)
        return digest

    def prune(self, now: float | None = None) -> int:
        """Delete stored chunks older than CHUNK_TTL_S (uploads that never completed)."""
        return prune_chunks(self.chunk_store, now)

    def listener(self, chain: Callable[[], Any]) -> Callable[[Any], None]:
        """A node listener: collects each block a ``NewHead`` event adds to the canonical
        chain (``chain()`` gives the node's chain; listeners run under the node's lock)."""

        def on_event(event: Any) -> None:
            c = chain()
            for block in getattr(event, "added_blocks", ()):
                self._collect(c, event, block)

        return on_event

    def _collect(self, chain: Any, event: Any, block: BlockAPI) -> None:
        self.on_block(block, _receipts_of(chain, event, block),
                      lambda: chain.get_vm(block.header).state)
        self._last_prune = _maybe_prune(self.chunk_store, self._last_prune)


def _receipts_of(chain: Any, event: Any, block: BlockAPI) -> Callable[[], Sequence[ReceiptAPI]]:
    def receipts() -> Sequence[ReceiptAPI]:
        if block.hash == event.block.hash:
            return tuple(event.receipts)
        return tuple(block.get_receipts(chain.chaindb))
    return receipts


def prune_chunks(chunk_store: BlobStore, now: float | None = None) -> int:
    """Delete chunk files older than CHUNK_TTL_S; returns how many."""
    cutoff = (time.time() if now is None else now) - CHUNK_TTL_S
    gone = 0
    root = chunk_store.root
    for path in root.rglob("*") if root.is_dir() else ():
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                gone += 1
        except OSError:
            continue
    if gone:
        log.info("deleted %d chunk(s) of uploads that never completed", gone)
    return gone


def _maybe_prune(chunk_store: BlobStore, last: float) -> float:
    now = time.monotonic()
    if now - last < _PRUNE_EVERY_S:
        return last
    prune_chunks(chunk_store)
    return now


def completed_files(receipts: Sequence[ReceiptAPI], dao: bytes) -> list[bytes]:
    """Content hashes of every ``FileComplete`` DatasetDAO logged."""
    topic = int.from_bytes(FILE_COMPLETE, "big")
    return [_topic_int(lg.topics[1]).to_bytes(32, "big")
            for r in receipts for lg in r.logs
            if lg.address == dao and lg.topics and _topic_int(lg.topics[0]) == topic]


class DatasetFileCollector:
    """Writes the dataset files completed in canonical blocks into ``dataset_dir``."""

    def __init__(self, dao: bytes, dataset_dir: Path, chunk_store: BlobStore) -> None:
        self.dao = dao
        self.dataset_dir = Path(dataset_dir)
        self.chunk_store = chunk_store
        self._last_prune = 0.0

    def path(self, content_hash: bytes) -> Path:
        return self.dataset_dir / f"{content_hash.hex()}{DATASET_SUFFIX}"

    def on_block(
        self, block: BlockAPI, receipts: Callable[[], Sequence[ReceiptAPI]],
        state_after: Callable[[], StateAPI],
    ) -> list[str]:
        """Collect one canonical block; returns the content hashes of the files written."""
        if not any(tx.to == self.dao for tx in block.transactions):
            return []
        got = receipts()
        for chunk in uploaded_chunks(block.transactions, got, self.dao, FILE_UPLOAD_SELECTOR,
                                     FILE_CHUNK_UPLOADED, "bytes32"):
            self.chunk_store.put(chunk.data)
        written = []
        for content_hash in completed_files(got, self.dao):
            if self._assemble(content_hash, state_after):
                written.append(content_hash.hex())
                log.info("dataset file %s stored from the chain (block #%d)",
                         content_hash.hex(), block.number)
        return written

    def _assemble(self, content_hash: bytes, state_after: Callable[[], StateAPI]) -> bool:
        target = self.path(content_hash)
        if target.is_file():
            return True
        try:
            (hashes,) = call_view(state_after(), self.dao, DATASET_DAO, "fileChunkHashes",
                                  content_hash)
            data = b"".join(self.chunk_store.get(bytes(h).hex()) for h in hashes)
        except (GovernanceReadError, BlobError) as exc:
            log.warning("dataset file %s not assembled: %s", content_hash.hex(), exc)
            return False
        if hashlib.sha256(data).digest() != content_hash:
            log.warning("dataset file %s: the chunks do not hash to it: not stored",
                        content_hash.hex())
            return False
        self.dataset_dir.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(target)
        for h in hashes:
            self.chunk_store.path(bytes(h).hex()).unlink(missing_ok=True)
        return True

    def listener(self, chain: Callable[[], Any]) -> Callable[[Any], None]:
        """A node listener, as :meth:`PayloadCollector.listener`."""

        def on_event(event: Any) -> None:
            c = chain()
            for block in getattr(event, "added_blocks", ()):
                self.on_block(block, _receipts_of(c, event, block),
                              functools.partial(_state_after, c, block))
            self._last_prune = _maybe_prune(self.chunk_store, self._last_prune)

        return on_event


def _state_after(chain: ChainAPI, block: BlockAPI) -> StateAPI:
    return chain.get_vm(block.header).state
