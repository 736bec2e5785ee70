"""History sync (with a restart midway) and fork choice after a partition, on real Nodes."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from poai.chain.devaccounts import dev_accounts
from support.p2p_chainmaker import extend, signed_transfers
from support.p2p_helpers import stop_node, wait_for

QUICK = os.environ.get("CI") == "true"
NodeFactory = Callable[..., tuple[Any, Any]]


def head(node: Any) -> tuple[int, bytes]:
    h = node.head()
    return h.block_number, bytes(h.hash)


def canonical_has_tx(node: Any, tx_hash: bytes) -> bool:
    with node.lock:
        try:
            number, _ = node.chain.chaindb.get_transaction_index(tx_hash)
        except Exception:  # noqa: BLE001 - not in the canonical chain
            return False
        block = node.chain.get_canonical_block_by_number(number)
        return any(bytes(tx.hash) == tx_hash for tx in block.transactions)


@pytest.mark.slow
def test_sync_of_a_long_chain_survives_a_restart(make_node: NodeFactory, tmp_path: Path
                                                 ) -> None:
    length = 160 if QUICK else 500  # long enough that the restart lands before the end
    a, sa = make_node()
    extend(a, length)
    assert a.head().block_number == length
    bdir = tmp_path / "syncer"
    batch = 8 if QUICK else 64  # several batches: the restart lands midway
    b, sb = make_node(datadir=bdir, peers=sa.host.full_addrs(), sync_batch=batch)
    wait_for(lambda: b.head().block_number >= length // 3, timeout=300, what="partial sync")
    stop_node(b, sb)  # a restart midway
    progress: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: progress.append(record.getMessage())  # type: ignore[method-assign]
    sync_log = logging.getLogger("poai.p2p.sync")
    old_level = sync_log.level
    sync_log.setLevel(logging.INFO)
    sync_log.addHandler(handler)
    try:
        b2, sb2 = make_node(datadir=bdir, peers=sa.host.full_addrs(), sync_batch=batch)
        resumed_at = b2.head().block_number
        assert length > resumed_at >= length // 3  # the stored head survived, midway
        wait_for(lambda: head(b2) == head(a), timeout=300, what="sync to the head")
    finally:
        sync_log.removeHandler(handler)
        sync_log.setLevel(old_level)
    assert sb2.syncer.blocks_imported <= length - resumed_at  # resumed, not restarted
    assert any("blocks/s" in line for line in progress), progress  # progress shown
    extend(a, 2)  # and then it follows the head
    wait_for(lambda: head(b2) == head(a), timeout=60, what="following the head")


@pytest.mark.slow
def test_partitioned_miners_converge_and_keep_both_sides_transactions(
        make_node: NodeFactory) -> None:
    a, sa = make_node(mine=True, coinbase=b"\xaa" * 20)
    b, sb = make_node(mine=True, coinbase=b"\xbb" * 20)
    accts = dev_accounts()
    tx_a = a.submit_raw_transaction(
        signed_transfers(a.config.chain_id, accts[2].private_key, b"\x01" * 20, 1)[0])
    tx_b = b.submit_raw_transaction(
        signed_transfers(b.config.chain_id, accts[3].private_key, b"\x02" * 20, 1)[0])
    wait_for(lambda: canonical_has_tx(a, tx_a) and canonical_has_tx(b, tx_b), timeout=120,
             what="each side mines its own transaction")
    wait_for(lambda: a.head().block_number >= 3 and b.head().block_number >= 3, timeout=120,
             what="both branches grow")
    with a.lock, b.lock:
        split_a, split_b = bytes(a.head().hash), bytes(b.head().hash)
        td_a = a.chain.get_score(split_a)
        td_b = b.chain.get_score(split_b)
    assert split_a != split_b and not canonical_has_tx(a, tx_b)  # really partitioned
    b_addr = sb.host.full_addrs()[0]
    sa.host.add_static_peer(b_addr)  # heal the partition
    wait_for(lambda: head(a) == head(b), timeout=180, what="convergence")
    with a.lock:
        final_td = a.chain.get_score(a.head().hash)
    assert final_td >= max(td_a, td_b)  # the heavier chain (or its extension) won
    # Both sides' transactions end up mined on the common chain: the loser's went back to
    # its pool and were gossiped again.
    wait_for(lambda: all(canonical_has_tx(n, t) for n in (a, b) for t in (tx_a, tx_b)),
             timeout=180, what="both transactions on the common chain")


def _governed_config(tmp: Path) -> Any:
    """The devnet (governance contracts in genesis) at difficulty 1 with 8-block epochs, its
    contracts asset rebuilt for that epoch length."""
    import json

    import build_genesis_contracts as bgc
    from poai.chain.config import DEFAULT_CONFIG, parse_genesis_config

    asset = tmp / "genesis_contracts.json"
    asset.write_text(bgc.render(bgc.build(overrides={"epoch_blocks": 8})))
    data = json.loads(DEFAULT_CONFIG.read_text())
    data.update(initialDifficulty=1, minDifficulty=1, genesisContracts=str(asset))
    data["quiz"]["epoch_blocks"] = 8
    return parse_genesis_config(data, DEFAULT_CONFIG.parent)


def test_sync_across_epoch_boundaries_of_a_governed_chain(make_node: NodeFactory,
                                                         tmp_path: Path) -> None:
    """Seals are checked ahead of their import, but on a governed chain an epoch's model is
    read from the state after its seed block, which is not stored yet when the next epoch's
    blocks are downloaded: those seals are checked under a guessed context (the epoch's own
    key, the last epoch's model), which stands once the seed is imported and the real context
    equals it; the sync goes on in one pass, every seal verified."""
    import dataclasses

    config = _governed_config(tmp_path)
    assert config.genesis_contracts is not None and config.quiz.epoch_blocks == 8
    length = 20  # epochs 0, 1 and 2: two boundaries (seed blocks #7 and #15)
    # Each node its own config object: sync reads governance through the source its own
    # Node registered for that object.
    a, sa = make_node(config=config)
    extend(a, length)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = records.append  # type: ignore[method-assign]
    sync_log = logging.getLogger("poai.p2p.sync")
    old_level = sync_log.level
    sync_log.setLevel(logging.DEBUG)
    sync_log.addHandler(handler)
    try:
        b, sb = make_node(config=dataclasses.replace(config), peers=sa.host.full_addrs(),
                          sync_batch=4)
        wait_for(lambda: head(b) == head(a), timeout=60, what="sync to the head")
    finally:
        sync_log.removeHandler(handler)
        sync_log.setLevel(old_level)
    lines = [r.getMessage() for r in records]
    assert not [r for r in records if r.levelno >= logging.WARNING], lines
    assert sum(line.startswith("sync: from peer") for line in lines) == 1, lines  # one pass
    assert any("guessed quiz context" in line for line in lines), lines  # boundary hit
    ancestor = int(next(x for x in lines if x.startswith("sync: from peer"))
                   .split("common ancestor #")[1].split(",")[0])  # gossip may bring #1 first
    assert ancestor < 7 and sb.syncer.blocks_imported == length - ancestor
    with a.lock, b.lock:
        cc = b.chain.consensus_context
        for n in range(ancestor + 1, length + 1):
            header = b.chain.get_canonical_block_header_by_number(n)
            assert header == a.chain.get_canonical_block_header_by_number(n)
            # Every seal was verified: by the verifier ahead of import (no losses kept) or by
            # the import itself (which keeps the losses).
            assert cc.verified_losses(header.hash) is not None, n
        # Epoch starts, checked under a guess before their seed was stored, by the verifier
        # (which keeps no losses): the guess was confirmed, not re-verified at import.
        for n in (8, 16):
            assert cc.verified_losses(b.chain.get_canonical_block_header_by_number(n).hash) == ()
        batch_checked = b.chain.get_canonical_block_header_by_number(ancestor + 2)
        assert cc.verified_losses(batch_checked.hash) == ()


def _serve_chain_with_a_forged_seal(node: Any, good_before: int, after: int) -> int:
    """The peer's canonical chain: `good_before` honest blocks, then one whose q values are
    two grid steps off its model's (a forged seal), then `after` honest blocks on top of it.
    Written the way a hostile node would serve it: the forged block is stored without its
    seal being checked.  Returns the forged block's number."""
    from poai.quiz.reduce import unpack_q
    from support.p2p_chainmaker import make_template, seal_template, with_mix

    extend(node, good_before)
    good = seal_template(node, make_template(node))
    qs = list(unpack_q(bytes(good.header.mix_hash), node.config.quiz.values))
    qs[1] += 2
    forged = with_mix(good, tuple(qs))  # difficulty 1: its loss hash still meets the target
    node.import_block(good)  # stores the state both share (the seal fields are not in it)
    with node.lock:
        node.chain.chaindb.persist_block(forged)  # same score as `good`: not canonical yet
        node.importer.buffer.flush()  # the hostile part: no seal check
    child = seal_template(node, make_template(node, parent=forged.header))
    node.import_block(child)  # greater total difficulty: the forged branch is canonical now
    extend(node, after - 1)
    return int(forged.number)


def test_a_forged_seal_mid_sync_stops_the_sync_there_and_penalises_the_peer(
        make_node: NodeFactory) -> None:
    """Seals are checked in chunks of several per forward pass, yet the bad one is named: the
    blocks before it are imported, it and the ones after are not, and the peer is scored down
    for exactly that offence."""
    from poai.p2p.peers import Offence

    a, sa = make_node()
    bad = _serve_chain_with_a_forged_seal(a, 9, 10)  # 20 blocks: the parallel verifier runs
    assert a.head().block_number == 20
    b, sb = make_node(peers=sa.host.full_addrs(), sync_batch=8)
    wait_for(lambda: sb.host.scores.score(sa.host.peer_id) < 0, timeout=120,
             what="the peer's score drop")
    assert sb.host.scores.last_offence(sa.host.peer_id) is Offence.WRONG_Q
    assert b.head().block_number == bad - 1
    with a.lock:
        expected = a.chain.get_canonical_block_header_by_number(bad - 1)
    assert b.head() == expected
