"""Range sync: catch up with the peer of greatest total difficulty, then follow the head.

The syncer finds the last block we share with the peer (walking back over its canonical
headers), downloads the blocks after it by range in batches, checks that they link, verifies
the batch's seals in parallel (``ParallelVerifier``: seals do not depend on state), then imports
the blocks one by one through ``Node.import_block`` (every state transition, fork choice and
reorg happen there). Progress is logged with blocks/s. Because it always starts from the stored
head, a restart resumes where it stopped; after catching up it keeps polling peers' status, and
gossip keeps it at the head.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI
from eth.exceptions import HeaderNotFound
from eth_utils import keccak
from eth_utils.exceptions import ValidationError

from poai.p2p import messages as m
from poai.p2p.host import RequestFailed
from poai.p2p.peers import Offence

log = logging.getLogger(__name__)

BATCH = 64                 # blocks per range request
ANCESTOR_WINDOW = 64       # headers per step when looking for the common ancestor
MAX_ANCESTOR_STEPS = 64
STATUS_POLL = 5.0          # seconds between status polls of our peers
PARALLEL_MIN = 16          # fewer seals than this are verified in this thread: starting the
                           # verifier's worker processes costs more than it saves


class SyncAborted(Exception):
    """Syncing from this peer stopped (it misbehaved or went away)."""


class _OverlayHeaders:
    """Headers of a downloaded batch in front of the chain's header db, so the epoch seed of a
    batch block can be found before the batch is imported."""

    def __init__(self, batch: list[BlockHeaderAPI], headerdb: Any) -> None:
        self._batch = {bytes(h.hash): h for h in batch}
        self._db = headerdb

    def get_block_header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI:
        h = self._batch.get(bytes(block_hash))
        if h is not None:
            return h
        header: BlockHeaderAPI = self._db.get_block_header_by_hash(block_hash)
        return header


class Syncer:
    def __init__(self, service: Any, *, verifier: Any = None, batch: int = BATCH) -> None:
        self.service = service
        self.batch = batch
        self._verifier = verifier
        self._own_verifier = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._candidates: set[str] = set()
        self._backoff: dict[str, float] = {}  # peer -> monotonic time before which we skip it
        self._lock = threading.Lock()
        self._syncing = False
        self._start_block = 0
        self._current = 0
        self._highest = 0
        self.blocks_imported = 0
        self._imported = 0
        self._last_log = 0.0

    # -- control --------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="p2p-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30)
        if self._own_verifier and self._verifier is not None:
            self._verifier.close()

    def on_peer_status(self, peer: str, status: m.Status) -> None:
        _, td = self.service.head_and_td()
        if status.total_difficulty > td:
            self.request_sync(peer)

    def request_sync(self, peer: str) -> None:
        with self._lock:
            self._candidates.add(peer)
        self._wake.set()

    def is_syncing(self) -> bool:
        return self._syncing

    def progress(self) -> dict[str, Any]:
        return {"syncing": self._syncing, "startingBlock": self._start_block,
                "currentBlock": self._current, "highestBlock": self._highest}

    # -- loop -----------------------------------------------------------------------------

    def _loop(self) -> None:
        last_poll = 0.0
        while not self._stop.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            if self._stop.is_set():
                return
            host = self.service.host
            with self._lock:
                candidates, self._candidates = self._candidates, set()
            if time.monotonic() - last_poll > STATUS_POLL:
                candidates |= set(host.peers())
                last_poll = time.monotonic()
            best: tuple[int, str, m.Status] | None = None
            now = time.monotonic()
            for peer in candidates:
                if self._backoff.get(peer, 0.0) > now:
                    continue
                try:
                    st = host.status_of(peer)
                except Exception as exc:  # noqa: BLE001 - gone or refused: skip it
                    log.debug("status of %s: %s", peer, exc)
                    continue
                if best is None or st.total_difficulty > best[0]:
                    best = (st.total_difficulty, peer, st)
            if best is None:
                continue
            _, our_td = self.service.head_and_td()
            if best[0] <= our_td:
                continue
            try:
                self.sync_from(best[1], best[2])
            except SyncAborted as exc:
                log.warning("sync from %s aborted: %s", best[1], exc)
                self._backoff[best[1]] = time.monotonic() + 10.0
            except Exception:  # noqa: BLE001 - keep the node running; retry later
                log.exception("sync from %s failed", best[1])
                self._backoff[best[1]] = time.monotonic() + 10.0
            finally:
                self._syncing = False

    # -- one sync -------------------------------------------------------------------------

    def sync_from(self, peer: str, status: m.Status) -> int:
        """Import the peer's chain above our common ancestor; returns blocks imported."""
        svc = self.service
        ancestor = self.find_common_ancestor(peer, status.head_number)
        head, _ = svc.head_and_td()
        self._syncing = True
        self._start_block = head.block_number
        self._highest = status.head_number
        log.info("sync: from peer %s, common ancestor #%d, target #%d", peer[-8:], ancestor,
                 status.head_number)
        with svc.node.lock:
            prev_hash = bytes(svc.chain.get_canonical_block_header_by_number(ancestor).hash)
        n = ancestor + 1
        t0 = time.monotonic()
        self._last_log = t0
        self._imported = 0
        # Pipeline: while batch k is imported here (state transitions, this process), the
        # seals of batch k+1 are verified by the worker processes.
        pending: tuple[list[BlockAPI], Future[None]] | None = None
        prev_headers: list[BlockHeaderAPI] = []
        with ThreadPoolExecutor(1, thread_name_prefix="p2p-seals") as pool:
            try:
                while not self._stop.is_set():
                    if n > self._highest:
                        try:  # follow the peer's head while it moves
                            self._highest = svc.host.status_of(peer).head_number
                        except Exception:  # noqa: BLE001
                            break
                        if n > self._highest:
                            break
                    count = min(self.batch, self._highest - n + 1)
                    blocks = self._download(peer, n, count, prev_hash)
                    if not blocks:
                        break
                    fut = pool.submit(self._verify_seals, peer, blocks, prev_headers)
                    if pending is not None:
                        self._import_batch(peer, *pending, t0)
                    pending = (blocks, fut)
                    prev_headers = [b.header for b in blocks]
                    prev_hash = bytes(blocks[-1].hash)
                    n = blocks[-1].number + 1
                if pending is not None:
                    self._import_batch(peer, *pending, t0)
                    pending = None
            finally:
                if pending is not None:
                    pending[1].cancel()
        return self._imported

    def _import_batch(self, peer: str, blocks: list[BlockAPI], verified: Future[None],
                      t0: float) -> None:
        svc = self.service
        verified.result()  # raises SyncAborted for a bad seal
        for block in blocks:
            try:
                svc.import_block(block)
            except (ValidationError, ValueError) as exc:
                from poai.p2p.service import classify_block_error

                svc.host.penalize(peer, classify_block_error(exc), str(exc))
                raise SyncAborted(f"block #{block.number} invalid: {exc}") from exc
            self._imported += 1
            self.blocks_imported += 1
            self._current = block.number
        now = time.monotonic()
        if now - self._last_log >= 2.0 or self._current >= self._highest:
            rate = self._imported / max(now - t0, 1e-9)
            log.info("sync: imported #%d of #%d (%.1f blocks/s)", self._current,
                     self._highest, rate)
            self._last_log = now

    def find_common_ancestor(self, peer: str, their_head: int) -> int:
        """The highest block number at which our canonical chain and the peer's agree."""
        svc = self.service
        head, _ = svc.head_and_td()
        hi = min(head.block_number, their_head)
        window = ANCESTOR_WINDOW
        for _ in range(MAX_ANCESTOR_STEPS):
            start = max(0, hi - window + 1)
            raws = self._request_items(peer, m.HEADERS_BY_RANGE_PROTOCOL,
                                       m.RangeRequest(start, hi - start + 1).encode(),
                                       m.MAX_HEADERS_PER_REQUEST)
            with svc.node.lock:
                for i in range(len(raws) - 1, -1, -1):
                    number = start + i
                    if number > hi:
                        continue
                    try:
                        ours = bytes(svc.chain.get_canonical_block_header_by_number(number).hash)
                    except HeaderNotFound:
                        continue
                    if keccak(raws[i]) == ours:
                        return number
            if start == 0:
                svc.host.penalize(peer, Offence.WRONG_CHAIN, "no common block, not even genesis")
                raise SyncAborted("peer shares no block with us")
            hi = start - 1
            window = min(window * 2, m.MAX_HEADERS_PER_REQUEST)
        raise SyncAborted("no common ancestor within reach")

    def _request_items(self, peer: str, protocol: str, payload: bytes, limit: int
                       ) -> list[bytes]:
        try:
            return m.decode_items(self.service.host.request(peer, protocol, payload, 30.0), limit)
        except m.WireError as exc:
            self.service.host.penalize(peer, Offence.BAD_RESPONSE, str(exc))
            raise SyncAborted(str(exc)) from exc
        except (RequestFailed, m.ResponseError) as exc:
            raise SyncAborted(str(exc)) from exc

    def _download(self, peer: str, start: int, count: int, prev_hash: bytes) -> list[BlockAPI]:
        svc = self.service
        raws = self._request_items(peer, m.BLOCKS_BY_RANGE_PROTOCOL,
                                   m.RangeRequest(start, count).encode(),
                                   m.MAX_BLOCKS_PER_REQUEST)
        blocks: list[BlockAPI] = []
        for i, raw in enumerate(raws):
            try:
                block = svc.decode_block(raw, start + i)
            except m.WireError as exc:
                svc.host.penalize(peer, Offence.GARBAGE, str(exc))
                raise SyncAborted(str(exc)) from exc
            if block.number != start + i or bytes(block.header.parent_hash) != prev_hash:
                # The peer may have reorganised between requests: not proof of malice.
                raise SyncAborted(f"block #{start + i} does not link to our last block")
            try:
                svc.check_timestamp(block.header)
            except ValidationError as exc:
                svc.host.penalize(peer, Offence.FUTURE_TIMESTAMP, str(exc))
                raise SyncAborted(str(exc)) from exc
            prev_hash = bytes(block.hash)
            blocks.append(block)
        return blocks

    def verifier(self) -> Any:
        if self._verifier is None:
            from poai.quiz.verifier import ParallelVerifier

            self._verifier = ParallelVerifier()
            self._own_verifier = True
        return self._verifier

    def _verify_seals(self, peer: str, blocks: list[BlockAPI],
                      earlier: list[BlockHeaderAPI] = ()) -> None:  # type: ignore[assignment]
        """All seals of a batch at once across cores; the first bad one aborts the sync.
        ``earlier``: the previous batch's headers (maybe not imported yet: epoch seeds)."""
        from poai.chain.epochs import EpochQuizContexts
        from poai.chain.governed import SeedStateUnavailable
        from poai.consensus.seal_hash import seal_hash

        svc = self.service
        cc = svc.chain.consensus_context
        pending = [b for b in blocks if cc.verified_losses(b.hash) is None]
        if not pending:
            return
        headers = [*earlier, *(b.header for b in blocks)]
        todo: list[BlockAPI] = []
        items = []
        with svc.node.lock:
            source = EpochQuizContexts(svc.node.config, _OverlayHeaders(headers, svc.chain.chaindb))
            for b in pending:
                try:
                    quiz = source.quiz_context_for(b.header)
                except SeedStateUnavailable:
                    # On a governed chain the epoch's model is read from the state after its
                    # seed block, which may be in the batch still being imported (or in this
                    # one): Node.import_block verifies this seal instead (not cached as
                    # verified).
                    continue
                todo.append(b)
                items.append((quiz, seal_hash(b.header), int.from_bytes(b.header.nonce, "big"),
                              bytes(b.header.mix_hash), b.header.difficulty))
        if len(pending) > len(todo):
            log.debug("sync: %d seals of #%d-#%d left to import (epoch seed state not stored)",
                      len(pending) - len(todo), blocks[0].number, blocks[-1].number)
        if not items:
            return
        if len(items) >= PARALLEL_MIN:
            results = self.verifier().verify_many(items)
        else:
            results = [_verify_here(item) for item in items]
        for block, err in zip(todo, results, strict=True):
            if err is not None:
                from poai.p2p.service import classify_block_error

                svc.host.penalize(peer, classify_block_error(err), str(err))
                raise SyncAborted(f"block #{block.number}: {err}")
            # ParallelVerifier returns no losses; () marks the seal as verified.
            cc.remember(block.hash, ())


def _verify_here(item: Any) -> Any:
    from poai.quiz.seal import InvalidSeal, verify_seal

    try:
        verify_seal(*item)
    except InvalidSeal as exc:
        return exc
    return None
