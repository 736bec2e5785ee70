"""What the per-block caches must not change: calls follow the head and leave no trace, receipts
served one by one equal the block's, and lock-free methods answer while Node.lock is busy."""

from __future__ import annotations

import threading
import time

from eth_utils import function_signature_to_4byte_selector
from support.devnode import ACCOUNTS, DevNode, sign
from support.rpcclient import Rpc, ServerThread, deploy

A0, A1 = ACCOUNTS[0].address, ACCOUNTS[1].address


def sel(sig: str) -> str:
    return "0x" + function_signature_to_4byte_selector(sig).hex()


def test_calls_follow_the_head_and_leave_no_trace(rpc: Rpc, node: DevNode) -> None:
    address, _ = deploy(rpc, node)
    count = {"to": address, "data": sel("count()")}
    inc = {"from": A1, "to": address, "data": sel("increment()"), "gas": "0x186a0"}
    for expected in range(3):
        assert int(rpc.call("eth_call", count, "latest"), 16) == expected
        assert int(rpc.call("eth_call", count, "latest"), 16) == expected  # the same call again
        # A state-changing call runs against the kept state: it must be undone afterwards.
        for _ in range(2):
            assert rpc.call("eth_call", inc, "latest") == "0x"
        assert int(rpc.call("eth_call", count, "latest"), 16) == expected
        assert int(rpc.call("eth_call", {**count, "from": A1}, "latest"), 16) == expected
        estimate = int(rpc.call("eth_estimateGas", inc), 16)
        nonce = int(rpc.call("eth_getTransactionCount", A1, "pending"), 16)
        tx_hash = rpc.call("eth_sendRawTransaction", "0x" + sign(1, nonce=nonce, to=address,
                                                                   data=sel("increment()"),
                                                                   gas=100_000).hex())
        node.mine_block()
        used = int(rpc.call("eth_getTransactionReceipt", tx_hash)["gasUsed"], 16)
        assert used <= estimate < used * 1.1  # estimated on the kept state of the last head
    assert int(rpc.call("eth_call", count, "latest"), 16) == 3
    assert int(rpc.call("eth_call", count, "0x1"), 16) == 0  # an older block's state
    # A revert answered twice (the second time from the result cache) is the same error.
    fail = {"to": address, "data": sel("fail()")}
    first, second = (rpc.request("eth_call", fail, "latest")["error"] for _ in range(2))
    assert first == second and first["code"] == 3 and first["data"].startswith("0x08c379a0")


def test_receipts_one_by_one_equal_the_blocks(rpc: Rpc, node: DevNode) -> None:
    address, _ = deploy(rpc, node)
    hashes = []
    for i in range(3):
        for account, nonce in ((0, 1 + i), (1, i)):
            raw = sign(account, nonce=nonce, to=address, data=sel("increment()"), gas=100_000)
            hashes.append(rpc.call("eth_sendRawTransaction", "0x" + raw.hex()))
        if i == 1:
            node.mine_block()  # two blocks: the cache is per block
    node.mine_block()
    singles = [rpc.call("eth_getTransactionReceipt", h) for h in hashes]
    assert [r["transactionHash"] for r in singles] == hashes
    blocks = sorted({r["blockNumber"] for r in singles})
    assert len(blocks) == 2
    for number in blocks:
        whole = rpc.call("eth_getBlockReceipts", number)
        assert whole == sorted((r for r in singles if r["blockNumber"] == number),
                               key=lambda r: int(r["transactionIndex"], 16))
        assert [lg["logIndex"] for r in whole for lg in r["logs"]] == [
            hex(i) for i in range(len(whole))]
        assert {r["from"] for r in whole} == {A0, A1}
    by_log = rpc.call("eth_getLogs", {"fromBlock": blocks[0], "toBlock": blocks[-1]})
    in_chain_order = sorted(singles, key=lambda r: (int(r["blockNumber"], 16),
                                                    int(r["transactionIndex"], 16)))
    assert [lg["transactionHash"] for lg in by_log] == [
        r["transactionHash"] for r in in_chain_order]


def test_lock_free_methods_answer_while_the_node_lock_is_held(rpc: Rpc, node: DevNode,
                                                              server: ServerThread) -> None:
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with node.lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(5)
        started = time.monotonic()
        assert rpc.call("eth_chainId") == hex(31337)
        assert rpc.call("net_version") == "31337"
        # eth_sendRawTransaction's decoding before the lock needs only the (single) VM's builder
        assert server.server.ctx.transaction_builder() is node._builder
        assert time.monotonic() - started < 3  # not behind the 10 s hold
        answer: dict[str, object] = {}
        reader = threading.Thread(
            target=lambda: answer.update(v=rpc.call("eth_getBalance", A0, "latest")))
        reader.start()
        reader.join(0.5)
        assert reader.is_alive()  # chain reads wait for the lock
        release.set()
        reader.join(10)
        assert int(str(answer["v"]), 16) > 0
    finally:
        release.set()
        holder.join(10)


def test_head_events_are_skipped_only_without_listeners(rpc: Rpc, server: ServerThread
                                                        ) -> None:
    assert not server.server.filters._heads_wanted()
    rpc.call("eth_newPendingTransactionFilter")
    assert not server.server.filters._heads_wanted()  # pending filters need no block work
    fid = rpc.call("eth_newBlockFilter")
    assert server.server.filters._heads_wanted()
    assert rpc.call("eth_uninstallFilter", fid) is True
    assert not server.server.filters._heads_wanted()
