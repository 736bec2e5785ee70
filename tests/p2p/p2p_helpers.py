"""Helpers shared by the P2P tests (imported by name: tests/ is not a package)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from poai.p2p import messages as m
from poai.p2p.host import P2PHost

CHAIN_STATUS = m.Status(m.PROTOCOL_VERSION, 7, b"\x11" * 32, b"\x22" * 32, 5, 100)


def wait_for(cond: Callable[[], object], timeout: float = 15.0, what: str = "condition"
             ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def connect(a: P2PHost, b: P2PHost) -> None:
    """Dial b from a and wait until both finished the handshake."""
    a.connect(b.full_addrs()[0])
    wait_for(lambda: b.peer_id in a.peers() and a.peer_id in b.peers(), what="handshake")


HostFactory = Callable[..., P2PHost]


def stop_node(node: Any, svc: Any) -> None:
    if getattr(svc, "_stopped", False):
        return
    svc._stopped = True
    svc.stop()
    node.stop()
