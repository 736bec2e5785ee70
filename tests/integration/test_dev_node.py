"""A contract developer's node: anvil / `hardhat node` methods of a real mining `poai node --dev`
(the session's node), used by real clients: Hardhat with the node's unlocked accounts passing a
PoAIGovernor vote, cast's evm_snapshot / evm_revert, and viem's test client in anvil mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.nodeproc import BIN, ROOT, NodeProcess, run_tool
from web3 import Web3

pytestmark = pytest.mark.integration
JS = Path(__file__).parent / "js"
NODE = str(BIN / "node")
CAST = str(BIN / "cast")
DEV0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"  # dev account 0 (anvil's, Hardhat's)


def test_hardhat_unlocked_accounts_pass_a_governor_vote(poai_node: NodeProcess) -> None:
    out = run_tool([NODE, str(BIN / "hardhat"), "run", "--no-compile", "--network", "poai",
                    str(JS / "hardhat-governor-dev.mjs")],
                   env={"POAI_RPC_URL": poai_node.url, "POAI_CHAIN_ID": str(poai_node.chain_id),
                        "POAI_ABI_DIR": str(ROOT / "bindings" / "abi")}, timeout=400)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["signer"] == DEV0 and result["accounts"][0] == DEV0
    assert result["interval"] == 1 and result["automine"] is False  # restored
    # Pending -> Active after the voting delay -> Succeeded -> Queued -> Executed
    assert result["states"] == ["0", "1", "4", "5", "7"], result
    assert result["blocksForDelay"] >= int(result["delay"]) + 1
    assert "TimelockUnexpectedOperationState" in result["earlyExecute"] or \
        "reverted" in result["earlyExecute"], result["earlyExecute"]
    assert result["minDelay"] == "3600" and result["timeJump"] >= 3600 + 1
    assert result["paid"] == "1"


def test_cast_snapshot_and_revert(poai_node: NodeProcess) -> None:
    common = ["--rpc-url", poai_node.url]
    w3 = Web3(Web3.HTTPProvider(poai_node.url, request_kwargs={"timeout": 60}))
    snap = json.loads(run_tool([CAST, "rpc", *common, "evm_snapshot"]))
    before = w3.eth.block_number
    to = "0x00000000000000000000000000000000000c0ffe"
    # cast's --unlocked sends eth_sendTransaction: the node signs with dev account 1.
    receipt = json.loads(run_tool([CAST, "send", *common, "--unlocked", "--from",
                                   w3.eth.accounts[1], "--json", to, "--value", "7"]))
    assert receipt["status"] == "0x1"
    run_tool([CAST, "rpc", *common, "evm_mine"])
    assert w3.eth.get_balance(Web3.to_checksum_address(to)) == 7
    assert w3.eth.block_number > before
    assert json.loads(run_tool([CAST, "rpc", *common, "evm_revert", snap])) is True
    head = w3.eth.block_number
    assert before <= head < int(receipt["blockNumber"], 16)  # interval mining goes on
    assert w3.eth.get_balance(Web3.to_checksum_address(to)) == 0
    assert poai_node.call("eth_getTransactionReceipt", receipt["transactionHash"]) is None
    # the snapshot is used up (anvil)
    assert json.loads(run_tool([CAST, "rpc", *common, "evm_revert", snap])) is False
    # the chain goes on from the reverted head: a new block is mined and stored on it
    run_tool([CAST, "rpc", *common, "evm_mine"])
    assert w3.eth.block_number > head


def test_viem_test_client_session(poai_node: NodeProcess) -> None:
    out = json.loads(run_tool([NODE, str(JS / "viem-test-client.mjs"), poai_node.url,
                               str(poai_node.chain_id)], timeout=300))
    assert out["dev0"] == DEV0 and out["mined"] is True
    assert out["whaleBalance"] == str(500 * 10**18)
    imp = out["impersonated"]
    assert imp == {"status": "success", "from": "0x1234567890123456789012345678901234567890",
                   "delta": str(15 * 10**17)}
    assert "unknown account" in out["afterStop"]
    assert out["personalSign"] is True and out["typedData"] is True
    assert out["code"] == "0x6001600055"
    assert int(out["slot1"], 16) == 42
