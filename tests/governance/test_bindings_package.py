"""poai.bindings (the bindings shipped in the installed package) against the genesis contracts
on a py-evm chain (the governance bench): named results, reverts and custom errors in words for
calls, transactions before sending and transactions already mined."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from poai import bindings
from poai.bindings import ContractRevert, decode_revert, deployed
from support.devnode import ACCOUNTS, CHAIN_ID, DevNode, sign
from support.rpcclient import ServerThread
from web3 import Web3
from web3.exceptions import ContractLogicError


def test_the_package_ships_every_contract_abi() -> None:
    assert set(bindings.contract_names()) >= {"ModelRegistry", "DatasetDAO", "InferenceMarket",
                                              "PoAIGovernor", "PoAITimelock", "StakedPOAI"}
    assert bindings.ABI_DIR.is_relative_to(__import__("poai").__path__[0])
    assert len(bindings.error_table()) > 50  # ours and OpenZeppelin's
    with pytest.raises(bindings.BindingError, match="no ABI for contract 'Nope'"):
        bindings.load_artifact("Nope")
    assert bindings.deploy_transaction("StakedPOAI", 64)["data"].startswith("0x6")


def test_named_results(bench: Any) -> None:
    c = deployed(bench.w3)
    reg = c.ModelRegistry
    expert = reg.expert(1)
    assert type(expert).__name__ == "Expert"
    assert expert.layer == 0 and expert.index == 0 and expert.name
    assert tuple(expert) == tuple(reg.web3.functions.expert(1).call())  # still a tuple
    domain = c.StakedPOAI.eip712Domain()  # several named outputs
    assert type(domain).__name__ == "eip712DomainResult"
    assert domain.chainId == bench.w3.eth.chain_id and domain.verifyingContract == \
        c.StakedPOAI.address
    assert reg.expertCount() >= 1 and isinstance(reg.expertCount(), int)
    assert "registerExpert" in dir(reg)
    with pytest.raises(AttributeError):
        reg.noSuchFunction  # noqa: B018


@pytest.fixture
def staked() -> Iterator[tuple[Any, DevNode, Web3]]:
    """StakedPOAI deployed on a node behind the real JSON-RPC server (eth-tester reports
    reverts its own way; a node reports them as geth does)."""
    node = DevNode()
    server = ServerThread(node)
    try:
        w3 = Web3(Web3.HTTPProvider(server.server.url))
        data = bindings.deploy_transaction("StakedPOAI", 64)["data"]
        h = node.submit_raw_transaction(sign(0, nonce=0, to=None, data=data, gas=5_000_000))
        node.mine_block()
        receipt = w3.eth.get_transaction_receipt(h)
        assert receipt["status"] == 1
        yield bindings.bind(w3, "StakedPOAI", receipt["contractAddress"]), node, w3
    finally:
        server.close()


def test_reverts_in_words_for_calls_and_transactions(staked: Any) -> None:
    token, node, w3 = staked
    sender = ACCOUNTS[0].address
    with pytest.raises(ContractRevert) as info:
        token.requestWithdrawal(5).build_transaction({"from": sender})  # gas estimation reverts
    assert str(info.value) == ("StakedPOAI.requestWithdrawal(uint256): ERC20InsufficientBalance("
                               f"sender={sender}, balance=0, needed=5)")
    assert info.value.revert.name == "ERC20InsufficientBalance"
    assert info.value.revert.args == {"sender": sender, "balance": 0, "needed": 5}
    assert isinstance(info.value, ContractLogicError)  # code catching web3's error still works
    with pytest.raises(ContractRevert, match=r"ZeroAmount\(\)$"):
        token.deposit().call({"from": sender, "value": 0})
    unbonding = token.unbonding(sender)  # a struct: named
    assert unbonding._fields[0] == "amount" and unbonding.amount == 0

    # Mined anyway (gas given, so nothing estimates): the receipt's revert is replayed.
    call = token.requestWithdrawal(5).build_transaction({"from": sender, "gas": 200_000,
                                                         "nonce": 1, "chainId": CHAIN_ID})
    h = node.submit_raw_transaction(sign(0, nonce=1, to=token.address, data=call["data"],
                                         gas=200_000))
    node.mine_block()
    assert w3.eth.get_transaction_receipt(h)["status"] == 0
    why = bindings.revert_of_transaction(w3, h)
    assert str(why) == f"ERC20InsufficientBalance(sender={sender}, balance=0, needed=5)"


def test_decode_revert_every_kind() -> None:
    sel = keccak(text="GovernorUnexpectedProposalState(uint256,uint8,bytes32)")[:4]
    data = sel + encode(["uint256", "uint8", "bytes32"], [7, 0, b"\x00" * 31 + b"\x02"])
    assert str(decode_revert(data)) == ("GovernorUnexpectedProposalState(proposalId=7, "
                                        "current=0, expectedStates=0x" + "00" * 31 + "02)")
    assert str(decode_revert(keccak(text="Error(string)")[:4] + encode(["string"], ["nope"]))) \
        == "reverted: nope"
    assert str(decode_revert(keccak(text="Panic(uint256)")[:4] + encode(["uint256"], [0x11]))) \
        == "panic 0x11 (arithmetic underflow or overflow)"
    assert str(decode_revert(b"")) == "reverted without a reason"
    assert str(decode_revert(b"\xde\xad\xbe\xef")) == "reverted with unknown error 0xdeadbeef"
    # a malformed payload still names the error
    bad = keccak(text="UnknownSnapshot(uint256)")[:4] + b"\x01"
    assert str(decode_revert(bad)).startswith("UnknownSnapshot(<undecodable arguments")
    # an ABI the package does not know (a user's contract)
    mine = [{"type": "error", "name": "NotEnoughCoffee", "inputs": [
        {"name": "cups", "type": "uint256"}, {"name": "wanted", "type": "uint256"}]}]
    data = keccak(text="NotEnoughCoffee(uint256,uint256)")[:4] + encode(["uint256"] * 2,
                                                                        [5, 10])
    assert str(decode_revert(data, mine)) == "NotEnoughCoffee(cups=5, wanted=10)"
    assert str(decode_revert(data)).startswith("reverted with unknown error")
