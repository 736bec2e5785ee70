"""net_peerCount and eth_syncing read the P2P service the node runs (`node.p2p`)."""

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
    node.p2p = P2PService(node, HostConfig(datadir=tmp_path))  # type: ignore[attr-defined]
    assert node.p2p.peer_count() == 0  # type: ignore[attr-defined]
    node.peer_count = lambda: 5  # type: ignore[attr-defined] - the service wins over this
    assert rpc.call("net_peerCount") == "0x0"
    assert rpc.call("eth_syncing") is False


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
