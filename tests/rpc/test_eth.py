"""eth_* methods against a real py-evm chain: transactions, blocks, receipts, calls, fees."""

from __future__ import annotations

import pytest
from eth_utils import function_signature_to_4byte_selector, keccak
from support.devnode import ACCOUNTS, DevNode, sign
from support.rpcclient import Rpc, RpcFailure, deploy

GWEI = 10**9
A0 = ACCOUNTS[0].address


def sel(sig: str) -> str:
    return "0x" + function_signature_to_4byte_selector(sig).hex()


def test_transfer_lifecycle(rpc: Rpc, node: DevNode) -> None:
    to = "0x" + "22" * 20
    assert rpc.call("eth_getTransactionCount", A0, "pending") == "0x0"
    h = rpc.call("eth_sendRawTransaction", "0x" + sign(0, nonce=0, value=7).hex())
    assert rpc.call("eth_getTransactionCount", A0, "pending") == "0x1"
    assert rpc.call("eth_getTransactionCount", A0, "latest") == "0x0"
    pooled = rpc.call("eth_getTransactionByHash", h)
    assert pooled["blockHash"] is None and pooled["from"] == A0
    assert rpc.call("eth_getTransactionReceipt", h) is None
    block = node.mine_block()
    tx = rpc.call("eth_getTransactionByHash", h)
    for key in ("type", "chainId", "accessList", "maxFeePerGas", "maxPriorityFeePerGas",
                "yParity", "v", "r", "s", "gasPrice", "input", "nonce", "blockHash"):
        assert key in tx, key
    assert tx["blockNumber"] == "0x1" and tx["type"] == "0x2" and tx["value"] == "0x7"
    receipt = rpc.call("eth_getTransactionReceipt", h)
    assert receipt["status"] == "0x1" and receipt["gasUsed"] == hex(21000)
    assert int(receipt["effectiveGasPrice"], 16) == block.header.base_fee_per_gas + GWEI
    assert rpc.call("eth_getBalance", to, "latest") == "0x7"
    assert rpc.call("eth_getBalance", to, "earliest") == "0x0"
    assert rpc.call("eth_getBalance", to, {"blockNumber": "0x0"}) == "0x0"
    assert rpc.call("eth_getBalance", to, {"blockHash": "0x" + block.hash.hex(),
                                           "requireCanonical": True}) == "0x7"
    assert rpc.call("eth_blockNumber") == "0x1"
    full = rpc.call("eth_getBlockByNumber", "latest", True)
    assert full["transactions"][0]["hash"] == h and "baseFeePerGas" in full
    by_hash = rpc.call("eth_getBlockByHash", full["hash"], False)
    assert by_hash["transactions"] == [h]
    assert rpc.call("eth_getBlockTransactionCountByNumber", "0x1") == "0x1"
    assert rpc.call("eth_getBlockTransactionCountByHash", full["hash"]) == "0x1"
    assert rpc.call("eth_getTransactionByBlockNumberAndIndex", "0x1", "0x0")["hash"] == h
    assert rpc.call("eth_getTransactionByBlockHashAndIndex", full["hash"], "0x0")["hash"] == h
    assert rpc.call("eth_getTransactionByBlockHashAndIndex", full["hash"], "0x5") is None
    assert rpc.call("eth_getBlockReceipts", "latest")[0]["transactionHash"] == h
    assert rpc.call("eth_getBlockByNumber", "0x99", False) is None
    for tag in ("pending", "safe", "finalized"):
        assert rpc.call("eth_getBlockByNumber", tag, False)["number"] == "0x1"
    with pytest.raises(RpcFailure) as err:
        rpc.call("eth_getBalance", to, "0x99")
    assert "header not found" in str(err.value)


def test_send_raw_errors(rpc: Rpc, node: DevNode) -> None:
    def error(raw: bytes) -> dict:
        return rpc.request("eth_sendRawTransaction", "0x" + raw.hex())["error"]

    assert "rlp" in error(b"\x02\xc1\x80")["message"]
    assert "invalid chain id" in error(sign(0, nonce=0, chainId=1))["message"]
    bad_sig = bytearray(sign(0, nonce=0))
    bad_sig[-1] ^= 0x01
    e = error(bytes(bad_sig))
    # A flipped bit in s yields another (unfunded) signer or an invalid signature.
    assert e["code"] == -32000 and ("invalid sender" in e["message"]
                                    or "insufficient funds" in e["message"])
    assert error(sign(0, nonce=0, gas=1000))["message"].startswith("intrinsic gas too low")
    one_wei = error(sign(0, nonce=0, maxFeePerGas=1, maxPriorityFeePerGas=1))
    assert one_wei["code"] == -32000
    assert one_wei["message"].startswith("max fee per gas less than block base fee")
    assert rpc.call("eth_getTransactionCount", A0, "pending") == "0x0"
    rpc.call("eth_sendRawTransaction", "0x" + sign(0, nonce=0).hex())
    node.mine_block()
    assert error(sign(0, nonce=0, value=1))["message"].startswith("nonce too low")
    assert rpc.request("eth_sendRawTransaction", "0xzz")["error"]["code"] == -32602


def test_contract_call_estimate_logs_and_revert(rpc: Rpc, node: DevNode) -> None:
    address, _ = deploy(rpc, node)
    assert len(rpc.call("eth_getCode", address)) > 100
    inc = {"from": A0, "to": address, "data": sel("increment()")}
    gas = int(rpc.call("eth_estimateGas", inc), 16)
    assert 40_000 < gas < 80_000
    h = rpc.call("eth_sendRawTransaction", "0x" + sign(0, nonce=1, to=address,
                                                         data=sel("increment()"),
                                                         gas=gas).hex())
    node.mine_block()
    receipt = rpc.call("eth_getTransactionReceipt", h)
    assert receipt["status"] == "0x1"
    (log,) = receipt["logs"]
    assert log["topics"][0] == "0x" + keccak(text="Incremented(address,uint256)").hex()
    assert log["topics"][1] == "0x" + "00" * 12 + A0[2:].lower()
    assert int(log["data"], 16) == 1 and log["logIndex"] == "0x0"
    count = {"to": address, "data": sel("count()")}
    assert int(rpc.call("eth_call", count, "latest"), 16) == 1
    assert int(rpc.call("eth_call", count, "0x1"), 16) == 0  # before the increment
    assert rpc.call("eth_getStorageAt", address, "0x0", "latest") == "0x" + "00" * 31 + "01"
    # state override: storage slot 0 set to 42 for this call only
    override = {address: {"stateDiff": {"0x" + "00" * 32: "0x" + "00" * 31 + "2a"}}}
    assert int(rpc.call("eth_call", count, "latest", override), 16) == 42
    assert int(rpc.call("eth_call", count, "latest"), 16) == 1
    # revert with reason: code 3 and the ABI-encoded Error(string) as data
    reply = rpc.request("eth_call", {"to": address, "data": sel("fail()")}, "latest")
    assert reply["error"]["code"] == 3
    assert reply["error"]["message"] == "execution reverted: nope"
    assert reply["error"]["data"].startswith("0x08c379a0")
    add_big = sel("add(uint256)") + f"{500:064x}"
    reply = rpc.request("eth_estimateGas", {"from": A0, "to": address, "data": add_big})
    assert reply["error"]["code"] == 3 and "too big" in reply["error"]["message"]
    logs = rpc.call("eth_getLogs", {"fromBlock": "0x0", "toBlock": "latest",
                                    "address": address})
    assert [lg["transactionHash"] for lg in logs] == [h]
    assert rpc.call("eth_getLogs", {"fromBlock": "0x0", "topics": [
        "0x" + "11" * 32]}) == []
    # A sender with no nonce history and a non-zero nonce on chain: the call still runs.
    assert int(rpc.call("eth_call", {**count, "from": A0}, "latest"), 16) == 1


def test_fees(rpc: Rpc, node: DevNode) -> None:
    for i in range(3):
        rpc.call("eth_sendRawTransaction", "0x" + sign(0, nonce=i,
                                                     maxPriorityFeePerGas=(i + 1) * GWEI,
                                                     maxFeePerGas=10 * GWEI).hex())
        node.mine_block()
    tip = int(rpc.call("eth_maxPriorityFeePerGas"), 16)
    assert tip >= GWEI
    assert int(rpc.call("eth_gasPrice"), 16) > tip
    hist = rpc.call("eth_feeHistory", "0x3", "latest", [0, 50, 100])
    assert hist["oldestBlock"] == "0x1"
    assert len(hist["baseFeePerGas"]) == 4 and len(hist["gasUsedRatio"]) == 3
    assert [int(r[0], 16) for r in hist["reward"]] == [GWEI, 2 * GWEI, 3 * GWEI]
    assert rpc.request("eth_feeHistory", "0x3", "latest", [50, 10])["error"]["code"] == -32602


def test_node_info_methods(rpc: Rpc) -> None:
    assert rpc.call("eth_syncing") is False
    assert rpc.call("eth_mining") is False
    assert rpc.call("eth_hashrate") == "0xc"
    assert rpc.call("eth_accounts") == []
    assert rpc.request("eth_sendTransaction", {})["error"]["code"] == -32000
    assert rpc.call("txpool_status") == {"pending": "0x0", "queued": "0x0"}


def test_txpool_content(rpc: Rpc) -> None:
    rpc.call("eth_sendRawTransaction", "0x" + sign(1, nonce=0).hex())
    rpc.call("eth_sendRawTransaction", "0x" + sign(1, nonce=5).hex())
    content = rpc.call("txpool_content")
    sender = ACCOUNTS[1].address
    assert list(content["pending"][sender]) == ["0"]
    assert list(content["queued"][sender]) == ["5"]
    assert rpc.call("txpool_status") == {"pending": "0x1", "queued": "0x1"}
    assert "contract creation" not in str(rpc.call("txpool_inspect"))


def test_poai_namespace(rpc: Rpc, node: DevNode) -> None:
    for _ in range(5):
        node.mine_block()
    assert rpc.call("poai_quizParams")["k"] == 4
    ep = rpc.call("poai_epoch")
    assert ep["epoch"] == "0x1" and ep["seedBlock"] == "0x3" and len(ep["epochKey"]) == 66
    seals = rpc.call("poai_lastSeals", "0x3")
    assert [s["number"] for s in seals] == ["0x5", "0x4", "0x3"]
    assert len(seals[0]["losses"]) == 16  # K = 4 samples x G = 4 segments
    assert rpc.request("poai_lastSeals", "0x10000")["error"]["code"] == -32602
    assert rpc.call("poai_mining")["hashrate"] == 12.5
    assert rpc.call("poai_modelManifest")["manifest"] == node.governed_manifest
