"""TxPool against a real py-evm Prague chain (tests/support/devnode.py) with real signed txs."""

from __future__ import annotations

import re
import threading

import pytest
from eth_account import Account
from poai.txpool.pool import (
    PoolLimits,
    TxPool,
    TxPoolError,
    TxRejection,
    decode_transaction,
    sender_of,
    verify_raw,
    verify_sender,
)
from support.devnode import ACCOUNTS, CHAIN_ID, FUNDS, DevNode, sign

GWEI = 10**9


def tx(node: DevNode, account: int = 0, **fields: object):
    return decode_transaction(node._builder, sign(account, **fields))


def sender(i: int) -> bytes:
    return bytes.fromhex(ACCOUNTS[i].address[2:])


@pytest.fixture
def node() -> DevNode:
    return DevNode()


def test_pending_and_queued_follow_the_nonce_gap(node: DevNode) -> None:
    pool = node.txpool
    pool.add(tx(node, nonce=0))
    pool.add(tx(node, nonce=2))
    assert pool.status() == {"pending": 1, "queued": 1}
    assert pool.pending_nonce(sender(0)) == 1
    pool.add(tx(node, nonce=1))  # fills the gap: everything becomes pending
    assert pool.status() == {"pending": 3, "queued": 0}
    assert pool.pending_nonce(sender(0)) == 3
    content = pool.content()
    assert sorted(content["pending"][sender(0)]) == [0, 1, 2]


def test_select_orders_by_nonce_per_sender_and_tip_across_senders(node: DevNode) -> None:
    pool = node.txpool
    pool.add(tx(node, 0, nonce=1, maxPriorityFeePerGas=5 * GWEI, maxFeePerGas=9 * GWEI))
    pool.add(tx(node, 0, nonce=0, maxPriorityFeePerGas=1 * GWEI))
    pool.add(tx(node, 1, nonce=0, maxPriorityFeePerGas=2 * GWEI))
    chosen = pool.select(base_fee=GWEI, gas_limit=30_000_000)
    order = [(t.sender, t.nonce) for t in chosen]
    assert order == [(sender(1), 0), (sender(0), 0), (sender(0), 1)]
    # gas limit bounds the selection
    assert len(pool.select(base_fee=GWEI, gas_limit=21000 * 2)) == 2


def test_select_counts_the_least_gas_a_transaction_can_use(node: DevNode) -> None:
    # Declared gas is an upper bound: the builder fits by gas used (as geth's miner), so a
    # block limit of 3 x 50,000 must not stop selection after three 50,000-gas transfers.
    pool = node.txpool
    for nonce in range(8):
        pool.add(tx(node, nonce=nonce, gas=50_000))
    assert len(pool.select(base_fee=GWEI, gas_limit=150_000)) == 150_000 // 21_000
    # calldata raises the intrinsic gas: 16 per non-zero byte
    other = DevNode().txpool
    other.add(tx(node, 1, nonce=0, gas=100_000, data="0x" + "ff" * 100))
    assert other.select(base_fee=GWEI, gas_limit=21_000 + 1_599) == []
    assert len(other.select(base_fee=GWEI, gas_limit=21_000 + 1_600)) == 1


def test_fee_cap_below_base_fee_stays_but_is_not_selected(node: DevNode) -> None:
    pool = node.txpool
    pool.add(tx(node, nonce=0, maxFeePerGas=2 * GWEI, maxPriorityFeePerGas=GWEI))
    assert pool.select(base_fee=5 * GWEI, gas_limit=30_000_000) == []
    assert pool.status()["pending"] == 1
    assert len(pool.select(base_fee=GWEI, gas_limit=30_000_000)) == 1


def test_fee_cap_below_the_next_base_fee_is_refused_and_moves_no_nonce(node: DevNode) -> None:
    # Issue 19: a max fee of 1 wei was admitted and the pending nonce moved past it. Refused
    # (as anvil) with geth's block-level message; the sender's later nonces stay unaffected.
    pool = node.txpool
    base_fee = pool._base_fee()
    assert base_fee is not None and base_fee > 1
    with pytest.raises(TxPoolError, match=re.escape(
            f"max fee per gas less than block base fee: address {ACCOUNTS[0].address}, "
            f"maxFeePerGas: 1, baseFee: {base_fee}")) as info:
        pool.add(tx(node, nonce=0, maxFeePerGas=1, maxPriorityFeePerGas=1))
    assert info.value.code == -32000
    with pytest.raises(TxPoolError, match="less than block base fee"):
        pool.add(tx(node, nonce=0, maxFeePerGas=base_fee - 1, maxPriorityFeePerGas=1))
    assert len(pool) == 0 and pool.pending_nonce(sender(0)) is None
    pool.add(tx(node, nonce=0, maxFeePerGas=base_fee, maxPriorityFeePerGas=1))  # exactly enough
    assert pool.pending_nonce(sender(0)) == 1


def test_tip_below_the_pool_minimum_is_refused_with_geths_message(node: DevNode) -> None:
    pool = node.txpool
    with pytest.raises(TxPoolError, match=re.escape(
            "transaction gas price below minimum: gas tip cap 0, minimum needed 1")):
        pool.add(tx(node, nonce=0, maxPriorityFeePerGas=0))
    strict = TxPool(CHAIN_ID, lambda: node.chain.get_vm(node.head()).state,
                    limits=PoolLimits(min_tip=GWEI))
    with pytest.raises(TxPoolError, match=f"gas tip cap {GWEI - 1}, minimum needed {GWEI}"):
        strict.add(tx(node, nonce=0, maxPriorityFeePerGas=GWEI - 1))
    strict.add(tx(node, nonce=0, maxPriorityFeePerGas=GWEI))
    assert len(pool) == 0 and len(strict) == 1


def test_replacement_needs_ten_percent_bump_of_both_fees(node: DevNode) -> None:
    pool = node.txpool
    first = pool.add(tx(node, nonce=0, maxFeePerGas=10 * GWEI, maxPriorityFeePerGas=2 * GWEI))
    with pytest.raises(TxPoolError, match="replacement transaction underpriced"):
        pool.add(tx(node, nonce=0, maxFeePerGas=11 * GWEI, maxPriorityFeePerGas=2 * GWEI,
                    value=1))
    with pytest.raises(TxPoolError, match="replacement transaction underpriced"):
        pool.add(tx(node, nonce=0, maxFeePerGas=10_900_000_000, maxPriorityFeePerGas=3 * GWEI,
                    value=1))
    second = pool.add(tx(node, nonce=0, maxFeePerGas=11 * GWEI,
                         maxPriorityFeePerGas=2_200_000_000, value=1))
    assert pool.get(first) is None and pool.get(second) is not None
    assert len(pool) == 1


@pytest.mark.parametrize("fields, message", [
    ({"nonce": 0, "gas": 20000}, "intrinsic gas too low"),
    ({"nonce": 0, "value": FUNDS}, "insufficient funds for gas * price + value"),
    ({"nonce": 0, "chainId": CHAIN_ID + 1}, "invalid chain id for signer"),
    ({"nonce": 0, "data": b"\x01" * (129 * 1024), "gas": 29_000_000}, "oversized data"),
    ({"nonce": 0, "maxPriorityFeePerGas": 5 * GWEI, "maxFeePerGas": GWEI},
     "max priority fee per gas higher than max fee per gas"),
    ({"nonce": 0, "gas": 40_000_000}, "exceeds block gas limit"),
])
def test_rejections_have_geth_messages(node: DevNode, fields: dict, message: str) -> None:
    with pytest.raises(TxPoolError, match=re.escape(message)) as info:
        node.txpool.add(tx(node, **fields))
    assert info.value.code == -32000
    assert len(node.txpool) == 0


def test_nonce_too_low_and_already_known(node: DevNode) -> None:
    raw = sign(0, nonce=0)
    node.submit_raw_transaction(raw)
    with pytest.raises(TxPoolError, match="already known"):
        node.submit_raw_transaction(raw)
    node.mine_block()
    with pytest.raises(TxPoolError, match="nonce too low: address .* tx: 0 state: 1"):
        node.txpool.add(tx(node, nonce=0, value=5))


def test_unprotected_and_bad_signature_and_bad_rlp(node: DevNode) -> None:
    legacy = Account.from_key(b"\x01" * 32).sign_transaction(
        {"nonce": 0, "gasPrice": 2 * GWEI, "gas": 21000, "to": "0x" + "22" * 20, "value": 0})
    with pytest.raises(TxPoolError, match="replay-protected"):
        node.submit_raw_transaction(bytes(legacy.raw_transaction))
    raw = bytearray(sign(0, nonce=0))
    raw[-5] ^= 0xFF  # corrupt s: the signature no longer recovers to a valid key (or any key)
    with pytest.raises(TxPoolError):
        node.submit_raw_transaction(bytes(raw))
    with pytest.raises(TxPoolError, match="rlp"):
        node.submit_raw_transaction(b"\x02\xc0\x01")
    with pytest.raises(TxPoolError, match="rlp"):
        node.submit_raw_transaction(b"\xf8\xff")
    with pytest.raises(TxPoolError, match="transaction type not supported: 0x12"):
        node.submit_raw_transaction(b"\x12\x34")  # an EIP-2718 type this chain does not have


def test_each_refusal_carries_the_reason_peer_scoring_reads(node: DevNode) -> None:
    def reason(raw: bytes) -> TxRejection:
        with pytest.raises(TxPoolError) as info:
            node.submit_raw_transaction(raw)
        return info.value.reason

    good = sign(0, nonce=0)
    assert reason(b"\xf8\xff") is TxRejection.MALFORMED
    assert reason(b"") is TxRejection.MALFORMED
    assert reason(b"\x12\x34") is TxRejection.POLICY  # a type another chain may have
    import rlp
    fields = list(rlp.decode(good[1:]))
    fields[-1] = b""  # s = 0
    assert reason(b"\x02" + rlp.encode(fields)) is TxRejection.BAD_SIGNATURE
    node.submit_raw_transaction(good)
    assert reason(good) is TxRejection.KNOWN
    node.mine_block()
    assert reason(sign(0, nonce=0, value=5)) is TxRejection.POLICY  # nonce too low


def test_signature_over_zero_s_is_invalid_sender(node: DevNode) -> None:
    import rlp
    good = tx(node, nonce=0)
    fields = list(rlp.decode(sign(0, nonce=0)[1:]))
    fields[-1] = b""  # s = 0
    with pytest.raises(TxPoolError, match="invalid sender"):
        node.submit_raw_transaction(b"\x02" + rlp.encode(fields))
    assert good.sender == sender(0)


def test_account_and_global_limits_evict_cheapest(node: DevNode) -> None:
    pool = TxPool(CHAIN_ID, lambda: node.chain.get_vm(node.head()).state,
                  limits=PoolLimits(global_slots=3, account_slots=2))
    pool.add(tx(node, 0, nonce=0))
    pool.add(tx(node, 0, nonce=1))
    with pytest.raises(TxPoolError, match="account limit exceeded"):
        pool.add(tx(node, 0, nonce=2))
    cheap = pool.add(tx(node, 1, nonce=0, maxFeePerGas=2 * GWEI))
    with pytest.raises(TxPoolError, match="transaction underpriced"):
        pool.add(tx(node, 2, nonce=0, maxFeePerGas=2 * GWEI))  # pool full, not better
    rich = pool.add(tx(node, 2, nonce=0, maxFeePerGas=9 * GWEI))
    assert pool.get(cheap) is None and pool.get(rich) is not None
    assert len(pool) == 3


def test_new_head_removes_included_and_readds_dropped(node: DevNode) -> None:
    node.submit_raw_transaction(sign(0, nonce=0))
    node.submit_raw_transaction(sign(0, nonce=1))
    block = node.mine_block()
    assert len(block.transactions) == 2 and len(node.txpool) == 0
    # A reorg back to genesis: the block's transactions return to the pool.
    genesis = node.chain.get_canonical_block_header_by_number(0)
    node.chain.header = node.chain.create_header_from_parent(genesis)
    side = node.chain.mine_all([], parent_header=genesis)[0].imported_block.header
    fork = node.chain.mine_all([], parent_header=side)
    assert node.head().block_number == 2 and fork[0].imported_block is not None
    assert node.chain.get_vm(node.head()).state.get_nonce(sender(0)) == 0
    node.txpool.on_new_head([], list(block.transactions))
    assert node.txpool.status() == {"pending": 2, "queued": 0}


def test_head_state_is_built_once_per_head(node: DevNode) -> None:
    built = []

    def state_at_head():  # the Node's callable, counted
        built.append(node.head().hash)
        return node.chain.get_vm(node.head()).state

    node.txpool = pool = TxPool(CHAIN_ID, state_at_head)
    for n in range(3):
        pool.add(tx(node, nonce=n))
    assert pool.status() == {"pending": 3, "queued": 0} and pool.pending_nonce(sender(0)) == 3
    assert len(built) == 1
    block = node.mine_block()  # calls pool.on_new_head
    assert len(block.transactions) == 3 and len(pool) == 0
    assert built[-1] == block.hash  # the new head's state replaced the old one
    with pytest.raises(TxPoolError, match="nonce too low: .* tx: 2 state: 3"):
        pool.add(tx(node, nonce=2, value=9))
    pool.add(tx(node, nonce=3))
    assert len(built) == 2


def test_add_without_node_lock_and_new_head_under_it_do_not_deadlock(node: DevNode) -> None:
    # As in poai.node: state_at_head takes Node.lock, and on_new_head is called under it,
    # while P2P gossip calls add without it.
    def state_at_head():
        with node.lock:
            return node.chain.get_vm(node.head()).state

    node.txpool = pool = TxPool(CHAIN_ID, state_at_head)
    errors: list[BaseException] = []

    def gossip() -> None:
        try:
            for n in range(40):
                pool.add(tx(node, 1, nonce=n))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    thread = threading.Thread(target=gossip, daemon=True)
    thread.start()
    for _ in range(8):
        with node.lock:
            node.mine_block()
    thread.join(30)
    assert not thread.is_alive(), "add() and on_new_head() deadlocked"
    assert errors == [] or all("nonce too low" in str(e) for e in errors)


def test_decoding_and_signature_checks_are_reused_not_trusted_blindly(node: DevNode) -> None:
    raw = sign(0, nonce=0)
    verify_raw(node._builder, raw)  # what the RPC server does before taking the lock
    decoded = decode_transaction(node._builder, raw)
    assert decode_transaction(node._builder, raw) is decoded
    assert verify_sender(decoded) == sender(0) == sender_of(decoded)
    import rlp
    fields = list(rlp.decode(raw[1:]))
    fields[-1] = b""  # s = 0: no key recovers
    bad = b"\x02" + rlp.encode(fields)
    verify_raw(node._builder, bad)  # a failure is not remembered as a success
    with pytest.raises(TxPoolError, match="invalid sender"):
        node.txpool.add(decode_transaction(node._builder, bad))
    verify_raw(node._builder, b"\x02\xc0\x01")  # errors are left for the locked call
    with pytest.raises(TxPoolError, match="rlp"):
        decode_transaction(node._builder, b"\x02\xc0\x01")
    assert node.txpool.add(decoded) == decoded.hash


def test_high_s_twin_of_a_valid_signature_is_rejected(node: DevNode) -> None:
    # (r, n - s, 1 - yParity) recovers the same sender: EIP-2 (and geth) refuse it.
    import rlp
    from poai.txpool.pool import SECP256K1_N
    fields = list(rlp.decode(sign(0, nonce=0)[1:]))
    s = int.from_bytes(fields[-1], "big")
    fields[-1] = (SECP256K1_N - s).to_bytes(32, "big")
    fields[-3] = b"" if fields[-3] == b"\x01" else b"\x01"
    twin = decode_transaction(node._builder, b"\x02" + rlp.encode(fields))
    assert twin.sender == sender(0)  # py-evm alone would take it
    with pytest.raises(TxPoolError, match="invalid sender"):
        node.txpool.add(twin)
    assert node.txpool.add(tx(node, nonce=0)) is not None


def test_add_reads_the_state_again_when_the_head_moves_meanwhile(node: DevNode) -> None:
    # Admission runs without Node.lock: a block may be adopted between the pool reading the
    # head's state and taking its own lock. The transaction must then be judged on the new head.
    race = True

    def state_at_head():
        nonlocal race
        state = node.chain.get_vm(node.head()).state
        if race:  # meanwhile another path mines nonce 0 and the node tells the pool
            race = False
            node.txpool.add(tx(node, nonce=0))
            block = node.mine_block()
            pool.on_new_head(block.transactions)
        return state

    pool = TxPool(CHAIN_ID, state_at_head)
    with pytest.raises(TxPoolError, match="nonce too low: .* tx: 0 state: 1"):
        pool.add(tx(node, nonce=0, value=7))
    assert len(pool) == 0 and node.head().block_number == 1
    pool.add(tx(node, nonce=1))


def test_an_empty_pool_reads_no_state_on_a_new_head(node: DevNode) -> None:
    """Empty-block sync imports call on_new_head for every block: an empty pool has nothing
    to prune, so it reads the head's state only when a transaction comes."""
    built = []

    def state_at_head():
        built.append(node.head().hash)
        return node.chain.get_vm(node.head()).state

    node.txpool = pool = TxPool(CHAIN_ID, state_at_head)
    for _ in range(3):
        node.mine_block()  # an empty block (its build reads the pool's state once)
        built.clear()
        pool.on_new_head([], [])  # what an import does
        assert built == []
    pool.add(tx(node, nonce=0))
    assert built == [node.head().hash]  # the state of the head it was judged against


def test_recover_sender_is_py_evms_extract_transaction_sender() -> None:
    """The direct libsecp256k1 recovery gives py-evm's answer for every transaction type this
    chain takes, and fails where py-evm's does (a tampered signature)."""
    import random

    from eth._utils.transactions import extract_transaction_sender
    from eth.vm.forks.prague.transactions import PragueTransactionBuilder
    from poai.txpool.pool import recover_sender

    rng = random.Random(3)
    base = {"nonce": 5, "gas": 50_000, "to": "0x" + "22" * 20, "value": 7, "data": "0x1234"}
    shapes = [
        {"gasPrice": 2 * GWEI, "chainId": CHAIN_ID},  # legacy, EIP-155
        {"gasPrice": 2 * GWEI, "chainId": CHAIN_ID, "type": 1,
         "accessList": [{"address": "0x" + "33" * 20, "storageKeys": ["0x" + "00" * 32]}]},
        {"maxFeePerGas": 3 * GWEI, "maxPriorityFeePerGas": GWEI, "chainId": CHAIN_ID,
         "type": 2},
    ]
    checked = 0
    for _ in range(40):
        acct = Account.from_key(rng.randbytes(32))
        for shape in shapes:
            raw = bytes(acct.sign_transaction({**base, **shape}).raw_transaction)
            tx = PragueTransactionBuilder.decode(raw)
            assert recover_sender(tx) == extract_transaction_sender(tx) == bytes.fromhex(
                acct.address[2:])
            bad = bytearray(raw)
            bad[-2] ^= 0x01  # inside s
            tampered = PragueTransactionBuilder.decode(bytes(bad))
            try:
                theirs: bytes | None = extract_transaction_sender(tampered)
            except Exception:  # noqa: BLE001 - py-evm's error types vary
                theirs = None
            try:
                ours: bytes | None = recover_sender(tampered)
            except Exception:  # noqa: BLE001
                ours = None
            assert ours == theirs  # another key, or none at all, on both sides
            checked += 1
    assert checked == 120
