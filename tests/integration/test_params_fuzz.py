"""Malformed parameters against a real mining node: every registered method answers generated
invalid arguments with -32602 (never a result, never an internal error), and the node keeps
mining. Invalid values come from per-kind generators written independently of the checker."""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from poai.api.service import InferenceService
from poai.rpc import admin, debug, dev, eth, params, poai, txpool, web3
from poai.rpc.filters import FilterManager
from support.nodeproc import NodeProcess

SIGNATURES: dict[str, tuple[params.Arg, ...]] = {
    **web3.PARAMS, **eth.PARAMS, **txpool.PARAMS, **poai.PARAMS, **dev.PARAMS,
    **FilterManager.params(), **InferenceService.params(), **debug.PARAMS, **admin.PARAMS,
    **admin.ADMIN_PARAMS}
EXAMPLES = 150 if os.environ.get("CI") else 400

junk_scalar = st.one_of(st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
                        st.text(max_size=8))
not_hex = st.one_of(
    st.text(alphabet="ghijklmnopqrstuvwxyz", min_size=1, max_size=10),  # no 0x prefix
    st.text(alphabet="0123456789abcdef", min_size=1, max_size=10).map(lambda s: "0x" + s + "g"),
    st.just(""), st.booleans(), st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                         max_size=2))
hex_bytes = st.binary(max_size=40).map(lambda b: "0x" + b.hex())
GOOD: dict[Any, Any] = {
    params.QTY: "0x1", params.DATA: "0x", params.ADDRESS: "0x" + "00" * 20,
    params.HASH: "0x" + "00" * 32, params.BOOL: False, params.STRING: "newHeads",
    params.BLOCK: "latest", params.BLOCK_OR_HASH: "latest", params.TRANSACTION: {},
    params.FILTER: {}, params.STATE_OVERRIDES: {}, params.PERCENTILES: [], params.ANY: None,
    debug.TRACE_CONFIG: {}, debug.TRACE_CALL_CONFIG: {},
}
BAD: dict[Any, st.SearchStrategy[Any]] = {
    params.QTY: st.one_of(not_hex, st.just("0x"), st.integers(max_value=-1)),
    params.DATA: st.one_of(not_hex, st.just("0xabc")),  # odd length
    params.ADDRESS: st.one_of(not_hex, st.just("0x"), hex_bytes.filter(lambda h: len(h) != 42)),
    params.HASH: st.one_of(not_hex, st.just("0x"), hex_bytes.filter(lambda h: len(h) != 66)),
    params.BOOL: st.one_of(st.integers(), st.text(max_size=8), st.just("latest"),
                           st.lists(st.booleans(), max_size=1)),
    params.STRING: st.one_of(st.integers(), st.booleans(), st.lists(st.text(), max_size=1)),
    params.BLOCK: st.one_of(st.sampled_from(["latest2", "head", "Latest", "0x", "0xq"]),
                            st.booleans(), st.integers(max_value=-1),
                            st.lists(st.integers(), max_size=2)),
    params.BLOCK_OR_HASH: st.one_of(st.sampled_from(["pending!", "0xzz", "0x"]), st.booleans(),
                                    st.just({}), st.just({"blockNumber": "nope"}),
                                    st.just({"blockHash": "0x12"})),
    params.TRANSACTION: st.one_of(junk_scalar, st.lists(st.integers(), max_size=2),
                                  st.fixed_dictionaries({"to": st.just("0x1234")}),
                                  st.fixed_dictionaries({"value": st.just("ten")}),
                                  st.fixed_dictionaries({"gas": st.booleans()})),
    params.FILTER: st.one_of(junk_scalar, st.lists(st.just({}), min_size=1, max_size=2),
                             st.just({"fromBlock": "yesterday"}), st.just({"address": "0x12"}),
                             st.just({"topics": "0x00"}), st.just({"topics": [1]})),
    params.STATE_OVERRIDES: st.one_of(junk_scalar, st.just({"0x12": {}}),
                                      st.just({"0x" + "11" * 20: {"balance": "lots"}})),
    params.PERCENTILES: st.one_of(junk_scalar, st.just([101]), st.just(["50"]),
                                  st.just([True])),
    debug.TRACE_CONFIG: st.one_of(junk_scalar, st.just({"tracer": "jsTracer"}),
                                  st.just({"tracer": "callTracer", "tracerConfig": 1}),
                                  st.just({"timeout": "soon"}), st.just({"limit": -1})),
    debug.TRACE_CALL_CONFIG: st.one_of(junk_scalar, st.just({"tracer": 1}),
                                       st.just({"blockOverrides": {}}),
                                       st.just({"stateOverrides": {"0x12": {}}})),
}


@st.composite
def malformed(draw: st.DrawFn) -> tuple[str, list[Any], str]:
    """A method, parameters that are invalid in one of three ways, and words the error names."""
    method = draw(st.sampled_from(sorted(SIGNATURES)))
    sig = SIGNATURES[method]
    checkable = [i for i, a in enumerate(sig) if a.check is not params.ANY]
    required = [i for i, a in enumerate(sig) if not a.optional]
    ways = ["too many"] + (["missing"] if required else []) + (["wrong"] if checkable else [])
    way = draw(st.sampled_from(ways))
    if way == "too many":
        return method, draw(st.lists(junk_scalar, min_size=len(sig) + 1,
                                     max_size=len(sig) + 2)), "too many arguments"
    valid = [GOOD[a.check] for a in sig]
    if way == "missing":
        cut = draw(st.sampled_from(required))
        absent = draw(st.sampled_from(["null", "short"]))
        args = valid[:cut] + ([None] + valid[cut + 1:] if absent == "null" else [])
        return method, args, f"missing value for required argument {cut}"
    index = draw(st.sampled_from(checkable))
    args = valid[:index] + [draw(BAD[sig[index].check])]
    return method, args, f"argument {index} ({sig[index].name})"


def post(url: str, body: Any) -> Any:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def test_every_method_refuses_malformed_params(poai_node: NodeProcess) -> None:
    start = int(poai_node.call("eth_blockNumber"), 16)
    seen: set[str] = set()

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(malformed())
    def check(case: tuple[str, list[Any], str]) -> None:
        method, args, words = case
        seen.add(method)
        reply = post(poai_node.url, {"jsonrpc": "2.0", "id": 7, "method": method,
                                     "params": args})
        assert "result" not in reply, (method, args, reply)
        assert reply["error"]["code"] == -32602, (method, args, reply)
        assert words in reply["error"]["message"], (method, args, reply)
        assert reply["id"] == 7

    check()
    assert len(seen) > len(SIGNATURES) // 2  # the draw covered most methods
    poai_node.wait_block(start + 2, timeout=120)  # still mining


def test_mixed_batch_is_answered_entry_by_entry(poai_node: NodeProcess) -> None:
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_getBlockByNumber", "params": ["latest"]},
        {"jsonrpc": "2.0", "id": 3, "method": "eth_getBlockByNumber",
         "params": ["latest", "latest"]},
        {"jsonrpc": "2.0", "id": 4, "method": "eth_getLogs", "params": [[]]},
        {"jsonrpc": "2.0", "id": 5, "method": "no_such_method", "params": []},
        {"id": 6, "method": "eth_chainId"},
        "not a request",
        {"jsonrpc": "2.0", "id": 8, "method": "eth_getBlockByNumber",
         "params": ["0x0", False]},
    ]
    replies = post(poai_node.url, batch)
    assert len(replies) == len(batch)
    by_id = {r["id"]: r for r in replies if r["id"] is not None}
    assert by_id[1]["result"] == hex(poai_node.chain_id)
    assert "missing value for required argument 1 (fullTransactions)" in \
        by_id[2]["error"]["message"]
    assert by_id[3]["error"]["code"] == -32602 and "fullTransactions" in \
        by_id[3]["error"]["message"]
    assert by_id[4]["error"]["code"] == -32602 and "expected an object" in \
        by_id[4]["error"]["message"]
    assert by_id[5]["error"]["code"] == -32601
    assert by_id[6]["error"]["code"] == -32600
    assert [r["error"]["code"] for r in replies if r["id"] is None] == [-32600]
    assert by_id[8]["result"]["number"] == "0x0"
