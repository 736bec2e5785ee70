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
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from eth.abc import BlockAPI, ReceiptAPI, StateAPI
from eth_abi.abi import decode
from eth_utils.crypto import keccak

from poai.governance.contracts import REGISTRY
from poai.governance.reader import GovernanceReadError, call_view
from poai.model.store import BlobError, BlobStore

log = logging.getLogger(__name__)

CHUNK_BYTES = 120_000  # ModelRegistry.CHUNK_BYTES
UPLOAD_SELECTOR = keccak(text="uploadChunk(uint256,uint256,bytes)")[:4]
CHUNK_UPLOADED = keccak(text="ChunkUploaded(uint256,uint256,bytes32)")
PAYLOAD_COMPLETE = keccak(text="PayloadComplete(uint256,bytes32)")


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
    transactions: Sequence[Any], receipts: Sequence[ReceiptAPI], registry: bytes
) -> list[UploadedChunk]:
    """Chunks the registry accepted in one block: a ``ChunkUploaded`` log whose transaction
    called ``uploadChunk`` directly, with bytes that hash to the logged chunk hash."""
    out = []
    for tx, receipt in zip(transactions, receipts, strict=True):
        logs = [lg for lg in receipt.logs
                if lg.address == registry and lg.topics and
                _topic_int(lg.topics[0]) == int.from_bytes(CHUNK_UPLOADED, "big")]
        if not logs:  # (a reverted call logs nothing)
            continue
        data = bytes(tx.data)
        if tx.to != registry or data[:4] != UPLOAD_SELECTOR:
            log.warning("tx 0x%s uploads an expert chunk through another contract: not "
                        "extracted (peers may serve the blob)", tx.hash.hex())
            continue
        expert_id, index, chunk = decode(["uint256", "uint256", "bytes"], data[4:])
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

    def listener(self, chain: Callable[[], Any]) -> Callable[[Any], None]:
        """A node listener: collects each block a ``NewHead`` event adds to the canonical
        chain (``chain()`` gives the node's chain; listeners run under the node's lock)."""

        def on_event(event: Any) -> None:
            c = chain()
            for block in getattr(event, "added_blocks", ()):
                self._collect(c, event, block)

        return on_event

    def _collect(self, chain: Any, event: Any, block: BlockAPI) -> None:
        def receipts() -> Sequence[ReceiptAPI]:
            if block.hash == event.block.hash:
                return tuple(event.receipts)
            return tuple(block.get_receipts(chain.chaindb))

        self.on_block(block, receipts, lambda: chain.get_vm(block.header).state)
