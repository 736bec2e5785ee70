"""Real clients against a real `poai node --mine` process: web3.py, ethers, viem, cast, Hardhat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account
from support.contract import counter
from support.nodeproc import BIN, DEV_KEYS, ROOT, NodeProcess, run_tool
from web3 import Web3

pytestmark = pytest.mark.integration
JS = Path(__file__).parent / "js"
NODE = str(BIN / "node")


def fresh_address() -> str:
    return str(Account.create().address)


def test_web3py_deploys_transacts_and_reads_events(poai_node: NodeProcess) -> None:
    w3 = Web3(Web3.HTTPProvider(poai_node.url, request_kwargs={"timeout": 60}))
    assert w3.is_connected() and w3.eth.chain_id == poai_node.chain_id
    acct = Account.from_key(DEV_KEYS[1])
    art = counter()
    factory = w3.eth.contract(abi=art["abi"], bytecode=art["bytecode"])

    def send(tx: dict) -> dict:
        tx.setdefault("nonce", w3.eth.get_transaction_count(acct.address, "pending"))
        tx.setdefault("chainId", w3.eth.chain_id)
        tx.setdefault("gas", w3.eth.estimate_gas(tx))
        signed = acct.sign_transaction(tx)
        tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
        return dict(w3.eth.wait_for_transaction_receipt(tx_hash, timeout=120, poll_latency=0.3))

    deploy = send(factory.constructor().build_transaction({"from": acct.address}))
    assert deploy["status"] == 1 and deploy["type"] == 2
    c = w3.eth.contract(address=deploy["contractAddress"], abi=art["abi"])
    receipt = send(c.functions.add(5).build_transaction({"from": acct.address}))
    (event,) = c.events.Incremented().process_receipt(receipt)
    assert event["args"]["by"] == acct.address and event["args"]["value"] == 5
    assert c.functions.count().call() == 5
    logs = c.events.Incremented().get_logs(from_block=deploy["blockNumber"])
    assert [lg["args"]["value"] for lg in logs] == [5]
    with pytest.raises(Exception, match="too big"):
        c.functions.add(500).call({"from": acct.address})


def test_ethers_eip1559_transfer(poai_node: NodeProcess) -> None:
    to = fresh_address()
    out = json.loads(run_tool([NODE, str(JS / "ethers-transfer.mjs"), poai_node.url,
                               DEV_KEYS[2], to]))
    assert out["status"] == 1 and out["type"] == 2
    assert out["delta"] == str(15 * 10**17)
    assert out["chainId"] == str(poai_node.chain_id)


def test_viem_eip1559_transfer(poai_node: NodeProcess) -> None:
    to = fresh_address()
    out = json.loads(run_tool([NODE, str(JS / "viem-transfer.mjs"), poai_node.url,
                               DEV_KEYS[3], to, str(poai_node.chain_id)]))
    assert out["status"] == "success" and out["type"] == "eip1559"
    assert out["delta"] == str(25 * 10**16)


def test_cast_sends_and_calls(poai_node: NodeProcess) -> None:
    cast = str(BIN / "cast")
    common = ["--rpc-url", poai_node.url]
    key = ["--private-key", DEV_KEYS[4]]
    to = fresh_address()
    receipt = json.loads(run_tool([cast, "send", *common, *key, "--json", to,
                                   "--value", "0.1ether"]))
    assert receipt["status"] == "0x1"
    assert run_tool([cast, "balance", *common, to]).strip() == str(10**17)
    created = json.loads(run_tool([cast, "send", *common, *key, "--json", "--create",
                                   counter()["bytecode"]]))
    address = created["contractAddress"]
    assert json.loads(run_tool([cast, "send", *common, *key, "--json", address,
                                "increment()"]))["status"] == "0x1"
    assert run_tool([cast, "call", *common, address, "count()(uint256)"]).strip() == "1"
    assert run_tool([cast, "chain-id", *common]).strip() == str(poai_node.chain_id)


def test_hardhat_deploys_through_poai_network(poai_node: NodeProcess, tmp_path: Path) -> None:
    config = ROOT / "hardhat.config.js"
    if not config.exists():
        pytest.skip("hardhat.config.js (contracts engineer) is absent")
    artifact = tmp_path / "Counter.json"
    artifact.write_text(json.dumps(counter()))
    out = run_tool([NODE, str(BIN / "hardhat"), "run", "--network", "poai",
                    str(JS / "hardhat-deploy.mjs")],
                   env={"POAI_RPC_URL": poai_node.url, "POAI_CHAIN_ID": str(poai_node.chain_id),
                        "COUNTER_ARTIFACT": str(artifact)}, timeout=400)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["count"] == "1" and result["status"] == 1
    assert result["chainId"] == str(poai_node.chain_id)


def test_wallet_and_poai_methods_on_the_real_node(poai_node: NodeProcess) -> None:
    # What MetaMask needs to add the network: chainId, net_version, baseFeePerGas, CORS.
    assert poai_node.call("net_version") == str(poai_node.chain_id)
    head = poai_node.call("eth_getBlockByNumber", "latest", False)
    assert "baseFeePerGas" in head and int(head["difficulty"], 16) >= 1
    seals = poai_node.call("poai_lastSeals", "0x2")
    quiz = poai_node.call("poai_quizParams")
    assert seals and len(seals[0]["losses"]) == quiz["k"] * quiz["segments"]
    assert all(0 < v < 10 for v in seals[0]["losses"])
    assert "minerLosses" in seals[0]  # this node mined it
    epoch = poai_node.call("poai_epoch")
    assert len(epoch["epochKey"]) == 66
    assert poai_node.call("eth_mining") is True
    assert poai_node.call("poai_modelManifest")["manifest"]
