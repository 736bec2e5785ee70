"""The Node service: data dir handling, restart, import with fork choice and reorgs, mining."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from eth.abc import BlockHeaderAPI
from poai.chain.config import ChainConfig
from poai.chain.devaccounts import dev_accounts
from poai.datadir import DatadirError
from poai.db.leveldb import LevelDB
from poai.node import NewHead, NewPendingTx, Node, NodeEvent
from poai.quiz.seal import verify_seal
from support.poai_tiny import mine_on, signed_transfers, tiny_config

ACCTS = dev_accounts()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> ChainConfig:
    return tiny_config(tmp_path_factory.mktemp("node-assets"))


def test_restart_resumes_from_the_stored_head(config: ChainConfig, tmp_path: Path) -> None:
    node = Node(tmp_path, config)
    node.start()
    genesis = node.head()
    head = genesis
    for _ in range(3):
        head = node.import_block(mine_on(node.chain, head, persist=False)).block.header
    node.stop()
    again = Node(tmp_path, config)
    again.start()
    assert again.head() == head
    assert again.chain.get_canonical_block_header_by_number(0) == genesis  # type: ignore[arg-type]
    again.stop()


def test_datadir_of_another_chain_is_refused(config: ChainConfig, tmp_path: Path) -> None:
    node = Node(tmp_path, config)
    node.start()
    node.stop()
    other = tiny_config(tmp_path / "other-assets", chain_id=7338)
    with pytest.raises(DatadirError, match="belongs to chain 7337"):
        Node(tmp_path, other).start()


def test_foreign_or_locked_datadir_is_refused(config: ChainConfig, tmp_path: Path) -> None:
    foreign = LevelDB(tmp_path / "foreign" / "chaindata")
    foreign[b"something"] = b"else"
    foreign.close()
    with pytest.raises(DatadirError, match="no PoAI chain marker"):
        Node(tmp_path / "foreign", config).start()
    node = Node(tmp_path / "mine", config)
    node.start()
    try:
        with pytest.raises(DatadirError, match="in use"):
            Node(tmp_path / "mine", config).start()
    finally:
        node.stop()


def test_reorg_returns_dropped_transactions_to_the_pool(
    config: ChainConfig, tmp_path: Path
) -> None:
    from poai.rpc.context import RpcContext

    node = Node(tmp_path, config)
    node.start()
    events: list[NodeEvent] = []
    node.add_listener(events.append)
    rpc = RpcContext(node, client_version="test")  # its transaction locations follow reorgs
    node.add_listener(rpc.on_node_event)
    try:
        genesis = node.head()
        raw = signed_transfers(config.chain_id, ACCTS[0].private_key, ACCTS[1].address, 1)[0]
        tx_hash = node.submit_raw_transaction(raw)
        assert isinstance(events[-1], NewPendingTx) and events[-1].tx_hash == tx_hash
        txs = node.txpool.select(10**9, config.gas_limit)
        assert [t.hash for t in txs] == [tx_hash]
        a1 = mine_on(node.chain, genesis, txs, persist=False)
        res = node.import_block(a1)
        assert res.is_new_head and node.txpool.get(tx_hash) is None  # included: left the pool
        assert isinstance(events[-1], NewHead) and events[-1].block.hash == a1.hash
        assert events[-1].receipts[0].gas_used == 21000
        a2 = mine_on(node.chain, a1.header, persist=False)
        node.import_block(a2)  # branch A: TD 1 + 1 + 1
        found = rpc.locate_transaction(tx_hash)
        assert found is not None and (found[0].hash, found[1]) == (a1.hash, 0)
        assert rpc.locate_transaction(tx_hash) == found  # now from the cache

        # A heavier branch without the transaction: fast blocks (difficulty 2, then 3).
        b1 = mine_on(node.chain, genesis, gap=1, persist=False)
        assert not node.import_block(b1).is_new_head  # TD 1 + 2: a tie keeps the first seen
        assert node.head().hash == a2.hash
        b2 = mine_on(node.chain, b1.header, gap=1, persist=False)
        res = node.import_block(b2)  # TD 1 + 2 + 3: reorg
        assert [b.hash for b in res.removed] == [a1.hash, a2.hash]
        assert [b.hash for b in res.new_canonical] == [b1.hash, b2.hash]
        assert node.head().hash == b2.hash
        ev = events[-1]
        assert isinstance(ev, NewHead) and [b.hash for b in ev.removed_blocks] == [a1.hash, a2.hash]
        assert node.txpool.get(tx_hash) is not None  # back in the pool
        assert rpc.locate_transaction(tx_hash) is None  # the reorg dropped the cached location
        assert node.import_block(b2).already_known
    finally:
        node.stop()


def test_invalid_block_is_rejected_and_leaves_no_trace(config: ChainConfig, tmp_path: Path) -> None:
    from eth_utils.exceptions import ValidationError

    node = Node(tmp_path, config)
    node.start()
    try:
        genesis = node.head()
        good = mine_on(node.chain, genesis, persist=False)
        bad = good.copy(header=good.header.copy(state_root=b"\x13" * 32))
        with pytest.raises(ValidationError):
            node.import_block(bad)
        assert node.head() == genesis
        assert node.import_block(good).is_new_head
    finally:
        node.stop()


def test_mining_node_mines_pool_transactions(config: ChainConfig, tmp_path: Path) -> None:
    node = Node(tmp_path, config, mine=True, miner_workers=1, coinbase=ACCTS[5].address)
    heads: list[NewHead] = []
    new_head = threading.Event()

    def on_event(ev: NodeEvent) -> None:
        if isinstance(ev, NewHead):
            heads.append(ev)
            new_head.set()

    node.add_listener(on_event)
    node.start()
    try:
        for raw in signed_transfers(config.chain_id, ACCTS[0].private_key, ACCTS[1].address, 5):
            node.submit_raw_transaction(raw)
        # The transfers may land in one block or several (a template can be built while they
        # arrive); wait until all five are mined.  Generous bound: worker start-up is slow on a
        # loaded machine.
        deadline = time.monotonic() + 300
        while node.state_at_head().get_nonce(ACCTS[0].address) < 5:
            assert time.monotonic() < deadline, "the transfers were not mined in time"
            new_head.wait(1.0)
            new_head.clear()
        assert sum(len(ev.block.transactions) for ev in heads) == 5
        stats = node.mining_stats()
        assert stats.mining and stats.blocks_mined >= 1 and stats.last_seals
        seal = stats.last_seals[0]
        header = node.chain.get_block_header_by_hash(seal.block_hash)
        assert len(seal.q) == config.quiz.values and header.difficulty == seal.difficulty
        # Every mined block carries a seal that an independent check accepts, and no block is
        # stamped ahead of the clock.
        from poai.consensus.seal_hash import seal_hash

        head = node.head()
        assert head.timestamp <= time.time() + 1
        h = head
        while h.block_number > 0:
            verify_seal(node.quiz_context(h), seal_hash(h), int.from_bytes(h.nonce, "big"),
                        h.mix_hash, h.difficulty)
            h = node.chain.get_block_header_by_hash(h.parent_hash)
    finally:
        node.stop()
    assert node.mining_stats().mining is False


def test_devnet_node_reads_the_quiz_from_governance(tmp_path: Path) -> None:
    """A node on the devnet genesis: contracts at their addresses, the epoch's quiz from
    ModelRegistry / DatasetDAO (genesis snapshot and dataset), read through the node's own
    stores, for mining and for seal checks whose ancestry runs through headers not stored yet
    (P2P sync, `validate_seal_extension`)."""
    import dataclasses

    from poai.chain.config import load_genesis_config
    from poai.chain.governed import SeedStateUnavailable
    from poai.governance.contracts import load_genesis_contracts
    from support.poai_tiny import seal_in_process

    devnet = dataclasses.replace(load_genesis_config(), initial_difficulty=1)
    node = Node(tmp_path, devnet)
    assert node.contracts == load_genesis_contracts().addresses
    assert node.blob_store.root == tmp_path / "blobs"
    node.start()
    try:
        # A fresh data dir's chain object carries the node's source (not a scratch one).
        assert node.chain.epoch_assets is node.epoch_assets
        ctx = node.current_quiz()
        assert (ctx.manifest_hash, ctx.dataset_path) == (
            devnet.model_manifest, str(devnet.dataset.path))
        consensus = node.chain.consensus_context
        pending = node.build_template([])
        assert consensus.quiz_for(pending.template.header) == pending.quiz == ctx
        block = seal_in_process(node.chain, pending.template)
        res = node.commit_block(pending, int.from_bytes(block.header.nonce, "big"),
                                block.header.mix_hash)
        assert res is not None and res.is_new_head
        assert node.epoch_assets is not None
        assert node.epoch_assets.cached(node.chain.get_canonical_block_hash(0)) is not None
        # A block of the next epoch whose seed is known only as a header (a sync batch): its
        # epoch key is found through `parents`, but the seed's state is not stored, so its
        # quiz is refused, not judged with the previous epoch's assets.
        eb = devnet.quiz.epoch_blocks
        cur = node.head()
        seed_number = (cur.block_number // eb + 2) * eb - 1  # the next epoch's seed, unstored
        unstored: dict[bytes, BlockHeaderAPI] = {}
        while cur.block_number < seed_number:
            cur = cur.copy(parent_hash=cur.hash, block_number=cur.block_number + 1,
                           timestamp=cur.timestamp + 1)
            unstored[bytes(cur.hash)] = cur
        child = cur.copy(parent_hash=cur.hash, block_number=seed_number + 1,
                         timestamp=cur.timestamp + 1)
        assert consensus.seed_of(child, unstored) == cur
        with pytest.raises(SeedStateUnavailable):
            consensus.quiz_for(child, unstored)
    finally:
        node.stop()


class _FrozenClock:
    """time for poai.producer and poai.chain.vm with a fixed wall clock (drafts are usable only
    within their timestamp's second); monotonic time and waits stay real."""

    def __init__(self, now: float) -> None:
        self.now = now
        self.monotonic = time.monotonic
        self.sleep = time.sleep

    def time(self) -> float:
        return self.now


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> _FrozenClock:
    import poai.chain.vm
    import poai.producer

    clock = _FrozenClock(float(int(time.time())))
    monkeypatch.setattr(poai.producer, "time", clock)
    monkeypatch.setattr(poai.chain.vm, "time", clock)
    return clock


def test_draft_is_filled_while_rpc_is_idle_and_becomes_the_block(
    config: ChainConfig, tmp_path: Path, frozen: _FrozenClock
) -> None:
    from poai.producer import DRAFT_STEP_TXS

    node = Node(tmp_path, config)
    node.start()
    try:
        raws = signed_transfers(config.chain_id, ACCTS[0].private_key, ACCTS[1].address,
                                2 * DRAFT_STEP_TXS + 3)
        hashes = [node.submit_raw_transaction(r) for r in raws]
        parent = node.head()
        # RPC busy (a request "just now", for the whole wait): nothing is drafted.
        node.producer._last_activity = time.monotonic() + 60
        node.producer._draft_until(parent, time.monotonic() + 0.2)
        assert node.producer._draft is None
        node.note_activity()  # a real request: drafting resumes DRAFT_IDLE_S later
        # Idle: the whole pool is drafted, step by step.
        node.producer._draft_until(parent, time.monotonic() + 1.0)
        draft = node.producer._draft
        assert draft is not None and draft.draft.applied_hashes == set(hashes)
        pending = node.build_template()
        assert node.producer._draft is None and draft.draft._finished  # the draft became the block
        assert [tx.hash for tx in pending.template.block.transactions] == hashes
    finally:
        node.stop()


def test_draft_with_a_replaced_transaction_is_rebuilt(
    config: ChainConfig, tmp_path: Path, frozen: _FrozenClock
) -> None:
    node = Node(tmp_path, config)
    node.start()
    try:
        first = signed_transfers(config.chain_id, ACCTS[0].private_key, ACCTS[1].address, 1)[0]
        old_hash = node.submit_raw_transaction(first)
        node.producer._draft_until(node.head(), time.monotonic() + 0.3)
        draft = node.producer._draft
        assert draft is not None and old_hash in draft.draft.applied_hashes
        bump = signed_transfers(config.chain_id, ACCTS[0].private_key, ACCTS[1].address, 1,
                                tip=2 * 10**9, max_fee=2 * 10**11)[0]
        new_hash = node.submit_raw_transaction(bump)  # replaces nonce 0 (fee bump)
        stale = node.producer._draft
        pending = node.build_template()
        assert not stale.draft._finished  # not used: it holds the replaced transaction
        assert [tx.hash for tx in pending.template.block.transactions] == [new_hash]
        # A draft on an old head is not used either.
        node.producer._draft_until(node.head(), time.monotonic() + 0.3)
        assert node.producer._draft is not None
        node.importer.head_version += 1
        assert not node.producer._draft_usable(node.producer._draft)
        # Nor one whose second has passed.
        node.importer.head_version -= 1
        assert node.producer._draft_usable(node.producer._draft)
        frozen.now += 5
        assert not node.producer._draft_usable(node.producer._draft)
    finally:
        node.stop()


def test_import_recovers_the_senders_of_a_peers_block(config: ChainConfig, tmp_path: Path
                                                      ) -> None:
    """A block decoded from the wire carries no senders: import recovers them (fast path)
    into py-evm's cache, the same addresses py-evm finds (bad signatures in peers' blocks:
    tests/p2p/test_hostile.py)."""
    import rlp

    node = Node(tmp_path, config)
    node.start()
    try:
        txb = node.chain.get_vm().get_transaction_builder()
        raws = signed_transfers(config.chain_id, ACCTS[0].private_key, ACCTS[1].address, 3)
        block = mine_on(node.chain, node.head(), [txb.decode(r) for r in raws], persist=False)
        fresh = rlp.decode(rlp.encode(block), sedes=type(block))
        assert all("sender" not in tx.__dict__ for tx in fresh.transactions)
        assert node.import_block(fresh).is_new_head
        assert [tx.__dict__["sender"] for tx in fresh.transactions] == [ACCTS[0].address] * 3
    finally:
        node.stop()


def test_a_peers_block_with_an_unrecoverable_signature_is_rejected(
    config: ChainConfig, tmp_path: Path
) -> None:
    """A correctly sealed block whose transaction's signature recovers no key (s above the
    curve order): the sender cannot be recovered, the block is invalid, nothing is stored."""
    import rlp
    from eth_utils.exceptions import ValidationError
    from poai.chain.builder import BlockTemplate
    from poai.chain.ordered_trie import make_trie_root_and_nodes
    from poai.consensus.seal_hash import seal_hash
    from support.poai_tiny import seal_in_process

    node = Node(tmp_path, config)
    node.start()
    try:
        txb = node.chain.get_vm().get_transaction_builder()
        raw = signed_transfers(config.chain_id, ACCTS[0].private_key, ACCTS[1].address, 1)[0]
        good = mine_on(node.chain, node.head(), [txb.decode(raw)], persist=False)
        fields = rlp.decode(raw[1:])
        fields[-1] = b"\xff" * 32
        bad_tx = txb.decode(raw[:1] + rlp.encode(fields))
        root, _ = make_trie_root_and_nodes((bad_tx,))
        header = good.header.copy(transaction_root=root)
        block = good.copy(header=header, transactions=(bad_tx,))
        sealed = seal_in_process(node.chain, BlockTemplate(block, (), seal_hash(header), []))
        head = node.head()
        with pytest.raises((ValidationError, ValueError)):
            node.import_block(rlp.decode(rlp.encode(sealed), sedes=type(sealed)))
        assert node.head() == head
        assert not node.chain.chaindb.header_exists(sealed.hash)
    finally:
        node.stop()


def test_a_block_waits_only_for_a_burst_of_transactions(config: ChainConfig,
                                                        tmp_path: Path) -> None:
    from poai.producer import BUSY_DEFER_S

    node = Node(tmp_path, config)
    node.start()
    try:
        node.note_activity()  # reads and polls: no wait at all
        assert node.producer._wait_for_burst_end() < 0.01
        stop = threading.Event()

        raws = signed_transfers(config.chain_id, ACCTS[2].private_key, ACCTS[1].address, 400)

        def burst() -> None:  # a transaction every ~2 ms for longer than the cap
            for raw in raws:
                if stop.is_set():
                    return
                node.submit_raw_transaction(raw)
                time.sleep(0.002)

        t = threading.Thread(target=burst)
        t.start()
        time.sleep(0.05)
        waited = node.producer._wait_for_burst_end()
        stop.set()
        t.join()
        assert BUSY_DEFER_S * 0.9 <= waited < BUSY_DEFER_S + 0.2  # capped, not indefinite
        assert node.producer._wait_for_burst_end() < 0.05  # the burst is over
    finally:
        node.stop()


def test_a_network_that_cannot_start_stops_the_node_with_one_clear_error(
    config: ChainConfig, tmp_path: Path
) -> None:
    from poai.node import NetworkStartError

    class _PortTaken:  # a network whose start fails as a bound port does
        def __init__(self, node: Node) -> None:
            self.node = node

        def start(self) -> None:
            raise OSError(98, "Address already in use")

    node = Node(tmp_path, config, network=_PortTaken)  # type: ignore[arg-type]
    with pytest.raises(NetworkStartError, match="cannot start the network: .*already in use"):
        node.start()
    assert node.network is None
    again = Node(tmp_path, config)  # the data dir was closed: not locked any more
    again.start()
    try:
        assert again.head().block_number == 0
    finally:
        again.stop()


def test_local_transactions_survive_a_restart_gossiped_ones_do_not(
    config: ChainConfig, tmp_path: Path
) -> None:
    """The journal (geth's transactions.rlp): what this node's clients sent is pooled again
    after a restart, pending and queued alike; a mined one, or one gossiped by a peer, is not."""
    node = Node(tmp_path, config)
    node.start()
    mined, pending = signed_transfers(config.chain_id, ACCTS[0].private_key,
                                      ACCTS[1].address, 2)
    queued = signed_transfers(config.chain_id, ACCTS[0].private_key, ACCTS[1].address, 1,
                              start_nonce=5)[0]
    gossiped = signed_transfers(config.chain_id, ACCTS[2].private_key, ACCTS[1].address, 1)[0]
    try:
        h_mined, h_pending, h_queued = (node.submit_raw_transaction(r)
                                        for r in (mined, pending, queued))
        h_gossiped = node.submit_raw_transaction(gossiped, local=False)
        first = node.txpool.get(h_mined)
        assert first is not None
        node.import_block(mine_on(node.chain, node.head(), [first], persist=False))
        assert node.txpool.get(h_mined) is None
    finally:
        node.stop()
    again = Node(tmp_path, config)
    again.start()
    try:
        assert again.txpool.get(h_pending) is not None
        assert again.txpool.get(h_queued) is not None
        assert again.txpool.get(h_mined) is None and again.txpool.get(h_gossiped) is None
        assert again.txpool.status() == {"pending": 1, "queued": 1}
    finally:
        again.stop()
    # Only what was still pooled was kept; a node without a journal pools nothing again.
    assert again.journal is not None and again.journal.load() == ([pending, queued], None)
    bare = Node(tmp_path, config, journal=False)
    bare.start()
    try:
        assert bare.txpool.status() == {"pending": 0, "queued": 0}
    finally:
        bare.stop()


def test_a_damaged_journal_costs_only_its_damaged_tail(
    config: ChainConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = Node(tmp_path, config)
    node.start()
    raws = signed_transfers(config.chain_id, ACCTS[0].private_key, ACCTS[1].address, 3)
    try:
        for raw in raws:
            node.submit_raw_transaction(raw)
        assert node.journal is not None
        path = node.journal.path
    finally:
        node.producer.stop()  # a crash: no rewrite at stop
        node.journal.close()
        node.journal = None
        node.stop()
    path.write_bytes(path.read_bytes()[:-4])  # the last record torn, as a crash may leave it
    again = Node(tmp_path, config)
    with caplog.at_level("WARNING", logger="poai.node"):
        again.start()
    try:
        assert "cut short" in caplog.text
        assert again.txpool.status() == {"pending": 2, "queued": 0}
    finally:
        again.stop()
