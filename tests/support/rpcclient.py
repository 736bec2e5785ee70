"""The RPC test client and an in-process server thread (a plain module, not a conftest, so
tests and fixtures share one RpcFailure class under pytest's importlib import mode)."""

from __future__ import annotations

import asyncio
import json
import threading
import urllib.error
import urllib.request
from typing import Any

from poai.rpc.server import RpcServer

from support.contract import counter
from support.devnode import DevNode, sign


class Rpc:
    """A tiny HTTP JSON-RPC client: call() returns the result or raises RpcFailure."""

    def __init__(self, url: str) -> None:
        self.url = url

    def raw(self, body: bytes | str, headers: dict[str, str] | None = None,
            method: str = "POST") -> tuple[int, Any, dict[str, str]]:
        data = body.encode() if isinstance(body, str) else body
        req = urllib.request.Request(self.url, data=data if method == "POST" else None,
                                     method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, _json(resp.read()), dict(resp.headers)
        except urllib.error.HTTPError as err:
            return err.code, _json(err.read()), dict(err.headers)

    def request(self, method: str, *params: Any) -> dict[str, Any]:
        _, reply, _ = self.raw(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                           "params": list(params)}))
        assert isinstance(reply, dict)
        return reply

    def call(self, method: str, *params: Any) -> Any:
        reply = self.request(method, *params)
        if "error" in reply:
            raise RpcFailure(reply["error"])
        return reply["result"]


def _json(text: bytes) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text.decode()


class RpcFailure(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error["message"])
        self.code = error["code"]
        self.error = error


class ServerThread:
    def __init__(self, node: DevNode, *, hold: bool = False, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = RpcServer(node, host="127.0.0.1", port=0, **kwargs)
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(self.server.start(hold=hold))
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert started.wait(10)

    def accept_requests(self) -> None:
        self.loop.call_soon_threadsafe(self.server.accept_requests)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def deploy(rpc: Rpc, node: DevNode, nonce: int = 0) -> tuple[str, dict]:
    """Deploy the Counter from dev account 0 and mine it: (address, receipt)."""
    raw = sign(0, nonce=nonce, to=None, data=counter()["bytecode"], gas=500_000)
    tx_hash = rpc.call("eth_sendRawTransaction", "0x" + raw.hex())
    node.mine_block()
    receipt = rpc.call("eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1"
    return receipt["contractAddress"], receipt
