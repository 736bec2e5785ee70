"""The tracers (poai.chain.tracing) on hand-assembled contracts whose every opcode is known:
the struct logger's steps, gas costs, stack and storage; the call tree of a nested call and a
reverting frame; the prestate and its diff; the replay reproducing the block's own receipts."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils.crypto import keccak
from poai.chain.tracing import (
    CallTracer,
    CallTracerConfig,
    PrestateTracer,
    PrestateTracerConfig,
    StructLogConfig,
    StructLogger,
    TraceAborted,
    replay_block,
)
from poai.chain.tracing.engine import TracingComputation
from support.tracing_contracts import A_GAS, A_GAS_AGAIN, A_RUNTIME, A_STEPS, traced_chain

# D self-destructs: py-evm warns about the opcode on every run
pytestmark = pytest.mark.filterwarnings("ignore:SELFDESTRUCT opcode:DeprecationWarning")


@pytest.fixture(scope="module")
def chain() -> dict[str, Any]:
    return traced_chain()


def trace(chain: dict[str, Any], index: int, tracer: Any) -> Any:
    (out,) = replay_block(chain["node"].chain, chain["block"],
                          lambda i: tracer if i == index else None, upto=index)
    return out.result


def test_struct_logger_steps_are_the_known_opcodes(chain: dict[str, Any]) -> None:
    res = trace(chain, 0, StructLogger(StructLogConfig(enable_memory=True)))
    steps = res["structLogs"]
    assert [(s["pc"], s["op"], s["gasCost"]) for s in steps] == A_STEPS
    assert all(s["depth"] == 1 for s in steps)
    first_gas = 200_000 - 21_000
    assert steps[0]["gas"] == first_gas
    for before, after in zip(steps, steps[1:], strict=False):  # every step pays its cost
        assert after["gas"] == before["gas"] - before["gasCost"]
    assert res["gas"] == 21_000 + A_GAS
    assert res["failed"] is False and res["returnValue"] == "0x" + f"{0x2a:064x}"
    sstore, sload = steps[2], steps[7]
    assert sstore["stack"] == ["0x2a", "0x1"]  # value under key, key on top
    slot = "0x" + "00" * 31 + "01"
    word = "0x" + f"{0x2a:064x}"
    assert sstore["storage"] == {slot: word} and sload["storage"] == {slot: word}
    assert "storage" not in steps[0] and "memory" not in steps[0]  # none yet / empty memory
    assert steps[-1]["memory"] == [word]  # RETURN sees the word MSTORE wrote
    assert steps[0]["stack"] == [] and "refund" not in steps[0]


def test_struct_logger_sees_the_blocks_earlier_writes(chain: dict[str, Any]) -> None:
    """Call 3 of block 2 finds slot 1 already 0x2a (call 1 wrote it): a no-op SSTORE."""
    steps = trace(chain, 2, StructLogger(StructLogConfig(disable_stack=True,
                                                          disable_storage=True)))["structLogs"]
    assert steps[2]["op"] == "SSTORE" and steps[2]["gasCost"] == 2200  # cold, unchanged
    assert all("stack" not in s and "storage" not in s for s in steps)


def test_call_tracer_names_the_reverting_frame(chain: dict[str, Any]) -> None:
    res = trace(chain, 1, CallTracer(CallTracerConfig(with_log=True)))
    a, b = "0x" + chain["a"].hex(), "0x" + chain["b"].hex()
    assert list(res) == ["from", "gas", "gasUsed", "to", "input", "output", "error",
                         "revertReason", "calls", "value", "type"]
    assert res["type"] == "CALL" and res["to"] == b and res["gas"] == hex(200_000)
    assert res["error"] == "execution reverted" and res["revertReason"] == "assert(false)"
    assert res["output"] == "0x4e487b71" + f"{1:064x}"
    (inner,) = res["calls"]
    assert inner["type"] == "CALL" and inner["from"] == b and inner["to"] == a
    assert inner["output"] == "0x" + f"{0x2a:064x}" and "error" not in inner
    assert inner["value"] == "0x0" and inner["input"] == "0x"
    assert "logs" not in inner  # A's log was undone with B's revert (withLog drops it)
    assert int(inner["gasUsed"], 16) == A_GAS_AGAIN  # call 1 of the block wrote slot 1


def test_call_tracer_logs_and_only_top_call(chain: dict[str, Any]) -> None:
    res = trace(chain, 0, CallTracer(CallTracerConfig(with_log=True)))
    assert res["logs"] == [{"address": "0x" + chain["a"].hex(), "topics": [], "data": "0x",
                            "index": "0x0", "position": "0x0"}]
    top = trace(chain, 1, CallTracer(CallTracerConfig(only_top_call=True)))
    assert "calls" not in top and top["revertReason"] == "assert(false)"


def test_struct_logger_call_cost_includes_the_gas_handed_on(chain: dict[str, Any]) -> None:
    steps = trace(chain, 1, StructLogger())["structLogs"]
    call = next(s for s in steps if s["op"] == "CALL")
    inner = [s for s in steps if s["depth"] == 2]
    assert [(s["pc"], s["op"]) for s in inner] == [(pc, op) for pc, op, _ in A_STEPS]
    # geth: CALL's cost = access of A (cold: 2600) + a word of memory for the output (3)
    # + the gas handed to A (all but 1/64 of what is left)
    handed = inner[0]["gas"]
    assert call["gasCost"] == 2603 + handed
    assert handed == (call["gas"] - 2603) - (call["gas"] - 2603) // 64
    after_call = steps[steps.index(call) + len(inner) + 1]
    assert after_call["depth"] == 1 and after_call["op"] == "POP"
    assert after_call["gas"] == call["gas"] - call["gasCost"] + handed - A_GAS_AGAIN
    assert steps[-1]["op"] == "REVERT" and steps[-1]["depth"] == 1


def test_prestate_and_diff(chain: dict[str, Any]) -> None:
    a, sender = "0x" + chain["a"].hex(), "0x" + chain["sender"].hex()
    pre = trace(chain, 0, PrestateTracer())
    slot = "0x" + "00" * 31 + "01"
    assert pre[a]["code"] == "0x" + A_RUNTIME.hex() and pre[a]["nonce"] == 1
    assert pre[a]["storage"] == {slot: "0x" + "00" * 32}
    assert pre[sender]["nonce"] == 2 and "code" not in pre[sender]
    diff = trace(chain, 0, PrestateTracer(PrestateTracerConfig(diff_mode=True)))
    assert set(diff) == {"post", "pre"}
    assert diff["post"][a] == {"storage": {slot: "0x" + f"{0x2a:064x}"}}
    assert "storage" not in diff["pre"][a]  # the slot was zero: left out of pre
    assert diff["post"][sender]["nonce"] == 3
    assert int(diff["post"][sender]["balance"], 16) < int(diff["pre"][sender]["balance"], 16)
    nocode = trace(chain, 0, PrestateTracer(PrestateTracerConfig(disable_code=True,
                                                                 disable_storage=True)))
    assert "code" not in nocode[a] and "storage" not in nocode[a] and "codeHash" in nocode[a]


def test_replay_reproduces_the_blocks_receipts(chain: dict[str, Any]) -> None:
    """Each transaction traced in turn uses exactly the gas its receipt says (so the replay
    runs the block as import ran it), and a plain transfer has no frames below the top."""
    node, block = chain["node"], chain["block"]
    traced = list(replay_block(node.chain, block, lambda i: CallTracer()))
    receipts = node.chain.chaindb.get_receipts(block.header,
                                               node.chain.get_vm().get_receipt_builder())
    used = [r.gas_used - (receipts[i - 1].gas_used if i else 0) for i, r in enumerate(receipts)]
    assert [int(t.result["gasUsed"], 16) for t in traced] == used
    assert [t.tx_hash for t in traced] == [tx.hash for tx in block.transactions]
    assert "calls" not in traced[3].result and traced[3].result["gasUsed"] == hex(21_000)


def test_call_tracer_frame_kinds(chain: dict[str, Any]) -> None:
    """STATICCALL (no value; a write inside is "write protection"), DELEGATECALL (from D to
    A's code, value passed on), CREATE2 and SELFDESTRUCT as geth reports them."""
    (out,) = replay_block(chain["node"].chain, chain["block3"],
                          lambda i: CallTracer(CallTracerConfig(with_log=True)) if i else None)
    res = out.result
    a, d = "0x" + chain["a"].hex(), "0x" + chain["d"].hex()
    assert "error" not in res and res["to"] == d
    static, delegate, create2, destruct = res["calls"]
    assert (static["type"], static["from"], static["to"]) == ("STATICCALL", d, a)
    assert static["error"] == "write protection" and "value" not in static
    assert static["gas"] == hex(10_000) and static["gasUsed"] == hex(10_000)  # all burnt
    assert (delegate["type"], delegate["from"], delegate["to"]) == ("DELEGATECALL", d, a)
    assert delegate["value"] == "0x0" and delegate["output"] == "0x" + f"{0x2a:064x}"
    assert delegate["logs"][0]["address"] == d  # A's LOG0 ran in D's context
    created = keccak(b"\xff" + chain["d"] + (1).to_bytes(32, "big") + keccak(b""))[12:]
    assert (create2["type"], create2["to"], create2["input"]) == ("CREATE2",
                                                                 "0x" + created.hex(), "0x")
    assert (destruct["type"], destruct["to"], destruct["gas"], destruct["value"]) == (
        "SELFDESTRUCT", "0x" + "22" * 20, "0x0", "0x0")
    steps = next(iter(replay_block(chain["node"].chain, chain["block3"],
                                   lambda i: StructLogger() if i else None))).result
    ops = [s["op"] for s in steps["structLogs"] if s["depth"] == 1]
    assert ops[-1] == "SELFDESTRUCT" and ops.count("CREATE2") == 1
    diff = next(iter(replay_block(chain["node"].chain, chain["block3"], lambda i: PrestateTracer(
        PrestateTracerConfig(diff_mode=True)) if i else None))).result
    slot = "0x" + "00" * 31 + "01"
    assert diff["post"][d]["storage"] == {slot: "0x" + f"{0x2a:064x}"}  # via DELEGATECALL
    assert diff["post"]["0x" + created.hex()] == {"nonce": 1}


def test_timeout_aborts_the_trace(chain: dict[str, Any]) -> None:
    with pytest.raises(TraceAborted):
        list(replay_block(chain["node"].chain, chain["block"], lambda i: StructLogger(),
                          timeout=-1))


def test_not_tracing_leaves_pyevm_classes_alone(chain: dict[str, Any]) -> None:
    """Tracing swaps the computation class on the traced state only, for the one transaction."""
    node = chain["node"]
    state = node.chain.get_vm().state
    trace(chain, 0, CallTracer())
    assert not issubclass(state.computation_class, TracingComputation)
    assert not issubclass(type(state).computation_class, TracingComputation)
