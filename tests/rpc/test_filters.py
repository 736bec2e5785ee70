"""Polling filters, eth_getLogs criteria and WebSocket subscriptions."""

from __future__ import annotations

import asyncio
import json

import aiohttp
from eth_utils import function_signature_to_4byte_selector, keccak, to_checksum_address
from support.contract import counter
from support.devnode import ACCOUNTS, DevNode, sign
from support.rpcclient import Rpc, ServerThread

TOPIC = "0x" + keccak(text="Incremented(address,uint256)").hex()
INC = "0x" + function_signature_to_4byte_selector("increment()").hex()


def test_block_pending_and_log_filters(rpc: Rpc, node: DevNode) -> None:
    blocks = rpc.call("eth_newBlockFilter")
    pending = rpc.call("eth_newPendingTransactionFilter")
    logs = rpc.call("eth_newFilter", {"topics": [TOPIC]})
    h0 = rpc.call("eth_sendRawTransaction", "0x" + sign(
        0, nonce=0, to=None, data=counter()["bytecode"], gas=500_000).hex())
    node.mine_block()
    address = rpc.call("eth_getTransactionReceipt", h0)["contractAddress"]
    h1 = rpc.call("eth_sendRawTransaction", "0x" + sign(0, nonce=1, to=address, data=INC,
                                                        gas=100_000).hex())
    b2 = node.mine_block()
    assert rpc.call("eth_getFilterChanges", pending) == [h0, h1]
    assert rpc.call("eth_getFilterChanges", pending) == []
    assert len(rpc.call("eth_getFilterChanges", blocks)) == 2
    changes = rpc.call("eth_getFilterChanges", logs)
    assert [c["transactionHash"] for c in changes] == [h1]
    assert rpc.call("eth_getFilterLogs", logs)[0]["blockHash"] == "0x" + b2.hash.hex()
    assert rpc.call("eth_uninstallFilter", logs) is True
    assert rpc.call("eth_uninstallFilter", logs) is False
    assert rpc.request("eth_getFilterChanges", logs)["error"]["message"] == "filter not found"
    # address lists, topic OR-lists and blockHash queries
    assert len(rpc.call("eth_getLogs", {"address": [address, "0x" + "11" * 20],
                                        "fromBlock": "earliest",
                                        "topics": [[TOPIC, "0x" + "22" * 32]]})) == 1
    assert len(rpc.call("eth_getLogs", {"blockHash": "0x" + b2.hash.hex()})) == 1
    bad = rpc.request("eth_getLogs", {"blockHash": "0x" + b2.hash.hex(), "fromBlock": "0x1"})
    assert bad["error"]["code"] == -32602
    assert rpc.request("eth_getLogs", {"fromBlock": "0x2", "toBlock": "0x1"})["error"][
        "code"] == -32602


def test_websocket_rpc_and_subscriptions(server: ServerThread, node: DevNode) -> None:
    url = server.server.url.replace("http", "ws")

    async def scenario() -> None:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            async def call(method: str, *params: object) -> dict:
                await ws.send_str(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                                              "params": list(params)}))
                return json.loads((await ws.receive(timeout=10)).data)

            assert (await call("eth_chainId"))["result"] == "0x7a69"
            heads = (await call("eth_subscribe", "newHeads"))["result"]
            txs = (await call("eth_subscribe", "newPendingTransactions"))["result"]
            logs = (await call("eth_subscribe", "logs", {"topics": [TOPIC]}))["result"]
            bad = await call("eth_subscribe", "nothing")
            assert bad["error"]["code"] == -32602
            loop = asyncio.get_running_loop()
            raw = sign(1, nonce=0, to=None, data=counter()["bytecode"], gas=500_000)
            await loop.run_in_executor(None, node.submit_raw_transaction, raw)
            await loop.run_in_executor(None, node.mine_block)
            deploy_receipt = node.chain.get_canonical_block_by_number(1).transactions[0]
            from poai.compat.pyevm import generate_contract_address
            address = generate_contract_address(deploy_receipt.sender, 0)
            raw = sign(1, nonce=1, to=to_checksum_address(address), data=INC, gas=100_000)
            await loop.run_in_executor(None, node.submit_raw_transaction, raw)
            await loop.run_in_executor(None, node.mine_block)
            got: dict[str, list] = {heads: [], txs: [], logs: []}
            while len(got[heads]) < 2 or len(got[logs]) < 1 or len(got[txs]) < 2:
                msg = json.loads((await ws.receive(timeout=10)).data)
                assert msg["method"] == "eth_subscription"
                got[msg["params"]["subscription"]].append(msg["params"]["result"])
            assert [h["number"] for h in got[heads]] == ["0x1", "0x2"]
            assert "baseFeePerGas" in got[heads][0]
            assert got[logs][0]["topics"][0] == TOPIC and got[logs][0]["removed"] is False
            assert (await call("eth_unsubscribe", heads))["result"] is True
            assert (await call("eth_unsubscribe", heads))["result"] is False

    asyncio.run(scenario())
    assert ACCOUNTS


def test_receipts_polled_one_by_one_equal_the_blocks_receipts(rpc: Rpc, node: DevNode,
                                                              server: ServerThread) -> None:
    """eth_getTransactionReceipt formats one receipt (block-wide log indices and per-tx gas
    from the others' receipts), the same as eth_getBlockReceipts' entry."""
    h0 = rpc.call("eth_sendRawTransaction", "0x" + sign(
        0, nonce=0, to=None, data=counter()["bytecode"], gas=500_000).hex())
    node.mine_block()
    address = rpc.call("eth_getTransactionReceipt", h0)["contractAddress"]
    hashes = [rpc.call("eth_sendRawTransaction", "0x" + sign(
        i % 2, nonce=1 + i // 2 if i % 2 == 0 else i // 2, to=address if i != 3 else
        "0x" + "33" * 20, data=INC if i != 3 else "0x", gas=100_000).hex()) for i in range(6)]
    block = node.mine_block()
    assert len(block.transactions) == 6
    singles = sorted((rpc.call("eth_getTransactionReceipt", h) for h in hashes),
                     key=lambda r: int(r["transactionIndex"], 16))  # the block's order
    assert singles == rpc.call("eth_getBlockReceipts", "latest")
    assert [r["transactionIndex"] for r in singles] == [hex(i) for i in range(6)]
    log_indices = [lg["logIndex"] for r in singles for lg in r["logs"]]
    assert log_indices == [hex(i) for i in range(5)]  # 5 increments and a plain transfer
    # The new head's block and receipts came with its event: nothing is read back.
    ctx = server.server.ctx
    assert ctx._receipts.get(block.hash) is not None and ctx._blocks.get(block.hash) is block


def test_an_abandoned_filter_expires_at_the_next_head(rpc: Rpc, node: DevNode,
                                                      server: ServerThread,
                                                      monkeypatch: object) -> None:
    """Expiry runs at every new head, so abandoned filters go even when no client polls or
    installs a filter any more (those used to be the only triggers)."""
    import time

    import poai.rpc.filters as filters

    monkeypatch.setattr(filters, "FILTER_TIMEOUT", 0.5)  # type: ignore[attr-defined]
    manager = server.server.filters
    abandoned = rpc.call("eth_newPendingTransactionFilter")
    assert abandoned in manager._filters  # noqa: SLF001
    time.sleep(0.7)
    node.mine_block()
    assert abandoned not in manager._filters  # noqa: SLF001
