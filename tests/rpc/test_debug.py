"""debug_trace* over JSON-RPC (poai.rpc.debug): geth's result shapes, block and call tracing,
and a -32602 naming the problem for every malformed trace config."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from support.devnode import ACCOUNTS
from support.rpcclient import Rpc, RpcFailure, ServerThread
from support.tracing_contracts import A_RUNTIME, A_STEPS, deploy_code, traced_chain

# D self-destructs: py-evm warns about the opcode on every run
pytestmark = pytest.mark.filterwarnings("ignore:SELFDESTRUCT opcode:DeprecationWarning")


@pytest.fixture(scope="module")
def chain() -> Iterator[dict[str, Any]]:
    data = traced_chain()
    st = ServerThread(data["node"])
    data["rpc"] = Rpc(st.server.url)
    data["hashes"] = ["0x" + tx.hash.hex() for tx in data["block"].transactions]
    yield data
    st.close()


def test_trace_transaction_default_is_the_struct_logger(chain: dict[str, Any]) -> None:
    res = chain["rpc"].call("debug_traceTransaction", chain["hashes"][0])
    assert list(res) == ["gas", "failed", "returnValue", "structLogs"]
    first = res["structLogs"][0]
    assert list(first) == ["pc", "op", "gas", "gasCost", "depth", "stack"]
    assert [(s["pc"], s["op"], s["gasCost"]) for s in res["structLogs"]] == A_STEPS
    assert res["failed"] is False and isinstance(res["gas"], int)


def test_trace_transaction_call_tracer(chain: dict[str, Any]) -> None:
    res = chain["rpc"].call("debug_traceTransaction", chain["hashes"][1],
                            {"tracer": "callTracer", "tracerConfig": {"withLog": True}})
    assert res["error"] == "execution reverted" and res["revertReason"] == "assert(false)"
    assert res["calls"][0]["to"] == "0x" + chain["a"].hex()


def test_trace_of_a_creation(chain: dict[str, Any]) -> None:
    deploy_a, _ = chain["rpc"].call("debug_traceBlockByNumber", "0x1", {"tracer": "callTracer"})
    res = deploy_a["result"]
    assert res["type"] == "CREATE" and res["to"] == "0x" + chain["a"].hex()
    assert res["input"] == "0x" + deploy_code(A_RUNTIME).hex()
    assert res["output"] == "0x" + A_RUNTIME.hex()
    steps = chain["rpc"].call("debug_traceTransaction", deploy_a["txHash"])["structLogs"]
    assert [s["op"] for s in steps] == ["PUSH1", "PUSH1", "PUSH1", "CODECOPY", "PUSH1", "PUSH1",
                                        "RETURN"]


def test_trace_block_by_number_and_hash(chain: dict[str, Any]) -> None:
    rpc, block = chain["rpc"], chain["block"]
    config = {"tracer": "callTracer", "tracerConfig": {"onlyTopCall": True}}
    by_number = rpc.call("debug_traceBlockByNumber", hex(block.number), config)
    by_hash = rpc.call("debug_traceBlockByHash", "0x" + block.hash.hex(), config)
    assert by_number == by_hash
    assert [r["txHash"] for r in by_number] == chain["hashes"]
    assert all(list(r) == ["txHash", "result"] for r in by_number)
    assert [r["result"].get("error") for r in by_number] == [
        None, "execution reverted", None, None]
    latest = rpc.call("debug_traceBlockByNumber", "latest", {"tracer": "prestateTracer"})
    assert len(latest) == 2  # block 3: deploy D, call D


def test_trace_call_with_state_overrides(chain: dict[str, Any]) -> None:
    rpc, a = chain["rpc"], "0x" + chain["a"].hex()
    caller = ACCOUNTS[2].address
    res = rpc.call("debug_traceCall", {"from": caller, "to": a}, "latest",
                   {"tracer": "callTracer"})
    assert res["from"] == caller.lower() and res["to"] == a and res["type"] == "CALL"
    assert res["output"] == "0x" + f"{0x2a:064x}"
    # A's code replaced for this call only: return 0xff
    returns_ff = "0x60ff60005260206000f3"
    over = rpc.call("debug_traceCall", {"from": caller, "to": a}, "latest",
                    {"tracer": "callTracer", "stateOverrides": {a: {"code": returns_ff}}})
    assert over["output"] == "0x" + f"{0xff:064x}"
    steps = rpc.call("debug_traceCall", {"from": caller, "to": a})["structLogs"]
    assert [s["op"] for s in steps] == [op for _, op, _ in A_STEPS]
    pre = rpc.call("debug_traceCall", {"from": caller, "to": a}, "latest",
                   {"tracer": "prestateTracer"})
    assert pre[a]["storage"] == {"0x" + "00" * 31 + "01": "0x" + f"{0x2a:064x}"}


def _error(rpc: Rpc, method: str, *params: Any) -> tuple[int, str]:
    with pytest.raises(RpcFailure) as info:
        rpc.call(method, *params)
    return info.value.code, str(info.value)


@pytest.mark.parametrize(("config", "words"), [
    ({"tracer": "4byteTracerX"}, "tracer not found"),
    ({"tracer": 7}, "tracer: expected a string"),
    ({"tracer": "callTracer", "tracerConfig": []}, "tracerConfig: expected an object"),
    ({"tracer": "callTracer", "tracerConfig": {"onlyTopcall": True}},
     "unknown tracerConfig field 'onlyTopcall'"),
    ({"tracer": "callTracer", "tracerConfig": {"withLog": "yes"}}, "withLog"),
    ({"tracer": "prestateTracer", "tracerConfig": {"diffMode": True, "includeEmpty": True}},
     "diffMode with includeEmpty"),
    ({"timeout": "5 seconds"}, "timeout '5 seconds'"),
    ({"timeout": 5}, "timeout 5"),
    ({"limit": -1}, "limit"),
    ({"enableMemory": 1}, "enableMemory"),
    ({"tracers": "callTracer"}, "unknown field 'tracers'"),
    ("callTracer", "expected an object"),
])
def test_malformed_trace_config_is_invalid_params(chain: dict[str, Any], config: Any,
                                                  words: str) -> None:
    code, message = _error(chain["rpc"], "debug_traceTransaction", chain["hashes"][0], config)
    assert code == -32602 and "\n" not in message
    assert message.startswith("invalid argument 1 (config): ") and words in message


@pytest.mark.parametrize(("config", "words"), [
    ({"blockOverrides": {"number": "0x1"}}, "blockOverrides"),
    ({"txIndex": "0x0"}, "txIndex"),
    ({"stateOverrides": {"0x12": {}}}, "stateOverrides"),
])
def test_malformed_trace_call_config_is_invalid_params(chain: dict[str, Any], config: Any,
                                                       words: str) -> None:
    code, message = _error(chain["rpc"], "debug_traceCall", {"to": "0x" + "11" * 20},
                           "latest", config)
    assert code == -32602 and message.startswith("invalid argument 2 (config)")
    assert words in message


def test_trace_errors_in_geths_words(chain: dict[str, Any]) -> None:
    rpc = chain["rpc"]
    assert _error(rpc, "debug_traceTransaction", "0x" + "ab" * 32) == (
        -32000, "transaction not found")
    assert _error(rpc, "debug_traceBlockByNumber", "0x0") == (-32000, "genesis is not traceable")
    assert _error(rpc, "debug_traceBlockByNumber", "0x99") == (-32000, "block #153 not found")
    assert _error(rpc, "debug_traceBlockByHash", "0x" + "cd" * 32)[1].endswith("not found")
    assert _error(rpc, "debug_traceCall", {"to": "0x" + "11" * 20}, "pending")[1] == (
        "tracing on top of pending is not supported")
    assert _error(rpc, "debug_traceTransaction", chain["hashes"][0], {"timeout": "1ns"}) == (
        -32000, "execution timeout")
    assert _error(rpc, "debug_traceTransaction", "0x12")[0] == -32602
    a, poor = "0x" + chain["a"].hex(), "0x" + "99" * 20
    assert _error(rpc, "debug_traceCall", {"to": a, "gas": "0x1"}) == (
        -32000, "tracing failed: intrinsic gas too low: have 1, want 21000")
    assert _error(rpc, "debug_traceCall", {"to": a, "from": poor, "value": "0x1"}) == (
        -32000, "tracing failed: insufficient funds for gas * price + value")
    assert _error(rpc, "debug_traceCall", {"to": a, "from": poor, "gasPrice": "0x1"}) == (
        -32000, "tracing failed: insufficient funds for gas * price + value")
