"""Layer 2: real Nodes (tiny quiz chain) wired to the network through P2PService."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from poai.chain.devaccounts import dev_accounts
from support.p2p_chainmaker import extend, signed_transfers
from support.p2p_helpers import meshed, wait_for

QUICK = os.environ.get("CI") == "true"
NodeFactory = Callable[..., tuple[Any, Any]]


def head(node: Any) -> tuple[int, bytes]:
    h = node.head()
    return h.block_number, bytes(h.hash)


def test_fresh_node_catches_up_then_follows_gossip(make_node: NodeFactory) -> None:
    a, sa = make_node()
    extend(a, 12)
    b, sb = make_node(peers=sa.host.full_addrs())
    wait_for(lambda: head(b) == head(a), timeout=60, what="catch-up")
    assert sb.syncer.blocks_imported >= 8  # a few may come by gossip first (gossipsub cache)
    meshed(sa.host, sb.host, sa.topic_blocks)
    extend(a, 3)  # announced by a as it imports them (they did not come from the network)
    wait_for(lambda: head(b) == head(a), timeout=30, what="follow by gossip")
    assert head(b)[0] == 15


def test_transactions_travel_and_get_mined(make_node: NodeFactory) -> None:
    a, sa = make_node(mine=True)
    b, sb = make_node(peers=sa.host.full_addrs())
    wait_for(lambda: sa.host.peers() and sb.host.peers(), what="handshake")
    meshed(sa.host, sb.host, sa.topic_txs)
    key = dev_accounts()[0].private_key
    raw = signed_transfers(b.config.chain_id, key, b"\x42" * 20, 1)[0]
    tx_hash = b.submit_raw_transaction(raw)
    wait_for(lambda: a.txpool.get(tx_hash) is not None or _mined(a, tx_hash), timeout=20,
             what="tx gossiped to the miner")
    wait_for(lambda: _mined(b, tx_hash), timeout=60, what="tx mined and seen by b")


def _mined(node: Any, tx_hash: bytes) -> bool:
    with node.lock:
        try:
            node.chain.chaindb.get_transaction_index(tx_hash)
            return True
        except Exception:  # noqa: BLE001
            return False


def test_a_transaction_flood_is_not_echoed_back(make_node: NodeFactory) -> None:
    """Transactions a peer receives by gossip are not gossiped back to their sender: an echo
    counted as duplicates, and an honest peer was banned for a flood of them (seen in
    bench/soak.py: a syncing peer banned under a 20 tx/s flood)."""
    a, sa = make_node()
    b, sb = make_node(peers=sa.host.full_addrs())
    wait_for(lambda: sa.host.peers() and sb.host.peers(), what="handshake")
    meshed(sa.host, sb.host, sa.topic_txs)
    key = dev_accounts()[0].private_key
    hashes = [a.submit_raw_transaction(raw)
              for raw in signed_transfers(a.config.chain_id, key, b"\x42" * 20, 80)]
    wait_for(lambda: all(b.txpool.get(h) is not None for h in hashes), timeout=30,
             what="the flood reaches b")
    time.sleep(2.0)  # an echo would be back by now
    score = sa.host.scores.snapshot().get(sb.host.peer_id, {"offences": 0.0, "banned_for": 0.0})
    assert score["offences"] == 0 and score["banned_for"] == 0, score
