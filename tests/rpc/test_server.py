"""JSON-RPC 2.0 transport: single and batch, error codes, limits, CORS, notifications."""

from __future__ import annotations

import json
import threading

from support.devnode import DevNode
from support.rpcclient import Rpc, ServerThread


def test_single_and_batch(rpc: Rpc) -> None:
    assert rpc.call("eth_chainId") == hex(31337)
    status, reply, _ = rpc.raw(json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"},
        {"jsonrpc": "2.0", "id": "b", "method": "net_version"},
        {"jsonrpc": "2.0", "method": "eth_blockNumber"},  # notification: no reply
        {"jsonrpc": "2.0", "id": 3, "method": "nope_nothing"},
    ]))
    assert status == 200
    assert [r["id"] for r in reply] == [1, "b", 3]
    assert reply[0]["result"] == "0x7a69" and reply[1]["result"] == "31337"
    assert reply[2]["error"]["code"] == -32601


def test_error_codes(rpc: Rpc) -> None:
    _, reply, _ = rpc.raw("{not json")
    assert reply["error"]["code"] == -32700 and reply["id"] is None
    _, reply, _ = rpc.raw(json.dumps({"id": 1, "method": "eth_chainId"}))
    assert reply["error"]["code"] == -32600
    _, reply, _ = rpc.raw(json.dumps([]))
    assert reply["error"]["code"] == -32600
    _, reply, _ = rpc.raw(json.dumps([1, 2]))
    assert [r["error"]["code"] for r in reply] == [-32600, -32600]
    assert rpc.request("eth_fillTransaction", {})["error"]["code"] == -32601
    assert rpc.request("eth_getBalance", "0x1234")["error"]["code"] == -32602
    assert rpc.request("eth_getBalance")["error"]["code"] == -32602
    assert rpc.request("eth_getBlockByNumber", "tomorrow")["error"]["code"] == -32602
    _, reply, _ = rpc.raw(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId",
                                      "params": {"a": 1}}))
    assert reply["error"]["code"] == -32602


def test_requests_wait_until_the_node_has_started(node: DevNode) -> None:
    # The port is bound before the chain opens (a taken port is reported first), but nothing
    # is answered from a node that is still starting: requests wait, then get real answers.
    held = ServerThread(node, hold=True)
    try:
        answers: list[object] = []
        client = threading.Thread(
            target=lambda: answers.append(Rpc(held.server.url).call("eth_blockNumber")))
        client.start()
        client.join(1.0)
        assert client.is_alive() and answers == []
        held.accept_requests()
        client.join(10)
        assert answers == [hex(node.head().block_number)]
        assert Rpc(held.server.url).call("eth_chainId") == hex(31337)
    finally:
        held.close()


def test_batch_and_body_limits(rpc: Rpc, node: DevNode) -> None:
    batch = [{"jsonrpc": "2.0", "id": i, "method": "eth_chainId"} for i in range(51)]
    _, reply, _ = rpc.raw(json.dumps(batch))
    assert reply["error"]["code"] == -32600 and "batch too large" in reply["error"]["message"]
    _, reply, _ = rpc.raw(json.dumps(batch[:50]))
    assert len(reply) == 50
    small = ServerThread(node, max_body=1024)
    try:
        status, reply, _ = Rpc(small.server.url).raw(json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "web3_sha3", "params": ["0x" + "00" * 2000]}))
        assert status == 413 and reply["error"]["code"] == -32600
    finally:
        small.close()


def test_cors_preflight_and_origin(rpc: Rpc, node: DevNode) -> None:
    status, _, headers = rpc.raw(b"", method="OPTIONS", headers={
        "Origin": "chrome-extension://metamask", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert status == 204
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in headers["Access-Control-Allow-Methods"]
    _, _, headers = rpc.raw(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}),
                            headers={"Origin": "https://app.example"})
    assert headers["Access-Control-Allow-Origin"] == "*"
    strict = ServerThread(node, cors_origins=("https://good.example",))
    try:
        client = Rpc(strict.server.url)
        status, _, headers = client.raw(b"", method="OPTIONS",
                                        headers={"Origin": "https://evil.example"})
        assert status == 403 and "Access-Control-Allow-Origin" not in headers
        _, _, headers = client.raw(
            json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"}),
            headers={"Origin": "https://good.example"})
        assert headers["Access-Control-Allow-Origin"] == "https://good.example"
    finally:
        strict.close()


def test_web3_and_net(rpc: Rpc) -> None:
    assert rpc.call("web3_clientVersion").startswith("poai/")
    assert rpc.call("web3_sha3", "0x") == (
        "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
    assert rpc.call("net_listening") is True
    assert rpc.call("net_peerCount") == "0x0"
    assert rpc.call("net_version") == "31337"


def test_unserializable_result_is_internal_error(rpc: Rpc, server: ServerThread) -> None:
    server.server.methods["test_bad"] = lambda ctx, params: {"x": object()}
    server.server.params["test_bad"] = ()
    assert rpc.request("test_bad")["error"]["code"] == -32603
    _, reply, _ = rpc.raw(json.dumps([{"jsonrpc": "2.0", "id": 1, "method": "test_bad"},
                                      {"jsonrpc": "2.0", "id": 2, "method": "eth_chainId"}]))
    assert reply[0]["error"]["code"] == -32603 and reply[1]["result"] == "0x7a69"
