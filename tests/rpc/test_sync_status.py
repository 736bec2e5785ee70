"""net_peerCount and eth_syncing read the network the node runs (`node.network`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from poai.p2p.host import HostConfig
from poai.p2p.service import P2PService
from poai.rpc.eth import sync_result
from support.devnode import DevNode
from support.rpcclient import Rpc


def test_without_networking_no_peers_and_not_syncing(rpc: Rpc) -> None:
    assert rpc.call("net_peerCount") == "0x0"
    assert rpc.call("eth_syncing") is False


def test_a_real_idle_p2p_service_is_read(rpc: Rpc, node: DevNode, tmp_path: Path) -> None:
    node.network = P2PService(node, HostConfig(datadir=tmp_path))  # type: ignore[assignment]
    assert node.network.peer_count() == 0
    assert rpc.call("net_peerCount") == "0x0"
    assert rpc.call("eth_syncing") is False
    # What the network says is what the RPC answers.
    node.network.peer_count = lambda: 5  # type: ignore[method-assign]
    node.network.syncer.progress = lambda: {  # type: ignore[union-attr]
        "syncing": True, "startingBlock": 1, "currentBlock": 2, "highestBlock": 9}
    assert rpc.call("net_peerCount") == "0x5"
    assert rpc.call("eth_syncing") == {"startingBlock": "0x1", "currentBlock": "0x2",
                                       "highestBlock": "0x9"}


def test_sync_progress_is_geths_object_in_hex(tmp_path: Path) -> None:
    svc = P2PService(DevNode(), HostConfig(datadir=tmp_path))
    assert svc.syncer is not None
    progress = svc.syncer.progress()  # the real shape: syncing + the three numbers
    assert sync_result(progress) is False
    progress.update(syncing=True, startingBlock=10, currentBlock=300, highestBlock=1000)
    assert sync_result(progress) == {"startingBlock": "0xa", "currentBlock": "0x12c",
                                     "highestBlock": "0x3e8"}
    with pytest.raises(ValueError, match="highestBlock"):
        sync_result({"syncing": True, "startingBlock": 1, "currentBlock": 2})
