"""The P2P service: a running Node's network (`poai.interfaces.Network`), composed of the
libp2p host (`host`), the chain as P2P sees it (`chain_view`), gossip (`gossip`), serving
(`serving`) and range sync (`sync`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from poai.interfaces import NodeLike, SyncProgress
from poai.p2p.chain_view import ChainView
from poai.p2p.gossip import DUPLICATE_ALLOWANCE, Gossip
from poai.p2p.host import HostConfig, P2PHost
from poai.p2p.serving import Serving
from poai.p2p.sync import BATCH, Syncer

log = logging.getLogger(__name__)

__all__ = ["DUPLICATE_ALLOWANCE", "P2PService"]


class P2PService:
    def __init__(self, node: NodeLike, config: HostConfig, *, sync: bool = True,
                 verifier: Any = None, sync_batch: int | None = None) -> None:
        self.node = node
        self.view = ChainView(node)
        self.host = P2PHost(config, self.view.local_status)
        self.syncer = (Syncer(self.view, self.host, verifier=verifier,
                              batch=sync_batch or BATCH) if sync else None)
        self.gossip = Gossip(node, self.view, self.host, self.syncer)
        self.serving = Serving(node, self.view, self.host)
        self.topic_blocks = self.gossip.topic_blocks
        self.topic_txs = self.gossip.topic_txs
        if self.syncer is not None:
            self.host.on_status(self.syncer.on_peer_status)

    def start(self) -> None:
        self.node.add_listener(self.gossip.on_node_event)
        self.host.start()
        self.gossip.start()
        if self.syncer is not None:
            self.syncer.start()
        log.info("p2p: %s", " ".join(self.host.full_addrs()))

    def stop(self) -> None:
        self.gossip.stop()
        if self.syncer is not None:
            self.syncer.stop()
        self.host.stop()
        self.gossip.join(5)

    def local_status(self) -> Any:
        return self.view.local_status()

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

    def sync_progress(self) -> SyncProgress | None:
        return self.syncer.progress() if self.syncer is not None else None

    def on_failure(self, fn: Callable[[BaseException], None]) -> None:
        """`fn(error)` runs once if the libp2p service dies while the node runs."""
        self.host.on_crash = fn

    def listen_addrs(self) -> list[str]:
        return list(self.host.full_addrs())

    def fetch_blob(self, digest: str, timeout: float = 60.0) -> bytes:
        return self.serving.fetch_blob(digest, timeout)
