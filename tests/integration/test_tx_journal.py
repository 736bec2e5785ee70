"""A wallet's transaction sent to a node that is then SIGKILLed is not lost: the restarted node
pools it again from its journal and mines it (geth's transactions.rlp, without waiting for a
clean stop)."""

from __future__ import annotations

from pathlib import Path

from eth_account import Account
from support.nodeproc import DEV_KEYS, NodeProcess, fast_genesis, free_port

GWEI = 10**9


def test_pending_transactions_survive_a_sigkill(tmp_path: Path) -> None:
    genesis = fast_genesis(tmp_path / "genesis.json")
    port = free_port()
    datadir = tmp_path / "datadir"
    node = NodeProcess(datadir, genesis, mine=False, port=port)  # nothing mines: they wait
    acct = Account.from_key(DEV_KEYS[5])
    hashes = []
    try:
        for nonce in (0, 1, 3):  # two pending, one queued behind a gap
            raw = acct.sign_transaction({
                "chainId": node.chain_id, "type": 2, "nonce": nonce, "gas": 21000,
                "to": "0x" + "42" * 20, "value": 1, "maxFeePerGas": 100 * GWEI,
                "maxPriorityFeePerGas": GWEI}).raw_transaction
            hashes.append(node.call("eth_sendRawTransaction", "0x" + bytes(raw).hex()))
        assert node.call("txpool_status") == {"pending": "0x2", "queued": "0x1"}
    finally:
        node.proc.kill()
        node.proc.wait(10)
        node.log.close()
    node = NodeProcess(datadir, genesis, mine=True, port=port,
                       log_path=tmp_path / "restarted.log")
    try:
        assert "pooled 3 of 3 journaled local transactions again" in node.text()
        for tx_hash in hashes:
            assert node.call("eth_getTransactionByHash", tx_hash)["hash"] == tx_hash
        node.wait_block(int(node.call("eth_blockNumber"), 16) + 2, timeout=120)
        receipts = [node.call("eth_getTransactionReceipt", h) for h in hashes[:2]]
        assert all(r is not None and r["status"] == "0x1" for r in receipts), receipts
        assert node.call("eth_getTransactionReceipt", hashes[2]) is None  # still behind its gap
        assert node.call("txpool_status") == {"pending": "0x0", "queued": "0x1"}
    finally:
        node.stop()
