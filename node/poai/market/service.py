"""The node's market services: `poai_job`/`poai_jobs` on JSON-RPC, and the optional worker
(``--market-worker``) and challenger (``--market-challenger``) threads.

Wiring (cli.py ``poai node``): ``poai.market.options.add_market_arguments(parser)``, then
``attach_market(server, node, args)`` before the RPC server starts, ``market.start()`` after
the node has started, ``market.stop()`` before the node stops.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

from poai.chain.devaccounts import DEV_MNEMONIC, dev_accounts
from poai.interfaces import NodeLike
from poai.market.book import JobBook
from poai.market.challenger import MarketChallenger
from poai.market.contract import MARKET, MarketError
from poai.market.rpc import MarketRpc
from poai.market.worker import MarketWorker, WorkerSettings

log = logging.getLogger(__name__)

DEV_WORKER_ACCOUNT = 1
DEV_CHALLENGER_ACCOUNT = 2


class MarketService:
    def __init__(self, node: NodeLike, book: JobBook, *, worker_key: bytes | None,
                 challenger_key: bytes | None, min_fee: int) -> None:
        self.node = node
        self.book = book
        self.worker: MarketWorker | None = None
        self.challenger: MarketChallenger | None = None
        if worker_key is not None or challenger_key is not None:
            # deferred: torch and the model load only when a market service runs
            from poai.market import replay
            engine = replay.Replayer(node)
            if worker_key is not None:
                self.worker = MarketWorker(node, worker_key, engine.answer,
                                           WorkerSettings(min_fee=min_fee), book=book)
            if challenger_key is not None:
                self.challenger = MarketChallenger(node, challenger_key, engine.check,
                                                   book=book, check_gas=engine.check_gas)

    def start(self) -> None:
        for svc in (self.worker, self.challenger):
            if svc is not None:
                svc.start()

    def stop(self) -> None:
        for svc in (self.challenger, self.worker):
            if svc is not None:
                svc.stop()


def _dev_key(node: NodeLike, index: int) -> bytes:
    return bytes(dev_accounts(node.config.dev_mnemonic or DEV_MNEMONIC, index + 1)[index]
                 .private_key)


def attach_market(server: Any, node: NodeLike, args: argparse.Namespace
                  ) -> MarketService | None:
    """Registers `poai_job`/`poai_jobs` on ``server`` and builds the requested services; None on
    a chain without the market (then --market-* is an error)."""
    wants = bool(getattr(args, "market_worker", False) or getattr(args, "market_challenger",
                                                                   False))
    if MARKET not in (node.contracts or {}):
        if wants:
            raise MarketError("this chain has no InferenceMarket: --market-worker and "
                              "--market-challenger need one")
        return None
    book = JobBook(node)
    rpc = MarketRpc(book)
    server.register(rpc.methods(), rpc.params())
    worker_key = challenger_key = None
    if args.market_worker:
        worker_key = args.market_worker_key or (
            _dev_key(node, DEV_WORKER_ACCOUNT) if args.dev else None)
        if worker_key is None:
            raise MarketError("--market-worker needs --market-worker-key (or --dev)")
    if args.market_challenger:
        challenger_key = args.market_challenger_key or (
            _dev_key(node, DEV_CHALLENGER_ACCOUNT) if args.dev else None)
        if challenger_key is None:
            raise MarketError("--market-challenger needs --market-challenger-key (or --dev)")
    if worker_key is not None and worker_key == challenger_key:
        raise MarketError("the market worker and challenger need different keys")
    return MarketService(node, book, worker_key=worker_key, challenger_key=challenger_key,
                         min_fee=args.market_min_fee)
