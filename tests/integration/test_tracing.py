"""Tracing on the real mining node (`poai node --dev --mine`): web3.py's debug_traceTransaction
with callTracer against the shape geth documents, the struct logger and prestateTracer against
the contracts' own code, `cast run` of a transaction that reverts one frame down, and
rpc_modules / admin_* as a local client sees them.

Relay.addThrough(n) calls Counter.add(n), which reverts with "too big" for n >= 100."""

from __future__ import annotations

import re
from typing import Any

import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from poai.chain.devaccounts import dev_accounts
from poai.chain.tracing.opcodes import op_name
from poai.compat.pyevm import generate_contract_address
from support.contract import relay_and_counter
from support.nodeproc import BIN, NodeProcess, run_tool
from web3 import Web3

pytestmark = pytest.mark.integration
HEX = re.compile(r"^0x[0-9a-f]*$")
ADDRESS = re.compile(r"^0x[0-9a-f]{40}$")
GAS = 300_000
# geth's callFrame JSON fields in its order (eth/tracers/native/gen_callframe_json.go)
FRAME_FIELDS = ("from", "gas", "gasUsed", "to", "input", "output", "error", "revertReason",
                "calls", "logs", "value", "type")


@pytest.fixture(scope="module")
def traced(poai_node: NodeProcess) -> dict[str, Any]:
    """Counter and Relay deployed and Relay called twice (7: fine; 500: reverts in Counter),
    all sent at once so they share blocks and the replays run earlier transactions first."""
    w3 = Web3(Web3.HTTPProvider(poai_node.url, request_kwargs={"timeout": 60}))
    acct = Account.from_key(dev_accounts()[8].private_key)  # unused by the other client tests
    arts = relay_and_counter()
    nonce = w3.eth.get_transaction_count(acct.address, "pending")
    sender = bytes.fromhex(acct.address[2:])
    counter = to_checksum_address(generate_contract_address(sender, nonce))
    relay = to_checksum_address(generate_contract_address(sender, nonce + 1))
    r = w3.eth.contract(address=relay, abi=arts["Relay"]["abi"])
    ctor_arg = bytes(12) + bytes.fromhex(counter[2:])
    payloads = [(None, arts["Counter"]["bytecode"]),
                (None, arts["Relay"]["bytecode"] + ctor_arg.hex()),
                (relay, r.encode_abi("addThrough", [7])),
                (relay, r.encode_abi("addThrough", [500]))]
    hashes = []
    for i, (to, data) in enumerate(payloads):
        tx = {"chainId": poai_node.chain_id, "nonce": nonce + i, "gas": GAS, "data": data,
              "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "type": 2, "value": 0}
        if to is not None:
            tx["to"] = to
        hashes.append(w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction))
    receipts = [w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.3)
                for h in hashes]
    assert [rc["status"] for rc in receipts] == [1, 1, 1, 0]
    assert receipts[0]["contractAddress"] == counter and receipts[1]["contractAddress"] == relay
    return {"w3": w3, "node": poai_node, "sender": acct.address.lower(), "counter": counter,
            "relay": relay, "hashes": ["0x" + bytes(h).hex() for h in hashes],
            "receipts": receipts, "calldata": [p[1] for p in payloads]}


def _raw_trace(t: dict[str, Any], index: int, config: dict[str, Any]) -> Any:
    reply = t["w3"].provider.make_request("debug_traceTransaction", [t["hashes"][index], config])
    assert "error" not in reply, reply
    return reply["result"]


def _check_frame_shape(frame: dict[str, Any]) -> None:
    """Every field geth documents, in its order, with its JSON type."""
    assert tuple(k for k in FRAME_FIELDS if k in frame) == tuple(frame), list(frame)
    assert {"from", "gas", "gasUsed", "input", "type"} <= set(frame)
    assert ADDRESS.match(frame["from"]) and (frame.get("to") is None or ADDRESS.match(frame["to"]))
    for key in ("gas", "gasUsed", "input", "output", "value"):
        if key in frame:
            assert HEX.match(frame[key]), (key, frame[key])
    for child in frame.get("calls", []):
        _check_frame_shape(child)


def test_call_tracer_shape_through_web3(traced: dict[str, Any]) -> None:
    t = traced
    relay, counter = t["relay"].lower(), t["counter"].lower()
    bad = _raw_trace(t, 3, {"tracer": "callTracer", "tracerConfig": {"withLog": True}})
    _check_frame_shape(bad)
    assert list(bad) == ["from", "gas", "gasUsed", "to", "input", "output", "error",
                         "revertReason", "calls", "value", "type"]
    assert (bad["from"], bad["to"], bad["type"], bad["value"]) == (t["sender"], relay, "CALL",
                                                                  "0x0")
    assert bad["gas"] == hex(GAS) and bad["gasUsed"] == hex(t["receipts"][3]["gasUsed"])
    assert bad["input"] == t["calldata"][3]
    assert bad["error"] == "execution reverted" and bad["revertReason"] == "too big"
    (inner,) = bad["calls"]  # the reverting frame, named
    assert (inner["from"], inner["to"], inner["type"]) == (relay, counter, "CALL")
    assert inner["error"] == "execution reverted" and inner["revertReason"] == "too big"
    assert inner["input"] == "0x" + keccak(text="add(uint256)")[:4].hex() + f"{500:064x}"
    assert bad["output"] == inner["output"] and "logs" not in inner

    ok = _raw_trace(t, 2, {"tracer": "callTracer", "tracerConfig": {"withLog": True}})
    _check_frame_shape(ok)
    assert "error" not in ok and "output" not in ok  # addThrough returns nothing
    (log,) = ok["calls"][0]["logs"]
    (receipt_log,) = t["receipts"][2]["logs"]
    assert log == {"address": counter,
                   "topics": ["0x" + bytes(x).hex() for x in receipt_log["topics"]],
                   "data": "0x" + f"{7:064x}", "index": hex(receipt_log["logIndex"]),
                   "position": "0x0"}

    # web3.py's own debug_traceTransaction (its CallTrace formatters) reads the same frames
    web3_trace = t["w3"].geth.debug.trace_transaction(t["hashes"][3], {"tracer": "callTracer"})
    assert web3_trace["to"] == t["relay"] and web3_trace["gasUsed"] == t["receipts"][3]["gasUsed"]
    assert web3_trace["calls"][0]["to"] == t["counter"]
    assert web3_trace["calls"][0]["revertReason"] == "too big"
    assert bytes(web3_trace["output"]) == bytes.fromhex(bad["output"][2:])


def test_struct_logger_follows_the_contracts_code(traced: dict[str, Any]) -> None:
    t = traced
    code = {1: bytes(t["w3"].eth.get_code(t["relay"])),
            2: bytes(t["w3"].eth.get_code(t["counter"]))}
    res = _raw_trace(t, 2, {"enableMemory": True})
    assert res["failed"] is False and res["gas"] == t["receipts"][2]["gasUsed"]
    steps = res["structLogs"]
    assert {s["depth"] for s in steps} == {1, 2}
    for s in steps:  # each step is the opcode at its pc in the code of its frame
        assert s["op"] == op_name(code[s["depth"]][s["pc"]]), s
    for a, b in zip(steps, steps[1:], strict=False):
        if a["depth"] == b["depth"] and a["op"] not in ("JUMP", "JUMPI", "CALL", "STATICCALL"):
            push = int(a["op"][4:]) if a["op"].startswith("PUSH") else 0
            assert b["pc"] == a["pc"] + 1 + push and b["gas"] == a["gas"] - a["gasCost"]
    (call,) = [s for s in steps if s["op"] == "CALL"]
    first_inner = steps[steps.index(call) + 1]
    assert first_inner["depth"] == 2 and first_inner["pc"] == 0
    assert int(call["stack"][-2], 16) == int(t["counter"], 16)  # the callee, under the gas
    (sstore,) = [s for s in steps if s["op"] == "SSTORE"]
    assert sstore["depth"] == 2 and sstore["storage"] == {"0x" + "00" * 32: "0x" + f"{7:064x}"}


def test_prestate_tracer_and_diff(traced: dict[str, Any]) -> None:
    t = traced
    counter, relay = t["counter"].lower(), t["relay"].lower()
    pre = _raw_trace(t, 2, {"tracer": "prestateTracer"})
    assert {t["sender"], relay, counter} <= set(pre)
    assert pre[counter]["code"] == "0x" + bytes(t["w3"].eth.get_code(t["counter"])).hex()
    assert pre[counter]["storage"] == {"0x" + "00" * 32: "0x" + "00" * 32}
    diff = _raw_trace(t, 2, {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}})
    assert diff["post"][counter] == {"storage": {"0x" + "00" * 32: "0x" + f"{7:064x}"}}
    assert diff["post"][t["sender"]]["nonce"] == diff["pre"][t["sender"]]["nonce"] + 1


def test_trace_block_by_number_lists_every_transaction(traced: dict[str, Any]) -> None:
    t = traced
    number = t["receipts"][3]["blockNumber"]
    block = t["w3"].eth.get_block(number)
    out = t["node"].call("debug_traceBlockByNumber", hex(number), {"tracer": "callTracer"})
    assert [r["txHash"] for r in out] == ["0x" + bytes(h).hex() for h in block["transactions"]]
    assert out[-1]["result"]["revertReason"] == "too big"


def test_cast_run_names_the_reverting_frame(traced: dict[str, Any]) -> None:
    t = traced
    out = run_tool([str(BIN / "cast"), "run", "--rpc-url", t["node"].url, t["hashes"][3]])
    lines = out.splitlines()
    outer = next(i for i, line in enumerate(lines) if t["relay"] in line)
    inner = next(i for i, line in enumerate(lines) if t["counter"] in line and i > outer)
    assert "1003e2d2" in lines[inner] or "add" in lines[inner]  # Counter.add(500)
    reverts = [i for i, line in enumerate(lines) if "[Revert] too big" in line]
    assert len(reverts) == 2 and inner < reverts[0]
    assert f"Gas used: {t['receipts'][3]['gasUsed']}" in out


def test_rpc_modules_and_admin_on_loopback(traced: dict[str, Any]) -> None:
    node = traced["node"]
    assert {"admin", "debug", "eth", "net", "rpc", "web3", "txpool", "poai"} <= set(
        node.call("rpc_modules"))
    info = node.call("admin_nodeInfo")
    assert info["protocols"]["poai"]["network"] == node.chain_id
    assert info["protocols"]["poai"]["head"].startswith("0x")
    assert info["enode"].endswith("/p2p/" + info["id"]) and info["ports"]["listener"] > 0
    assert node.call("admin_peers") == []
