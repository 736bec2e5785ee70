"""rpc_modules, admin_nodeInfo and admin_peers (poai.rpc.admin), and admin's loopback rule."""

from __future__ import annotations

from typing import Any

import pytest
from poai.rpc.server import is_loopback
from support.devnode import DevNode
from support.rpcclient import Rpc, RpcFailure, ServerThread

PEER_ID = "16Uiu2HAmQ7Qb1tCB8JbTbJ1W5Tw4tdsuE1pcpK2XzP1w3m2bE9mA"


class FakeNetwork:
    """The `interfaces.Network` calls admin_* makes, answered as P2PService would."""

    def listen_addrs(self) -> list[str]:
        return [f"/ip4/127.0.0.1/tcp/30311/p2p/{PEER_ID}"]

    def peers_info(self) -> list[dict[str, Any]]:
        return [{"id": "16Uiu2HAmPeer", "head": "0x" + "11" * 32, "number": 7,
                 "totalDifficulty": 9, "score": 0.5}]


def test_rpc_modules_lists_every_namespace(rpc: Rpc) -> None:
    assert rpc.call("rpc_modules") == {name: "1.0" for name in (
        "admin", "debug", "eth", "net", "poai", "rpc", "txpool", "web3")}


def test_node_info_without_networking(rpc: Rpc, node: DevNode) -> None:
    info = rpc.call("admin_nodeInfo")
    assert list(info) == ["id", "name", "enode", "ip", "ports", "listenAddr", "protocols"]
    assert info["name"].startswith("poai/") and info["enode"] == ""
    proto = info["protocols"]["poai"]
    assert proto["network"] == 31337 and proto["config"] == {"chainId": 31337}
    assert proto["genesis"] == "0x" + node.chain.get_canonical_block_header_by_number(0).hash.hex()
    assert proto["head"] == "0x" + node.head().hash.hex()
    assert rpc.call("admin_peers") == []


def test_node_info_and_peers_with_a_network(node: DevNode) -> None:
    node.network = FakeNetwork()  # type: ignore[assignment]
    st = ServerThread(node)
    try:
        rpc = Rpc(st.server.url)
        info = rpc.call("admin_nodeInfo")
        assert info["id"] == PEER_ID and info["enode"] == FakeNetwork().listen_addrs()[0]
        assert info["ip"] == "127.0.0.1" and info["listenAddr"] == "127.0.0.1:30311"
        assert info["ports"] == {"discovery": 0, "listener": 30311}
        (peer,) = rpc.call("admin_peers")
        assert peer["id"] == "16Uiu2HAmPeer" and peer["enode"] == "/p2p/16Uiu2HAmPeer"
        assert peer["protocols"]["poai"] == {"head": "0x" + "11" * 32, "number": 7,
                                             "totalDifficulty": 9, "score": 0.5}
    finally:
        st.close()


def test_admin_is_off_unless_loopback_or_asked(node: DevNode) -> None:
    st = ServerThread(node, admin_api=False)  # as a server on a public address without the flag
    try:
        rpc = Rpc(st.server.url)
        with pytest.raises(RpcFailure) as info:
            rpc.call("admin_nodeInfo")
        assert info.value.code == -32601
        assert "admin" not in rpc.call("rpc_modules")
    finally:
        st.close()


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("node.example", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_node_takes_rpc_admin() -> None:
    from poai import cli  # the `poai node` flag that serves admin_* on a public --rpc-addr

    assert cli.build_parser().parse_args(["node", "--rpc-admin"]).rpc_admin is True
    assert cli.build_parser().parse_args(["node"]).rpc_admin is False
