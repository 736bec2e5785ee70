"""Log queries, polling filters (eth_newFilter & co.) and the feed behind WS subscriptions.

Node events arrive on the thread that changed the chain (``Node.add_listener``): a new head
carries the block, its receipts and the blocks a reorg removed; a pending transaction carries
its hash. Filters buffer what they match until polled and expire after FILTER_TIMEOUT seconds
without a poll, as in geth.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from eth_bloom.bloom import BloomFilter

from poai.importer import NewPendingTx, NodeEvent
from poai.rpc import format
from poai.rpc.context import RpcContext
from poai.rpc.errors import InvalidParams, ServerError
from poai.rpc.hexutil import data, param, parse_address, parse_hash, qty
from poai.rpc.params import FILTER, NO_PARAMS, QTY, Arg

FILTER_TIMEOUT = 300.0
MAX_LOG_RANGE = 10_000  # blocks one eth_getLogs may scan
MAX_LOGS = 10_000
MAX_FILTERS = 10_000
MAX_BUFFER = 10_000


@dataclass(frozen=True)
class LogCriteria:
    from_block: Any = "latest"
    to_block: Any = "latest"
    block_hash: bytes | None = None
    addresses: frozenset[bytes] = frozenset()
    topics: tuple[frozenset[bytes] | None, ...] = ()

    @classmethod
    def parse(cls, obj: Any) -> LogCriteria:
        if obj is None:
            obj = {}
        if not isinstance(obj, dict):
            raise InvalidParams("invalid filter object: expected an object")
        block_hash = parse_hash(obj["blockHash"], "blockHash") if obj.get("blockHash") else None
        if block_hash is not None and (obj.get("fromBlock") or obj.get("toBlock")):
            raise InvalidParams("cannot specify both BlockHash and FromBlock/ToBlock")
        raw_addr = obj.get("address")
        if raw_addr is None:
            addresses: frozenset[bytes] = frozenset()
        elif isinstance(raw_addr, list):
            addresses = frozenset(parse_address(a) for a in raw_addr)
        else:
            addresses = frozenset([parse_address(raw_addr)])
        raw_topics = obj.get("topics") or []
        if not isinstance(raw_topics, list) or len(raw_topics) > 4:
            raise InvalidParams("invalid topics: at most 4 positions")
        topics: list[frozenset[bytes] | None] = []
        for t in raw_topics:
            if t is None:
                topics.append(None)
            elif isinstance(t, list):
                topics.append(frozenset(parse_hash(x, "topic") for x in t if x is not None)
                              if t and None not in t else None)
            else:
                topics.append(frozenset([parse_hash(t, "topic")]))
        return cls(obj.get("fromBlock") or "latest", obj.get("toBlock") or "latest",
                   block_hash, addresses, tuple(topics))

    def matches(self, log: dict[str, Any]) -> bool:
        if self.addresses and bytes.fromhex(log["address"][2:]) not in self.addresses:
            return False
        if len(self.topics) > len(log["topics"]):
            return False
        for want, have in zip(self.topics, log["topics"], strict=False):
            if want is not None and bytes.fromhex(have[2:]) not in want:
                return False
        return True

    def bloom_may_match(self, bloom: int) -> bool:
        filt = BloomFilter(bloom)
        if self.addresses and not any(a in filt for a in self.addresses):
            return False
        return all(want is None or any(t in filt for t in want) for want in self.topics)


def block_logs(ctx: RpcContext, header: Any, criteria: LogCriteria, removed: bool = False,
               receipts: tuple[Any, ...] | None = None) -> list[dict[str, Any]]:
    """The block's logs that match, from its (cached) formatted receipts."""
    if not criteria.bloom_may_match(header.bloom):
        return []
    out = []
    for receipt in ctx.receipts_json(header, receipts):
        for log in receipt["logs"]:
            if criteria.matches(log):
                out.append({**log, "removed": True} if removed else log)
    return out


def query_logs(ctx: RpcContext, criteria: LogCriteria) -> list[dict[str, Any]]:
    if criteria.block_hash is not None:
        header = ctx.header_by_hash(criteria.block_hash)
        if header is None:
            raise ServerError("unknown block")
        return block_logs(ctx, header, criteria)
    start = ctx.resolve_block(criteria.from_block)
    end = ctx.resolve_block(criteria.to_block)
    assert start is not None and end is not None
    if start.block_number > end.block_number:
        raise InvalidParams("invalid block range params")
    if end.block_number - start.block_number + 1 > MAX_LOG_RANGE:
        raise ServerError(f"block range too large: at most {MAX_LOG_RANGE} blocks")
    out: list[dict[str, Any]] = []
    for number in range(start.block_number, end.block_number + 1):
        header = ctx.header_by_number(number)
        if header is None:
            break
        out.extend(block_logs(ctx, header, criteria))
        if len(out) > MAX_LOGS:
            raise ServerError(f"query returned more than {MAX_LOGS} results")
    return out


@dataclass
class _Filter:
    kind: str  # "logs" | "blocks" | "pending"
    criteria: LogCriteria | None
    items: list[Any] = field(default_factory=list)
    last_poll: float = field(default_factory=time.monotonic)


class FilterManager:
    """Polling filters; also fans node events out to subscription callbacks."""

    def __init__(self, ctx: RpcContext) -> None:
        self._ctx = ctx
        self._filters: dict[str, _Filter] = {}
        self._lock = threading.Lock()
        self._feeds: list[Callable[[str, Any], None]] = []
        self._feeds_active: list[Callable[[], bool]] = []

    def add_feed(self, fn: Callable[[str, Any], None],
                 active: Callable[[], bool] | None = None) -> None:
        """``fn(kind, payload)`` for kind in newHead/logs/pendingTx; called on the node thread.
        ``active()`` False says the feed has no subscriber now, so head events can skip it."""
        self._feeds.append(fn)
        self._feeds_active.append(active or (lambda: True))

    def _heads_wanted(self) -> bool:
        with self._lock:
            if any(f.kind != "pending" for f in self._filters.values()):
                return True
        return any(active() for active in self._feeds_active)

    def _new(self, f: _Filter) -> str:
        with self._lock:
            self._expire()
            if len(self._filters) >= MAX_FILTERS:
                raise ServerError("too many filters installed")
            fid = "0x" + secrets.token_hex(16)
            self._filters[fid] = f
            return fid

    def _expire(self) -> None:
        now = time.monotonic()
        for fid in [k for k, f in self._filters.items() if now - f.last_poll > FILTER_TIMEOUT]:
            del self._filters[fid]

    def _get(self, fid: Any) -> _Filter:
        f = self._filters.get(fid) if isinstance(fid, str) else None
        if f is None:
            raise ServerError("filter not found")
        return f

    # ----------------------------------------------------------- node events
    def on_event(self, event: NodeEvent) -> None:
        if isinstance(event, NewPendingTx):
            tx_hash = data(event.tx_hash)
            with self._lock:
                for f in self._filters.values():
                    if f.kind == "pending" and len(f.items) < MAX_BUFFER:
                        f.items.append(tx_hash)
            for feed in self._feeds:
                feed("pendingTx", tx_hash)
            return
        block = event.block
        with self._lock:
            self._expire()  # abandoned filters go at every head, not only at the next install
        if not self._heads_wanted():
            return  # nobody listens: spare the node's thread (it holds Node.lock) the work
        # Removed blocks' logs first (removed=True), then the new head's logs, as geth orders.
        all_logs: list[dict[str, Any]] = []
        everything = LogCriteria()
        head_receipts = event.receipts or None
        with self._ctx.node.lock:
            for removed in event.removed_blocks:
                all_logs.extend(block_logs(self._ctx, removed.header, everything, removed=True))
            new_blocks = list(event.added_blocks) or [block]
            for b in new_blocks:
                given = head_receipts if b.hash == block.hash and head_receipts and len(
                    head_receipts) == len(b.transactions) else None
                all_logs.extend(block_logs(self._ctx, b.header, everything, receipts=given))
            heads = [format.header_json(b.header, self._ctx.total_difficulty(b.header))
                     for b in new_blocks]
        with self._lock:
            for f in self._filters.values():
                if len(f.items) >= MAX_BUFFER:
                    continue
                if f.kind == "blocks":
                    f.items.extend(h["hash"] for h in heads)
                elif f.kind == "logs" and f.criteria is not None:
                    f.items.extend(lg for lg in all_logs if f.criteria.matches(lg))
        for feed in self._feeds:
            for h in heads:
                feed("newHead", h)
            for lg in all_logs:
                feed("log", lg)

    # ----------------------------------------------------------- RPC methods
    def new_filter(self, ctx: RpcContext, params: list[Any]) -> str:
        criteria = LogCriteria.parse(param(params, 0, "filter"))
        return self._new(_Filter("logs", criteria))

    def new_block_filter(self, ctx: RpcContext, params: list[Any]) -> str:
        return self._new(_Filter("blocks", None))

    def new_pending_filter(self, ctx: RpcContext, params: list[Any]) -> str:
        return self._new(_Filter("pending", None))

    def get_filter_changes(self, ctx: RpcContext, params: list[Any]) -> list[Any]:
        with self._lock:
            self._expire()
            f = self._get(param(params, 0, "filterId"))
            items, f.items = f.items, []
            f.last_poll = time.monotonic()
            return items

    def get_filter_logs(self, ctx: RpcContext, params: list[Any]) -> list[Any]:
        with self._lock:
            f = self._get(param(params, 0, "filterId"))
            f.last_poll = time.monotonic()
        if f.kind != "logs" or f.criteria is None:
            raise ServerError("filter not found")
        return query_logs(ctx, f.criteria)

    def uninstall(self, ctx: RpcContext, params: list[Any]) -> bool:
        with self._lock:
            return self._filters.pop(param(params, 0, "filterId"), None) is not None

    @staticmethod
    def params() -> dict[str, tuple[Arg, ...]]:
        filter_id = (Arg("filterId", QTY),)
        return {
            "eth_getLogs": (Arg("filter", FILTER),),
            "eth_newFilter": (Arg("filter", FILTER),),
            "eth_newBlockFilter": NO_PARAMS,
            "eth_newPendingTransactionFilter": NO_PARAMS,
            "eth_getFilterChanges": filter_id,
            "eth_getFilterLogs": filter_id,
            "eth_uninstallFilter": filter_id,
        }

    def methods(self) -> dict[str, Callable[[RpcContext, list[Any]], Any]]:
        return {
            "eth_getLogs": lambda ctx, p: query_logs(ctx, LogCriteria.parse(
                param(p, 0, "filter"))),
            "eth_newFilter": self.new_filter,
            "eth_newBlockFilter": self.new_block_filter,
            "eth_newPendingTransactionFilter": self.new_pending_filter,
            "eth_getFilterChanges": self.get_filter_changes,
            "eth_getFilterLogs": self.get_filter_logs,
            "eth_uninstallFilter": self.uninstall,
        }


__all__ = ["FilterManager", "LogCriteria", "query_logs", "qty"]
