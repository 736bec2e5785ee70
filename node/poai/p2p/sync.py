"""Range sync: catch up with the peer of greatest total difficulty, then follow the head.

The syncer finds the last block we share with the peer (walking back over its canonical
headers), then streams: a download thread keeps up to LOOKAHEAD range requests ahead of the
import (blocks decoded, linked and timestamp-checked there); each batch's seals go to the
verifier as soon as it arrives, in small chunks verified in one forward pass each
(``ParallelVerifier``, one worker per core: seals do not depend on state); this thread imports
each block through ``Node.import_block`` (every state transition, fork choice and reorg happen
there) as soon as its chunk's result is in, in chain order. A seal whose epoch seed state is
not stored yet is left to ``Node.import_block``. The first bad seal or block aborts the sync
and penalises the peer. Progress is logged with blocks/s. Because it always starts from the
stored head, a restart resumes where it stopped; after catching up it keeps polling peers'
status, and gossip keeps it at the head.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

from eth.abc import BlockAPI, BlockHeaderAPI
from eth.exceptions import HeaderNotFound
from eth_hash.auto import keccak
from eth_typing import BlockNumber
from eth_utils.exceptions import ValidationError

from poai.chain.governed import SeedStateUnavailable
from poai.consensus.rejection import BlockRejected, SealRejected
from poai.consensus.seal_hash import seal_hash
from poai.db.leveldb import StorageError
from poai.interfaces import SyncProgress
from poai.p2p import messages as m
from poai.p2p.chain_view import ChainView
from poai.p2p.host import P2PHost, RequestFailed
from poai.p2p.peers import Offence, block_offence
from poai.quiz.epoch import epoch_index, epoch_key
from poai.quiz.seal import verify_seals
from poai.quiz.verifier import DEFAULT_CHUNK, ParallelVerifier

log = logging.getLogger(__name__)

BATCH = 64                 # blocks per range request
LOOKAHEAD = 2              # range requests downloaded ahead of the import
FIRST_REQUEST = 8          # blocks in the first range request, doubling up to the batch size
ANCESTOR_WINDOW = 64       # headers per step when looking for the common ancestor
MAX_ANCESTOR_STEPS = 64
STATUS_POLL = 5.0          # seconds between status polls of our peers
PARALLEL_MIN = 16          # a sync of fewer blocks, while no verifier runs, checks its seals in
                           # one local thread: starting worker processes costs more than it saves


class SyncAborted(Exception):
    """Syncing from this peer stopped (it misbehaved or went away)."""


class Syncer:
    def __init__(self, view: ChainView, host: P2PHost, *, verifier: Any = None,
                 batch: int = BATCH) -> None:
        self.view = view
        self.host = host
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
        self.sync_started: float | None = None  # time.monotonic() when the last sync began
        # Where the sync thread's time went in the last sync (seconds): waiting for seal
        # results, Node.import_block, reading epochs' quiz contexts (governance).
        self.timings: dict[str, float] = {}
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
        _, td = self.view.head_and_td()
        if status.total_difficulty > td:
            self.request_sync(peer)

    def request_sync(self, peer: str) -> None:
        with self._lock:
            self._candidates.add(peer)
        self._wake.set()

    def is_syncing(self) -> bool:
        return self._syncing

    def progress(self) -> SyncProgress:
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
            host = self.host
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
            _, our_td = self.view.head_and_td()
            if best[0] <= our_td:
                continue
            try:
                self.sync_from(best[1], best[2])
            except SyncAborted as exc:
                log.warning("sync from %s aborted: %s", best[1], exc)
                self._backoff[best[1]] = time.monotonic() + 10.0
            except StorageError:
                return  # this node cannot store blocks: it reported that and stops
            except Exception:  # noqa: BLE001 - keep the node running; retry later
                log.exception("sync from %s failed", best[1])
                self._backoff[best[1]] = time.monotonic() + 10.0
            finally:
                self._syncing = False

    # -- one sync -------------------------------------------------------------------------

    def sync_from(self, peer: str, status: m.Status) -> int:
        """Import the peer's chain above our common ancestor; returns blocks imported.

        Streaming: a download thread keeps up to LOOKAHEAD range requests ahead; each decoded
        batch's seals go to the verifier at once in small chunks (one forward pass per chunk);
        this thread imports every block as soon as its chunk's result is in, in order."""
        svc = self.view
        self.sync_started = time.monotonic()
        ancestor = self.find_common_ancestor(peer, status.head_number)
        head, _ = svc.head_and_td()
        self._syncing = True
        self._start_block = head.block_number
        self._highest = status.head_number
        log.info("sync: from peer %s, common ancestor #%d, target #%d", peer[-8:], ancestor,
                 status.head_number)
        with svc.lock:
            prev_hash = bytes(
                svc.chain.get_canonical_block_header_by_number(BlockNumber(ancestor)).hash)
        t0 = time.monotonic()
        self._last_log = t0
        self._imported = 0
        self.timings = {"wait_for_seals": 0.0, "import": 0.0, "quiz_contexts": 0.0}
        ready: queue.Queue[list[BlockAPI] | BaseException | None] = queue.Queue(LOOKAHEAD)
        halt = threading.Event()
        loader = threading.Thread(target=self._download_ahead,
                                  args=(peer, ancestor + 1, prev_hash, ready, halt),
                                  name="p2p-sync-download", daemon=True)
        with _SealSubmitter(self, status.head_number - ancestor) as submit:
            checks = _SealChecks(svc, submit, self.timings)
            loader.start()
            try:
                self._import_stream(peer, checks, ready, t0)
            finally:
                halt.set()
                checks.cancel()
                while loader.is_alive():  # unblock a loader waiting to put a batch
                    try:
                        ready.get(timeout=0.1)
                    except queue.Empty:
                        pass
                loader.join()
        return self._imported

    def _import_stream(self, peer: str, checks: _SealChecks,
                       ready: queue.Queue[list[BlockAPI] | BaseException | None],
                       t0: float) -> None:
        done = False

        def feed(wait: float) -> None:
            """Hand every downloaded batch to the seal checks (wait up to `wait` s for one)."""
            nonlocal done
            while not done:
                try:
                    item = ready.get(timeout=wait) if wait > 0 else ready.get_nowait()
                except queue.Empty:
                    return
                if item is None:
                    done = True
                elif isinstance(item, BaseException):
                    raise item
                else:
                    checks.add(item)
                wait = 0.0

        while not self._stop.is_set():
            feed(0.0 if checks.pending else 0.5)
            if not checks.pending:
                if done:
                    return
                continue
            entry = checks.pending.popleft()
            block, result, index = entry.block, entry.result, entry.index
            if result is not None and checks.usable(entry):
                if not result.done():
                    waited = time.perf_counter()
                    while not result.done():  # keep the verifier fed while we wait
                        feed(0.0)
                        wait_futures([result], timeout=0.002)
                    self.timings["wait_for_seals"] += time.perf_counter() - waited
                err = result.result()[index]  # a non-seal error (missing blob) propagates
                try:
                    self.view.chain.consensus_context.settle(block.header, err)
                except SealRejected as exc:
                    self.host.penalize(peer, block_offence(exc), str(exc))
                    raise SyncAborted(f"block #{block.number}: {err}") from exc
            started = time.perf_counter()
            self._import_one(peer, block, t0)
            self.timings["import"] += time.perf_counter() - started
            checks.imported(block)

    def _import_one(self, peer: str, block: BlockAPI, t0: float) -> None:
        svc = self.view
        try:
            svc.import_block(block)
        except (ValidationError, ValueError) as exc:
            self.host.penalize(peer, block_offence(exc), str(exc))
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

    def _download_ahead(self, peer: str, n: int, prev_hash: bytes,
                        out: queue.Queue[list[BlockAPI] | BaseException | None],
                        halt: threading.Event) -> None:
        """Download thread: linked, decoded batches into `out` (bounded), then None; an error
        is put there for the importing thread to raise."""
        def put(item: list[BlockAPI] | BaseException | None) -> bool:
            while not halt.is_set():
                try:
                    out.put(item, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        size = FIRST_REQUEST  # small first requests: the verifier and import start sooner
        try:
            while not halt.is_set() and not self._stop.is_set():
                if n > self._highest:
                    try:  # follow the peer's head while it moves
                        self._highest = self.host.status_of(peer).head_number
                    except Exception:  # noqa: BLE001
                        break
                    if n > self._highest:
                        break
                count = min(self.batch, size, self._highest - n + 1)
                size *= 2
                blocks = self._download(peer, n, count, prev_hash)
                if not blocks:
                    break
                if not put(blocks):
                    return
                prev_hash = bytes(blocks[-1].hash)
                n = blocks[-1].number + 1
            put(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the importing thread
            put(exc)

    def find_common_ancestor(self, peer: str, their_head: int) -> int:
        """The highest block number at which our canonical chain and the peer's agree."""
        svc = self.view
        head, _ = svc.head_and_td()
        hi = min(head.block_number, their_head)
        window = ANCESTOR_WINDOW
        for _ in range(MAX_ANCESTOR_STEPS):
            start = max(0, hi - window + 1)
            raws = self._request_items(peer, m.HEADERS_BY_RANGE_PROTOCOL,
                                       m.RangeRequest(start, hi - start + 1).encode(),
                                       m.MAX_HEADERS_PER_REQUEST)
            with svc.lock:
                for i in range(len(raws) - 1, -1, -1):
                    number = start + i
                    if number > hi:
                        continue
                    try:
                        ours = bytes(svc.chain.get_canonical_block_header_by_number(
                            BlockNumber(number)).hash)
                    except HeaderNotFound:
                        continue
                    if keccak(raws[i]) == ours:
                        return number
            if start == 0:
                self.host.penalize(peer, Offence.WRONG_CHAIN, "no common block, not even genesis")
                raise SyncAborted("peer shares no block with us")
            hi = start - 1
            window = min(window * 2, m.MAX_HEADERS_PER_REQUEST)
        raise SyncAborted("no common ancestor within reach")

    def _request_items(self, peer: str, protocol: str, payload: bytes, limit: int
                       ) -> list[bytes]:
        try:
            return m.decode_items(self.host.request(peer, protocol, payload, 30.0), limit)
        except m.WireError as exc:
            self.host.penalize(peer, Offence.BAD_RESPONSE, str(exc))
            raise SyncAborted(str(exc)) from exc
        except (RequestFailed, m.ResponseError) as exc:
            raise SyncAborted(str(exc)) from exc

    def _download(self, peer: str, start: int, count: int, prev_hash: bytes) -> list[BlockAPI]:
        svc = self.view
        raws = self._request_items(peer, m.BLOCKS_BY_RANGE_PROTOCOL,
                                   m.RangeRequest(start, count).encode(),
                                   m.MAX_BLOCKS_PER_REQUEST)
        blocks: list[BlockAPI] = []
        for i, raw in enumerate(raws):
            try:
                block = svc.decode_block(raw, start + i)
            except m.WireError as exc:
                self.host.penalize(peer, Offence.GARBAGE, str(exc))
                raise SyncAborted(str(exc)) from exc
            if block.number != start + i or bytes(block.header.parent_hash) != prev_hash:
                # The peer may have reorganised between requests: not proof of malice.
                raise SyncAborted(f"block #{start + i} does not link to our last block")
            try:
                svc.check_timestamp(block.header)
            except BlockRejected as exc:
                self.host.penalize(peer, block_offence(exc), str(exc))
                raise SyncAborted(str(exc)) from exc
            prev_hash = bytes(block.hash)
            blocks.append(block)
        return blocks

    def verifier(self) -> Any:
        if self._verifier is None:
            self._verifier = ParallelVerifier()
            self._own_verifier = True
        return self._verifier

SealResults = Future[list[Any]]  # one InvalidSeal | None per seal of a chunk


class _SealSubmitter:
    """Where one sync's seal chunks are verified: the ParallelVerifier's worker processes, or,
    for a short sync while no verifier runs yet, one local thread (starting worker processes and
    loading the model in each costs more than a few seals)."""

    def __init__(self, syncer: Syncer, expected: int) -> None:
        self.chunk = DEFAULT_CHUNK
        self._local: ThreadPoolExecutor | None = None
        self._verifier: Any = None
        if syncer._verifier is None and expected < PARALLEL_MIN:
            self._local = ThreadPoolExecutor(1, thread_name_prefix="p2p-seals")
        else:
            self._verifier = syncer.verifier()
            self.chunk = getattr(self._verifier, "chunk", DEFAULT_CHUNK)

    def __call__(self, ctx: Any, seals: list[tuple[bytes, int, bytes, int]]) -> SealResults:
        if self._local is not None:
            return self._local.submit(verify_seals, ctx, seals)
        fut: SealResults = self._verifier.submit(ctx, seals)
        return fut

    def __enter__(self) -> _SealSubmitter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._local is not None:
            self._local.shutdown(wait=True, cancel_futures=True)


class _Pending:
    """A downloaded block waiting for its import: `result` is its chunk's future (None: the
    seal is left to Node.import_block), `index` its place in the chunk, `ctx` the quiz context
    it was checked under and `guessed` whether that context was a guess (see _SealChecks)."""

    __slots__ = ("block", "result", "index", "ctx", "guessed")

    def __init__(self, block: BlockAPI) -> None:
        self.block = block
        self.result: SealResults | None = None
        self.index = 0
        self.ctx: Any = None
        self.guessed = False


class _SealChecks:
    """The seal checks of downloaded blocks, submitted in chain order ahead of their import.

    All blocks of one sync form one chain from the common ancestor, so an epoch has one quiz
    context for the whole sync: it is computed once per epoch (under the node lock; the
    epoch's seed may be among the downloaded headers not imported yet).

    On a governed chain an epoch's model and dataset are read from the state after its seed
    block (the last block of the previous epoch), which is not stored until that block is
    imported.  Waiting for it would drain the verifier at every epoch boundary, so the seals of
    such an epoch are checked under a guess: the epoch's own key (from the seed's hash, known
    from the downloaded headers) with the last known epoch's model and dataset (governance
    changes them rarely).  A guessed result is used only if, once the seed is imported, the
    epoch's real context equals the guess; otherwise Node.import_block verifies the seal.
    """

    def __init__(self, svc: ChainView, submit: _SealSubmitter, timings: dict[str, float]
                 ) -> None:
        self.pending: deque[_Pending] = deque()
        self._timings = timings
        self._svc = svc
        self._submit = submit
        self._epoch_blocks: int = svc.config.quiz.epoch_blocks
        self._headers: dict[bytes, BlockHeaderAPI] = {}  # downloaded, not imported yet
        self._consensus = svc.chain.consensus_context
        self._contexts: dict[int, Any] = {}  # epoch index -> its real QuizContext
        self._guesses: dict[int, Any] = {}   # epoch index -> the QuizContext guessed for it
        self._unknown: set[int] = set()      # epochs whose seed state was not stored when asked
        self._latest: Any = None             # the real context of the latest epoch seen

    def add(self, blocks: list[BlockAPI]) -> None:
        """Queue a downloaded batch and submit its seals in chunks of one context."""
        for b in blocks:
            self._headers[bytes(b.hash)] = b.header
        cc = self._svc.chain.consensus_context
        run: list[_Pending] = []
        guessed = 0
        for b in blocks:
            e = _Pending(b)
            self.pending.append(e)
            if cc.verified_losses(b.hash) is not None:
                continue  # already verified (e.g. it came by gossip): nothing to submit
            e.ctx, e.guessed = self._context(b.header)
            if e.ctx is None:
                continue
            guessed += e.guessed
            if run and (e.ctx != run[0].ctx or len(run) >= self._submit.chunk):
                self._flush(run, seal_hash)
                run = []
            run.append(e)
        if run:
            self._flush(run, seal_hash)
        if guessed:
            log.debug("sync: %d seals of #%d-#%d checked under a guessed quiz context "
                      "(epoch seed state not stored yet)", guessed, blocks[0].number,
                      blocks[-1].number)

    def _flush(self, run: list[_Pending], seal_hash: Any) -> None:
        fut = self._submit(run[0].ctx, [(seal_hash(e.block.header),
                                         int.from_bytes(e.block.header.nonce, "big"),
                                         bytes(e.block.header.mix_hash),
                                         e.block.header.difficulty) for e in run])
        for i, e in enumerate(run):
            e.result, e.index = fut, i

    def _context(self, header: BlockHeaderAPI) -> tuple[Any, bool]:
        """(context to check the seal under or None, whether it is a guess)."""
        e = epoch_index(header.block_number, self._epoch_blocks)
        ctx = self._contexts.get(e)
        if ctx is not None:
            return ctx, False
        if e not in self._unknown:
            ctx = self._real_context(header)
            if ctx is not None:
                return ctx, False
        ctx = self._guesses.get(e)
        if ctx is None and self._latest is not None:
            with self._svc.lock:
                seed = self._consensus.seed_of(header, self._headers)
            ctx = self._guesses[e] = dataclasses.replace(self._latest,
                                                         epoch_key=epoch_key(seed.hash, e))
        return ctx, ctx is not None

    def _real_context(self, header: BlockHeaderAPI) -> Any:
        e = epoch_index(header.block_number, self._epoch_blocks)
        started = time.perf_counter()
        try:
            with self._svc.lock:
                ctx = self._consensus.quiz_for(header, self._headers)
        except SeedStateUnavailable:
            self._unknown.add(e)
            return None
        finally:
            self._timings["quiz_contexts"] += time.perf_counter() - started
        self._unknown.discard(e)
        self._contexts[e] = ctx
        if self._latest is None or e >= max(self._contexts):
            self._latest = ctx
        return ctx

    def usable(self, entry: _Pending) -> bool:
        """Whether entry's seal result may stand for its block (at its import: the epoch's
        seed is stored by then, so a guessed context can be checked now)."""
        if entry.result is None:
            return False
        if not entry.guessed:
            return True
        real = self._contexts.get(epoch_index(entry.block.number, self._epoch_blocks))
        if real is None:
            real = self._real_context(entry.block.header)
        if real == entry.ctx:
            return True
        log.debug("sync: block #%d: guessed quiz context was wrong, verifying at import",
                  entry.block.number)
        return False

    def imported(self, block: BlockAPI) -> None:
        self._headers.pop(bytes(block.hash), None)

    def cancel(self) -> None:
        for e in self.pending:
            if e.result is not None:
                e.result.cancel()

