"""The P2P service: glue between a running Node and the libp2p host.

- Our mined blocks (NewHead of a block that did not come from the network) are announced;
  our pending transactions (NewPendingTx of a tx that did not come from the network) are
  gossiped in small batches.
- Gossiped blocks are checked (size, encoding, hash, future timestamp, parent, seal) before
  ``Node.import_block``; a block whose parent we lack makes us ask the announcing peer for the
  parent, then range-sync from it (``poai.p2p.sync``). Every rejection scores the forwarder.
- Gossiped transactions go to ``Node.submit_raw_transaction``.
- We serve headers and blocks by range and by hash, and expert blobs by hash.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI
from eth.exceptions import BlockNotFound, HeaderNotFound
from eth_utils.exceptions import ValidationError

from poai.p2p import messages as m
from poai.p2p.host import (
    ACCEPT,
    IGNORE,
    HostConfig,
    NotFound,
    P2PHost,
    RequestFailed,
    Verdict,
    reject,
)
from poai.p2p.peers import Offence

log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES = 8 * 1024 * 1024  # stop adding blocks to a response past this
DUPLICATE_ALLOWANCE = 16              # duplicates per peer per window before they cost score
DUPLICATE_WINDOW = 10.0


class _LRU:
    def __init__(self, size: int) -> None:
        self._d: OrderedDict[bytes, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def add(self, key: bytes) -> None:
        with self._lock:
            self._d[key] = None
            self._d.move_to_end(key)
            while len(self._d) > self._size:
                self._d.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._d


def classify_block_error(exc: Exception) -> Offence:
    """Which offence an import or seal error is (the messages come from py-evm and poai.quiz)."""
    text = str(exc).lower()
    if "claimed q=" in text or "expected" in text and "losses" in text:
        return Offence.WRONG_Q
    if "seal" in text or "loss hash" in text or "mixhash" in text or "nonce" in text:
        return Offence.BAD_SEAL
    if "state root" in text or "state_root" in text:
        return Offence.WRONG_STATE_ROOT
    if "timestamp" in text and "future" in text:
        return Offence.FUTURE_TIMESTAMP
    return Offence.INVALID_BLOCK


class P2PService:
    def __init__(self, node: Any, config: HostConfig, *, sync: bool = True,
                 verifier: Any = None, sync_batch: int | None = None) -> None:
        from poai.p2p.sync import BATCH, Syncer

        self.node = node
        self.chain_id: int = node.config.chain_id
        self.topic_blocks = m.topic_blocks(self.chain_id)
        self.topic_txs = m.topic_transactions(self.chain_id)
        self.host = P2PHost(config, self.local_status)
        self._genesis_hash: bytes | None = None
        self._from_network = _LRU(4096)      # block hashes we got from peers
        self._txs_from_network = _LRU(16384)
        self._dups: dict[str, list[float]] = {}
        self._dups_lock = threading.Lock()
        self._tx_out: list[bytes] = []
        self._tx_cv = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.syncer = (Syncer(self, verifier=verifier, batch=sync_batch or BATCH)
                       if sync else None)

        h = self.host
        h.subscribe(self.topic_blocks, self._on_block_gossip)
        h.subscribe(self.topic_txs, self._on_tx_gossip)
        h.serve(m.HEADERS_BY_RANGE_PROTOCOL, self._serve_headers_by_range)
        h.serve(m.HEADERS_BY_HASH_PROTOCOL, self._serve_headers_by_hash)
        h.serve(m.BLOCKS_BY_RANGE_PROTOCOL, self._serve_blocks_by_range)
        h.serve(m.BLOCKS_BY_HASH_PROTOCOL, self._serve_blocks_by_hash)
        h.serve(m.BLOB_BY_HASH_PROTOCOL, self._serve_blob)
        if self.syncer is not None:
            h.on_status(self.syncer.on_peer_status)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.node.add_listener(self._on_node_event)
        self.host.start()
        t = threading.Thread(target=self._tx_flusher, name="p2p-txs", daemon=True)
        t.start()
        self._threads.append(t)
        if self.syncer is not None:
            self.syncer.start()
        log.info("p2p: %s", " ".join(self.host.full_addrs()))

    def stop(self) -> None:
        self._stopping.set()
        with self._tx_cv:
            self._tx_cv.notify_all()
        if self.syncer is not None:
            self.syncer.stop()
        self.host.stop()
        for t in self._threads:
            t.join(5)

    def peer_count(self) -> int:
        return len(self.host.peers())

    def peers_info(self) -> list[dict[str, Any]]:
        scores = self.host.scores.snapshot()
        return [
            {"id": p, "head": "0x" + s.head_hash.hex(), "number": s.head_number,
             "totalDifficulty": s.total_difficulty,
             "score": scores.get(p, {}).get("score", 0.0)}
            for p, s in self.host.peers().items()
        ]

    def status(self) -> dict[str, Any]:
        return self.syncer.progress() if self.syncer is not None else {"syncing": False}

    # -- chain access (under the node lock) -----------------------------------------------

    @property
    def chain(self) -> Any:
        return self.node.chain

    def genesis_hash(self) -> bytes:
        if self._genesis_hash is None:
            with self.node.lock:
                self._genesis_hash = bytes(
                    self.chain.get_canonical_block_header_by_number(0).hash)
        return self._genesis_hash

    def head_and_td(self) -> tuple[BlockHeaderAPI, int]:
        with self.node.lock:
            head = self.node.head()
            return head, int(self.chain.chaindb.get_score(head.hash))

    def local_status(self) -> m.Status:
        head, td = self.head_and_td()
        return m.Status(m.PROTOCOL_VERSION, self.chain_id, self.genesis_hash(), bytes(head.hash),
                        head.block_number, td)

    def has_block(self, block_hash: bytes) -> bool:
        with self.node.lock:
            try:
                self.chain.get_block_header_by_hash(block_hash)
            except HeaderNotFound:
                return False
            return True

    def decode_block(self, raw: bytes, number_hint: int | None = None) -> BlockAPI:
        """A block from its RLP (WireError on garbage)."""
        if number_hint is None:
            try:  # the header is the block's first field, its number the header's ninth
                number_hint = int.from_bytes(rlp.decode(raw)[0][8], "big")
            except Exception as exc:  # noqa: BLE001 - anything undecodable is garbage
                raise m.MalformedMessage(f"block: undecodable ({exc.__class__.__name__})"
                                         ) from exc
        try:
            cls = self.chain.get_vm_class_for_block_number(number_hint).get_block_class()
            block: BlockAPI = rlp.decode(raw, sedes=cls)
        except Exception as exc:  # noqa: BLE001
            raise m.MalformedMessage(f"block: undecodable ({exc.__class__.__name__})") from exc
        return block

    def check_timestamp(self, header: BlockHeaderAPI) -> None:
        drift = getattr(self.node.config, "max_future_drift", 15)
        if header.timestamp > time.time() + drift:
            raise ValidationError(
                f"block #{header.block_number} timestamp {header.timestamp} is in the future")

    def verify_seal(self, header: BlockHeaderAPI) -> None:
        """The header's seal, outside the node lock (a forward pass); remembered for import."""
        from poai.consensus.seal_hash import seal_hash
        from poai.quiz.seal import verify_seal

        cc = self.chain.consensus_context
        if cc.verified_losses(header.hash) is not None:
            return
        with self.node.lock:
            ctx = cc.source.quiz_context_for(header)
        losses = verify_seal(ctx, seal_hash(header), int.from_bytes(header.nonce, "big"),
                             header.mix_hash, header.difficulty)
        cc.remember(header.hash, losses)

    def import_block(self, block: BlockAPI) -> None:
        """Node.import_block for a block from the network (so it is not re-announced)."""
        self._from_network.add(bytes(block.hash))
        self.node.import_block(block)

    def note_duplicate(self, peer: str) -> Verdict:
        now = time.monotonic()
        with self._dups_lock:
            times = [t for t in self._dups.get(peer, []) if t > now - DUPLICATE_WINDOW]
            times.append(now)
            self._dups[peer] = times
            flood = len(times) > DUPLICATE_ALLOWANCE
        return reject(Offence.DUPLICATE, "duplicate flood") if flood else IGNORE

    # -- node events ----------------------------------------------------------------------

    def _on_node_event(self, event: Any) -> None:
        block = getattr(event, "block", None)
        if block is not None:
            removed = getattr(event, "removed_blocks", ())
            if removed:
                # A reorg put the losing branch's transactions back in our pool: gossip them
                # again, so that whoever mines next includes them (geth re-broadcasts too).
                back = [bytes(tx.hash) for b in removed for tx in b.transactions
                        if self.node.txpool.get(tx.hash) is not None]
                if back:
                    with self._tx_cv:
                        self._tx_out.extend(back)
                        self._tx_cv.notify()
            if bytes(block.hash) in self._from_network:
                return
            if self.syncer is not None and self.syncer.is_syncing():
                return
            try:
                self.announce(block)
            except Exception:  # noqa: BLE001 - never break the node's event path
                log.exception("announcing block #%d failed", block.number)
            return
        tx_hash = getattr(event, "tx_hash", None)
        if tx_hash is not None and bytes(tx_hash) not in self._txs_from_network:
            with self._tx_cv:
                self._tx_out.append(bytes(tx_hash))
                self._tx_cv.notify()

    def announce(self, block: BlockAPI) -> None:
        with self.node.lock:
            td = int(self.chain.chaindb.get_score(block.hash))
        raw = rlp.encode(block)
        ann = m.BlockAnnouncement.for_block(bytes(block.hash), block.number, td, raw)
        self.host.publish(self.topic_blocks, ann.encode())
        log.debug("announced block #%d %s", block.number, block.hash.hex()[:12])

    def _tx_flusher(self) -> None:
        """Gossip our pending transactions in batches (one message per ~50 ms, not per tx)."""
        while not self._stopping.is_set():
            with self._tx_cv:
                while not self._tx_out and not self._stopping.is_set():
                    self._tx_cv.wait(1.0)
                hashes, self._tx_out = self._tx_out, []
            time.sleep(0.05)
            with self._tx_cv:
                hashes += self._tx_out
                self._tx_out = []
            raws: list[bytes] = []
            for h in hashes:
                tx = self.node.txpool.get(h)
                if tx is not None:
                    raws.append(tx.encode() if hasattr(tx, "encode") else rlp.encode(tx))
            for i in range(0, len(raws), m.MAX_TXS_PER_GOSSIP):
                try:
                    self.host.publish(self.topic_txs,
                                      m.encode_transactions(raws[i:i + m.MAX_TXS_PER_GOSSIP]))
                except Exception:  # noqa: BLE001
                    log.exception("gossiping transactions failed")

    # -- gossip handlers (libp2p worker threads) ------------------------------------------

    def _on_block_gossip(self, peer: str, data: bytes) -> Verdict:
        ann = m.BlockAnnouncement.decode(data)
        if self.has_block(ann.block_hash):
            return self.note_duplicate(peer)
        raw = ann.block_rlp
        if not raw:
            try:
                items = m.decode_items(self.host.request(
                    peer, m.BLOCKS_BY_HASH_PROTOCOL, m.encode_hashes([ann.block_hash])), 1)
            except (RequestFailed, m.ResponseError) as exc:
                return reject(Offence.BAD_RESPONSE, f"announced block not served: {exc}")
            if not items:
                return reject(Offence.BAD_RESPONSE, "announced block not served")
            raw = items[0]
        block = self.decode_block(raw, ann.number)
        if bytes(block.hash) != ann.block_hash or block.number != ann.number:
            return reject(Offence.INVALID_BLOCK, "announcement does not match its block")
        return self.process_block(peer, block)

    def process_block(self, peer: str, block: BlockAPI) -> Verdict:
        header = block.header
        try:
            self.check_timestamp(header)
        except ValidationError as exc:
            return reject(Offence.FUTURE_TIMESTAMP, str(exc))
        if not self.has_block(header.parent_hash):
            return self._unknown_parent(peer, block)
        from poai.quiz.seal import InvalidSeal

        try:
            self.verify_seal(header)
        except InvalidSeal as exc:
            return reject(classify_block_error(exc), str(exc))
        try:
            self.import_block(block)
        except (ValidationError, ValueError) as exc:
            return reject(classify_block_error(exc), str(exc))
        except (HeaderNotFound, BlockNotFound) as exc:
            return self._unknown_parent(peer, block, str(exc))
        log.info("imported gossiped block #%d %s from %s", block.number,
                 block.hash.hex()[:12], peer[-8:])
        return ACCEPT

    def _unknown_parent(self, peer: str, block: BlockAPI, detail: str = "") -> Verdict:
        """Ask the announcer for the parent: a peer that cannot show it made the block up."""
        try:
            items = m.decode_items(self.host.request(
                peer, m.HEADERS_BY_HASH_PROTOCOL, m.encode_hashes([block.header.parent_hash])),
                1)
        except (RequestFailed, m.ResponseError):
            items = []
        if not items:
            return reject(Offence.UNKNOWN_PARENT,
                          f"block #{block.number}: parent {block.header.parent_hash.hex()[:12]} "
                          f"unknown to us and to the announcer {detail}")
        if self.syncer is not None:
            self.syncer.request_sync(peer)
        return IGNORE

    def _on_tx_gossip(self, peer: str, data: bytes) -> Verdict:
        from poai.txpool.pool import TxPoolError

        verdict = ACCEPT
        for raw in m.decode_transactions(data):
            try:
                h = self.node.submit_raw_transaction(raw)
                self._txs_from_network.add(bytes(h))
            except TxPoolError as exc:
                text = str(exc).lower()
                if "signature" in text or "invalid sender" in text:
                    return reject(Offence.BAD_TX_SIGNATURE, str(exc))
                if "rlp" in text or "encoding" in text or "too short" in text:
                    return reject(Offence.GARBAGE, str(exc))
                if "known" in text:
                    v = self.note_duplicate(peer)
                    if v.offence is not None:
                        return v
                # nonce too low, underpriced...: honest peers relay those now and then
                verdict = IGNORE
        return verdict

    # -- request handlers -----------------------------------------------------------------

    def _serve_headers_by_range(self, peer: str, request: bytes) -> bytes:
        req = m.RangeRequest.decode(request, m.MAX_HEADERS_PER_REQUEST)
        out: list[bytes] = []
        with self.node.lock:
            head = self.node.head().block_number
            for n in range(req.start, min(req.start + req.count, head + 1)):
                out.append(rlp.encode(self.chain.get_canonical_block_header_by_number(n)))
        if not out:
            raise NotFound(f"no canonical header #{req.start} (head #{head})")
        return m.encode_items(out)

    def _serve_headers_by_hash(self, peer: str, request: bytes) -> bytes:
        out: list[bytes] = []
        with self.node.lock:
            for h in m.decode_hashes(request):
                try:
                    out.append(rlp.encode(self.chain.get_block_header_by_hash(h)))
                except HeaderNotFound:
                    continue
        if not out:
            raise NotFound("none of the headers is known")
        return m.encode_items(out)

    def _serve_blocks_by_range(self, peer: str, request: bytes) -> bytes:
        req = m.RangeRequest.decode(request, m.MAX_BLOCKS_PER_REQUEST)
        out: list[bytes] = []
        size = 0
        with self.node.lock:
            head = self.node.head().block_number
            for n in range(req.start, min(req.start + req.count, head + 1)):
                raw = rlp.encode(self.chain.get_canonical_block_by_number(n))
                out.append(raw)
                size += len(raw)
                if size > MAX_RESPONSE_BYTES:
                    break
        if not out:
            raise NotFound(f"no canonical block #{req.start} (head #{head})")
        return m.encode_items(out)

    def _serve_blocks_by_hash(self, peer: str, request: bytes) -> bytes:
        out: list[bytes] = []
        size = 0
        with self.node.lock:
            for h in m.decode_hashes(request):
                try:
                    raw = rlp.encode(self.chain.get_block_by_hash(h))
                except (HeaderNotFound, BlockNotFound):
                    continue
                out.append(raw)
                size += len(raw)
                if size > MAX_RESPONSE_BYTES:
                    break
        if not out:
            raise NotFound("none of the blocks is known")
        return m.encode_items(out)

    def blob_store(self) -> Any:
        store = getattr(self.node, "blob_store", None)
        if store is not None:
            return store
        from poai.model.store import BlobStore

        return BlobStore(Path(self.node.config.model_dir))

    def _serve_blob(self, peer: str, request: bytes) -> bytes:
        from poai.model.store import BlobError

        digest = m.decode_blob_request(request)
        store = self.blob_store()
        try:
            if not store.has(digest):
                raise NotFound(f"no blob {digest}")
            data: bytes = store.get(digest)
        except BlobError as exc:
            raise NotFound(str(exc)) from exc
        return data

    def fetch_blob(self, digest: str, timeout: float = 60.0) -> bytes:
        """An expert blob from any peer that has it, hash-checked and put in our store."""
        want = m.decode_blob_request(bytes.fromhex(digest))
        for peer in list(self.host.peers()):
            try:
                data = self.host.request(peer, m.BLOB_BY_HASH_PROTOCOL,
                                         m.encode_blob_request(want), timeout)
            except (RequestFailed, m.ResponseError):
                continue
            if hashlib.sha256(data).hexdigest() != want:
                self.host.penalize(peer, Offence.BAD_RESPONSE, f"blob {want} hash mismatch")
                continue
            self.blob_store().put(data)
            return data
        raise NotFound(f"no peer served blob {want}")
