"""poai.rpc.dev: the dev-only methods refused on a non-dev node (one test per family), and the
ones that need no mined block answered on a dev node (the mined ones run against a real
`poai node --dev` in tests/integration/test_dev_node.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from poai.chain.devaccounts import dev_accounts
from poai.devmode import DevMode
from poai.rpc import dev
from support.devnode import ACCOUNTS, DevNode
from support.rpcclient import Rpc, ServerThread

DEV = dev_accounts()
DEV0 = DEV[0].checksum_address
WHO = "0x" + "42" * 20
REFUSED = "only available on a development node"

FAMILIES = {
    "mining": [("evm_mine", []), ("anvil_mine", ["0x2"]), ("hardhat_mine", ["0x2", "0x1"])],
    "time": [("evm_increaseTime", [60]), ("evm_setNextBlockTimestamp", ["0x70000000"]),
             ("anvil_setNextBlockTimestamp", ["0x70000000"])],
    "snapshots": [("evm_snapshot", []), ("evm_revert", ["0x0"])],
    "state": [("anvil_setBalance", [WHO, "0x1"]), ("hardhat_setBalance", [WHO, "0x1"]),
              ("anvil_setCode", [WHO, "0x00"]), ("hardhat_setCode", [WHO, "0x00"]),
              ("anvil_setStorageAt", [WHO, "0x0", "0x" + "00" * 32]),
              ("hardhat_setStorageAt", [WHO, "0x0", "0x" + "00" * 32]),
              ("anvil_setNonce", [WHO, "0x1"]), ("hardhat_setNonce", [WHO, "0x1"])],
    "impersonation": [("anvil_impersonateAccount", [WHO]),
                      ("hardhat_impersonateAccount", [WHO]),
                      ("anvil_stopImpersonatingAccount", [WHO]),
                      ("hardhat_stopImpersonatingAccount", [WHO])],
    "mining mode": [("evm_setAutomine", [True]), ("anvil_setAutomine", [False]),
                    ("anvil_getAutomine", []), ("hardhat_getAutomine", []),
                    ("evm_setIntervalMining", [1]), ("anvil_setIntervalMining", [0]),
                    ("anvil_getIntervalMining", [])],
}


@pytest.fixture
def plain_rpc(node: DevNode) -> Iterator[Rpc]:
    """A non-dev node that still lists the dev accounts (as `poai node` without --dev could)."""
    st = ServerThread(node, accounts=tuple(a.address for a in DEV))
    yield Rpc(st.server.url)
    st.close()


@pytest.fixture
def dev_node(node: DevNode) -> DevNode:
    node.dev = DevMode(automine=False, interval=0)  # type: ignore[assignment]
    node.config.dev_mnemonic = None
    return node


@pytest.fixture
def dev_rpc(dev_node: DevNode) -> Iterator[Rpc]:
    st = ServerThread(dev_node, accounts=tuple(a.address for a in DEV))
    yield Rpc(st.server.url)
    st.close()


def test_every_dev_method_is_in_a_refusal_family() -> None:
    tested = {m for calls in FAMILIES.values() for m, _ in calls}
    signing = {"eth_sendTransaction", "eth_sign", "personal_sign", "eth_signTypedData_v4"}
    assert tested | signing == set(dev.METHODS)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_non_dev_node_refuses_the_family(plain_rpc: Rpc, family: str) -> None:
    for method, params in FAMILIES[family]:
        err = plain_rpc.request(method, *params)["error"]
        assert err["code"] == -32601, (method, err)
        assert method in err["message"] and REFUSED in err["message"]
        assert "poai node --dev" in err["message"]


def test_a_non_dev_node_signs_nothing(plain_rpc: Rpc) -> None:
    calls = [("eth_sendTransaction", [{"from": DEV0, "to": WHO}]),
             ("eth_sign", [DEV0, "0x01"]), ("personal_sign", ["0x01", DEV0]),
             ("eth_signTypedData_v4", [DEV0, {}])]
    for method, params in calls:
        err = plain_rpc.request(method, *params)["error"]
        assert err["code"] == -32000 and "unknown account" in err["message"], (method, err)


def test_dev_node_signs_with_its_unlocked_accounts(dev_rpc: Rpc) -> None:
    sig = dev_rpc.call("eth_sign", DEV0, "0x6869")
    assert Account.recover_message(encode_defunct(b"hi"), signature=sig) == DEV0
    assert dev_rpc.call("personal_sign", "0x6869", DEV0) == sig
    typed = {
        "types": {"EIP712Domain": [{"name": "name", "type": "string"},
                                   {"name": "chainId", "type": "uint256"}],
                  "Vote": [{"name": "proposal", "type": "uint256"}]},
        "primaryType": "Vote", "domain": {"name": "PoAI", "chainId": 7337},
        "message": {"proposal": 7},
    }
    for arg in (typed, json.dumps(typed)):  # object or JSON string (MetaMask)
        sig = dev_rpc.call("eth_signTypedData_v4", DEV0, arg)
        assert Account.recover_message(encode_typed_data(full_message=typed),
                                       signature=sig) == DEV0
    bad = dev_rpc.request("eth_signTypedData_v4", DEV0, "{not json")["error"]
    assert bad["code"] == -32602 and "typedData" in bad["message"]
    bad = dev_rpc.request("eth_signTypedData_v4", DEV0, {"types": {}})["error"]
    assert bad["code"] == -32602
    stranger = dev_rpc.request("eth_sign", WHO, "0x01")["error"]
    assert stranger["code"] == -32000 and "unknown account" in stranger["message"]
    no_from = dev_rpc.request("eth_sendTransaction", {"to": WHO})["error"]
    assert no_from["code"] == -32602 and "from" in no_from["message"]


def test_impersonated_sender_goes_through_the_pool_and_the_block(dev_node: DevNode,
                                                                  dev_rpc: Rpc) -> None:
    who = ACCOUNTS[2].address  # funded in the stand-in's genesis; no key on the node
    err = dev_rpc.request("eth_sendTransaction", {"from": who, "to": WHO, "value": "0x5"})
    assert "unknown account" in err["error"]["message"]
    assert dev_rpc.call("anvil_impersonateAccount", who) is None
    tx_hash = dev_rpc.call("eth_sendTransaction", {"from": who, "to": WHO, "value": "0x5"})
    pooled = dev_rpc.call("eth_getTransactionByHash", tx_hash)
    assert pooled["from"].lower() == who.lower() and pooled["type"] == "0x2"
    assert int(pooled["nonce"], 16) == 0 and int(pooled["gas"], 16) == 21000
    dev_node.mine_block()
    receipt = dev_rpc.call("eth_getTransactionReceipt", tx_hash)
    assert receipt["status"] == "0x1" and receipt["from"].lower() == who.lower()
    assert dev_rpc.call("eth_getBalance", WHO, "latest") == "0x5"
    assert dev_rpc.call("hardhat_stopImpersonatingAccount", who) is True
    err = dev_rpc.request("eth_sendTransaction", {"from": who, "to": WHO})
    assert "unknown account" in err["error"]["message"]


def test_dev_node_time_snapshot_and_mode_answers(dev_node: DevNode, dev_rpc: Rpc) -> None:
    assert dev_rpc.call("evm_increaseTime", 100) == 100
    assert dev_rpc.call("evm_increaseTime", "0x10") == 116  # the total offset, as anvil
    head = dev_node.head()
    err = dev_rpc.request("evm_setNextBlockTimestamp", hex(head.timestamp))["error"]
    assert err["code"] == -32602 and "Timestamp error" in err["message"]
    assert dev_rpc.call("evm_setNextBlockTimestamp", hex(head.timestamp + 5000)) is None
    assert dev_node.dev.next_timestamp == head.timestamp + 5000
    assert dev_rpc.call("evm_snapshot") == "0x0"
    assert dev_rpc.call("evm_snapshot") == "0x1"
    assert dev_rpc.call("evm_revert", "0x7") is False  # unknown: false, as anvil
    assert dev_rpc.call("anvil_getAutomine") is False
    assert dev_rpc.call("evm_setAutomine", True) is None
    assert dev_rpc.call("hardhat_getAutomine") is True
    assert dev_rpc.call("anvil_getIntervalMining") is None
    assert dev_rpc.call("evm_setIntervalMining", 5) is None
    assert dev_rpc.call("anvil_getIntervalMining") == 5
    assert dev_rpc.call("anvil_getAutomine") is False  # interval mining replaces automine
    assert dev_rpc.request("evm_setAutomine", "yes")["error"]["code"] == -32602
    assert dev_rpc.request("anvil_setBalance", "0x12", "0x1")["error"]["code"] == -32602
    assert dev_rpc.request("anvil_mine", "0x" + "f" * 10)["error"]["code"] == -32602


def test_a_batch_mixing_dev_and_chain_methods_is_answered(dev_rpc: Rpc) -> None:
    body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate([
        ("evm_snapshot", []), ("eth_getBalance", [WHO, "latest"]),
        ("evm_increaseTime", [5]), ("eth_blockNumber", [])])]
    status, replies, _ = dev_rpc.raw(json.dumps(body))
    assert status == 200
    assert [r["result"] for r in sorted(replies, key=lambda r: r["id"])] == \
        ["0x0", "0x0", 5, "0x0"]
