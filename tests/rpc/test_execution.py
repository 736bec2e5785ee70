"""poai.rpc.execution: the call path's own message building against py-evm's executor."""

from __future__ import annotations

from typing import Any

import pytest
from eth.vm.spoof import SpoofTransaction
from eth_utils import function_signature_to_4byte_selector
from poai.compat.pyevm import generate_contract_address
from poai.rpc import execution
from poai.rpc.execution import CallRequest
from support.contract import counter
from support.devnode import ACCOUNTS, DevNode
from support.rpcclient import Rpc, deploy

A0 = ACCOUNTS[0].address


def sel(sig: str) -> str:
    return "0x" + function_signature_to_4byte_selector(sig).hex()


def py_evm_run(vm: Any, state: Any, req: CallRequest, gas: int) -> Any:
    """The same spoofed transaction through py-evm's own validate/build_evm_message/
    build_computation (what `execution._run` did before it built the message itself)."""
    signed = vm.create_transaction(
        nonce=state.get_nonce(req.sender), gas_price=req.gas_price, gas=gas,
        to=req.to, value=req.value, data=req.data, v=27, r=1, s=1)
    tx = SpoofTransaction(signed, sender=req.sender, access_list=req.access_list,
                          validate=lambda: None)
    snapshot = state.snapshot()
    try:
        executor = state.get_transaction_executor()
        executor.validate_transaction(tx)
        message = executor.build_evm_message(tx)
        return executor.build_computation(message, tx)
    finally:
        state.revert(snapshot)


def outcome(computation: Any) -> tuple[Any, ...]:
    return (bytes(computation.output), computation.get_gas_remaining(),
            computation.get_gas_refund(), type(computation.error).__name__
            if computation.is_error else None, computation.get_log_entries())


@pytest.mark.parametrize("call", [
    {"data": sel("count()")},
    {"data": sel("increment()"), "from": A0},
    {"data": sel("increment()"), "from": A0, "gasPrice": hex(10**9)},
    {"data": sel("fail()")},
    {"data": sel("add(uint256)") + f"{500:064x}", "from": A0},
    {"data": "0xdeadbeef"},
    {"to": None, "data": None},  # creation: the Counter's init code, from a fresh sender
])
def test_message_path_matches_py_evm(rpc: Rpc, node: DevNode, call: dict[str, Any]) -> None:
    address, _ = deploy(rpc, node)
    obj = {"to": address, **call}
    if obj["to"] is None:
        obj["data"] = counter()["bytecode"]
        obj["from"] = "0x" + "77" * 20
    obj = {k: v for k, v in obj.items() if v is not None}
    req = CallRequest.parse(obj)
    header = node.head()
    states = execution.CallStates()
    creation = obj["data"] == counter()["bytecode"]
    for gas in (30_000_000, 1_000_000) if creation else (30_000_000, 60_000, 22_000):
        with states.open(node.chain, header) as (vm, state):
            ours = execution._run(vm, state, req, gas)
            theirs = py_evm_run(vm, state, req, gas)
            assert outcome(ours) == outcome(theirs)
    if creation:
        assert len(ours.output) > 100  # the runtime code came back


def test_creation_address_follows_the_senders_nonce(rpc: Rpc, node: DevNode) -> None:
    # A0 has sent one transaction (the deployment): a creation call from A0 makes the
    # contract at nonce 1, exactly where a real deployment would put it.
    address, _ = deploy(rpc, node)
    code = counter()["bytecode"]
    header = node.head()
    req = CallRequest.parse({"from": A0, "data": code})
    with execution.CallStates().open(node.chain, header) as (vm, state):
        computation = execution._run(vm, state, req, 1_000_000)
        assert not computation.is_error
        sender = bytes.fromhex(A0[2:])
        assert computation.msg.storage_address == generate_contract_address(sender, 1)
        assert state.get_nonce(sender) == 1  # the call's nonce bump was reverted
    assert address.lower() == "0x" + generate_contract_address(sender, 0).hex()
