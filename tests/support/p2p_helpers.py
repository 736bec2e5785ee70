"""Helpers shared by the P2P tests (imported by name: tests/ is not a package)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from poai.p2p import messages as m
from poai.p2p.host import HostError, P2PHost

CHAIN_STATUS = m.Status(m.PROTOCOL_VERSION, 7, b"\x11" * 32, b"\x22" * 32, 5, 100)


def wait_for(cond: Callable[[], object], timeout: float = 15.0, what: str = "condition"
             ) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def dial(a: P2PHost, addr: str, attempts: int = 3) -> None:
    """Dial as a node's redial loop does: a dial that fails on a loaded machine (a handshake
    that times out) is tried again, a bounded number of times."""
    for attempt in range(attempts):
        try:
            a.connect(addr)
            return
        except HostError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)


def connect(a: P2PHost, b: P2PHost) -> None:
    """Dial b from a and wait until both finished the handshake."""
    dial(a, b.full_addrs()[0])
    wait_for(lambda: b.peer_id in a.peers() and a.peer_id in b.peers(), what="handshake")


def meshed(a: P2PHost, b: P2PHost, *topics: str, timeout: float = 30.0) -> None:
    """Wait until a and b are in each other's gossip mesh on every topic (a gossipsub heartbeat
    after the handshake): a publish before then reaches no one."""
    wait_for(lambda: all(b.peer_id in a.mesh_peers(t) and a.peer_id in b.mesh_peers(t)
                         for t in topics), timeout=timeout, what=f"gossip mesh on {topics}")


HostFactory = Callable[..., P2PHost]


def stop_node(node: Any, svc: Any) -> None:
    if getattr(svc, "_stopped", False):
        return
    svc._stopped = True
    svc.stop()
    node.stop()


class RpcWatch:
    """A real JSON-RPC server (poai.rpc.server.RpcServer on a free loopback port, in its own
    event-loop thread) over a node, polled by a client thread every `interval` seconds: what a
    wallet sees while the node is under attack."""

    def __init__(self, node: Any, interval: float = 0.2) -> None:
        import asyncio
        import threading

        from poai.rpc.server import RpcServer

        self.loop = asyncio.new_event_loop()
        self.server = RpcServer(node, host="127.0.0.1", port=0)
        self.heads: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        started = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.start())
            started.set()
            self.loop.run_forever()

        self._serve = threading.Thread(target=serve, daemon=True)
        self._serve.start()
        if not started.wait(10):
            raise AssertionError("RPC server did not start")
        self._poll = threading.Thread(target=self._poller, args=(interval,), daemon=True)
        self._poll.start()

    def call(self, method: str, *params: Any) -> Any:
        import json
        import urllib.request

        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                           "params": list(params)}).encode()
        req = urllib.request.Request(self.server.url, data=body,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            reply = json.loads(resp.read())
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def _poller(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                number = int(self.call("eth_blockNumber"), 16)
                block = self.call("eth_getBlockByNumber", hex(number), False)
                if block is None or int(block["number"], 16) != number:
                    raise RuntimeError(f"block #{number} not served: {block!r}")
                self.heads.append(number)
            except Exception as exc:  # noqa: BLE001 - every failure is recorded and asserted on
                self.failures.append(repr(exc))

    def close(self) -> None:
        import asyncio

        self._stop.set()
        self._poll.join(10)
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._serve.join(10)
