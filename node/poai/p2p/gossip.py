"""Gossip: our blocks and transactions out, the network's in.

- Our mined blocks (NewHead of a block that did not come from the network) are announced;
  our pending transactions (NewPendingTx of a tx that did not come from the network) are
  gossiped in small batches; a reorg's returned transactions are gossiped again.
- Gossiped blocks are checked (size, encoding, hash, future timestamp, parent, seal) before
  ``Node.import_block``; a block whose parent we lack makes us ask the announcing peer for the
  parent, then range-sync from it (``poai.p2p.sync``). Every rejection scores the forwarder by
  the reason the block was refused (``poai.consensus.rejection``).
- Gossiped transactions go to ``Node.submit_raw_transaction``.
"""

from __future__ import annotations

import logging
import threading
import time

import rlp
from eth.abc import BlockAPI
from eth.exceptions import BlockNotFound, HeaderNotFound
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError

from poai.consensus.rejection import BlockRejected, SealRejected
from poai.db.leveldb import StorageError
from poai.interfaces import NodeLike
from poai.node import NewHead, NodeEvent
from poai.p2p import messages as m
from poai.p2p.chain_view import ChainView, RecentHashes
from poai.p2p.host import ACCEPT, IGNORE, P2PHost, RequestFailed, Verdict, reject
from poai.p2p.peers import Offence, block_offence
from poai.p2p.sync import Syncer
from poai.txpool.pool import TxPoolError, TxRejection

log = logging.getLogger("poai.p2p.service")

DUPLICATE_ALLOWANCE = 16              # duplicates per peer per window before they cost score
DUPLICATE_WINDOW = 10.0


class Gossip:
    def __init__(self, node: NodeLike, view: ChainView, host: P2PHost,
                 syncer: Syncer | None) -> None:
        self.node = node
        self.view = view
        self.host = host
        self.syncer = syncer
        self.topic_blocks = m.topic_blocks(view.chain_id)
        self.topic_txs = m.topic_transactions(view.chain_id)
        self._txs_from_network = RecentHashes(16384)
        self._dups: dict[str, list[float]] = {}
        self._dups_lock = threading.Lock()
        self._tx_out: list[bytes] = []
        self._tx_cv = threading.Condition()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        host.subscribe(self.topic_blocks, self._on_block_gossip)
        host.subscribe(self.topic_txs, self._on_tx_gossip)

    def start(self) -> None:
        """Start gossiping our transactions (after the host and `on_node_event` are wired)."""
        self._thread = threading.Thread(target=self._tx_flusher, name="p2p-txs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._tx_cv:
            self._tx_cv.notify_all()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def note_duplicate(self, peer: str) -> Verdict:
        now = time.monotonic()
        with self._dups_lock:
            times = [t for t in self._dups.get(peer, []) if t > now - DUPLICATE_WINDOW]
            times.append(now)
            self._dups[peer] = times
            flood = len(times) > DUPLICATE_ALLOWANCE
        return reject(Offence.DUPLICATE, "duplicate flood") if flood else IGNORE

    # -- node events ----------------------------------------------------------------------

    def on_node_event(self, event: NodeEvent) -> None:
        if isinstance(event, NewHead):
            block, removed = event.block, event.removed_blocks
            if removed:
                # A reorg put the losing branch's transactions back in our pool: gossip them
                # again, so that whoever mines next includes them (geth re-broadcasts too).
                back = [bytes(tx.hash) for b in removed for tx in b.transactions
                        if self.node.txpool.get(tx.hash) is not None]
                if back:
                    with self._tx_cv:
                        self._tx_out.extend(back)
                        self._tx_cv.notify()
            if bytes(block.hash) in self.view.from_network:
                return
            if self.syncer is not None and self.syncer.is_syncing():
                return
            try:
                self.announce(block)
            except Exception:  # noqa: BLE001 - never break the node's event path
                log.exception("announcing block #%d failed", block.number)
            return
        tx_hash = event.tx_hash
        if bytes(tx_hash) not in self._txs_from_network:
            with self._tx_cv:
                self._tx_out.append(bytes(tx_hash))
                self._tx_cv.notify()

    def announce(self, block: BlockAPI) -> None:
        with self.node.lock:
            td = int(self.view.chain.chaindb.get_score(block.hash))
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
        if self.view.has_block(ann.block_hash):
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
        block = self.view.decode_block(raw, ann.number)
        if bytes(block.hash) != ann.block_hash or block.number != ann.number:
            return reject(Offence.INVALID_BLOCK, "announcement does not match its block")
        return self.process_block(peer, block)

    def process_block(self, peer: str, block: BlockAPI) -> Verdict:
        header = block.header
        try:
            self.view.check_timestamp(header)
        except BlockRejected as exc:
            return reject(block_offence(exc), str(exc))
        if not self.view.has_block(header.parent_hash):
            return self._unknown_parent(peer, block)
        try:
            self.view.verify_seal(header)
        except SealRejected as exc:
            return reject(block_offence(exc), str(exc))
        try:
            self.view.import_block(block)
        except (ValidationError, ValueError) as exc:
            return reject(block_offence(exc), str(exc))
        except (HeaderNotFound, BlockNotFound) as exc:
            return self._unknown_parent(peer, block, str(exc))
        except StorageError:
            return IGNORE  # not the peer's fault: this node cannot write and stops
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
        verdict = ACCEPT
        for raw in m.decode_transactions(data):
            # Marked before admission: the pool announces a new transaction from inside
            # submit_raw_transaction, and one marked only afterwards went back out, so peers
            # saw their own flood returned as duplicates and banned us.
            self._txs_from_network.add(keccak(raw))
            try:
                self.node.submit_raw_transaction(raw, local=False)
            except TxPoolError as exc:
                if exc.reason is TxRejection.BAD_SIGNATURE:
                    return reject(Offence.BAD_TX_SIGNATURE, str(exc))
                if exc.reason is TxRejection.MALFORMED:
                    return reject(Offence.GARBAGE, str(exc))
                if exc.reason is TxRejection.KNOWN:
                    v = self.note_duplicate(peer)
                    if v.offence is not None:
                        return v
                # nonce too low, underpriced...: honest peers relay those now and then
                verdict = IGNORE
        return verdict
