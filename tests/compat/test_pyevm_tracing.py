"""poai.compat.pyevm_tracing reads a py-evm computation's stack and memory as they are."""

from __future__ import annotations

from eth.vm.message import Message
from poai.compat.pyevm_tracing import memory_bytes, stack_size, stack_top, stack_values
from support.devnode import DevNode

SENDER = b"\x11" * 20


def _run(code: bytes) -> object:
    state = DevNode().chain.get_vm().state
    msg = Message(gas=100_000, to=b"\x22" * 20, sender=SENDER, value=0, data=b"", code=code)
    context = state.get_transaction_context_class()(gas_price=0, origin=SENDER)
    return state.computation_class.apply_computation(state, msg, context)


def test_stack_and_memory_as_pushed_and_stored() -> None:
    # PUSH1 0xff PUSH1 0 MSTORE; PUSH1 1 PUSH2 0x0203 PUSH32 (2**256 - 1); STOP
    code = bytes.fromhex("60ff600052" "6001" "610203" "7f" + "ff" * 32 + "00")
    computation = _run(code)
    assert stack_values(computation) == [1, 0x0203, 2**256 - 1]  # bottom first, as ints
    assert stack_size(computation) == 3
    assert stack_top(computation) == 2**256 - 1 and stack_top(computation, 2) == 1
    assert stack_top(computation, 3) is None
    assert memory_bytes(computation) == bytes(31) + b"\xff"
