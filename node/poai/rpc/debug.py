"""The debug_trace* namespace, shaped as geth's (eth/tracers/api.go).

- debug_traceTransaction(txHash, config?): the transaction re-executed on its block's parent
  state after the block's earlier transactions;
- debug_traceCall(call, block?, config?): a call traced on a block's state (as eth_call, with
  `stateOverrides`);
- debug_traceBlockByNumber / debug_traceBlockByHash(block, config?): every transaction of a
  block, `[{"txHash", "result"}]`.

`config` is geth's TraceConfig: `tracer` ("callTracer", "prestateTracer"; absent: the struct
logger with `enableMemory`, `disableStack`, `disableStorage`, `enableReturnData`, `limit`),
`tracerConfig` (callTracer: `onlyTopCall`, `withLog`; prestateTracer: `diffMode`,
`disableCode`, `disableStorage`, `includeEmpty`) and `timeout` (a Go duration, default "5s").
A malformed config is -32602 naming what is wrong.  Tracing runs under Node.lock, like every
chain read: `timeout` bounds each transaction's trace.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from eth.exceptions import BlockNotFound, HeaderNotFound
from eth.vm.spoof import SpoofTransaction
from eth_utils.exceptions import ValidationError

from poai.chain.tracing import (
    CallTracer,
    CallTracerConfig,
    PrestateTracer,
    PrestateTracerConfig,
    StructLogConfig,
    StructLogger,
    TraceAborted,
    Tracer,
    replay_block,
    trace_transaction_on,
)
from poai.rpc import execution
from poai.rpc.context import RpcContext
from poai.rpc.errors import InvalidParams, ServerError
from poai.rpc.hexutil import param, parse_hash, parse_qty
from poai.rpc.params import BLOCK, BLOCK_OR_HASH, HASH, STATE_OVERRIDES, TRANSACTION, Arg

DEFAULT_TIMEOUT = 5.0  # seconds, geth's defaultTraceTimeout
MAX_TIMEOUT = 300.0  # the trace holds Node.lock: no longer than this, whatever is asked


@dataclass(frozen=True)
class TraceOptions:
    make_tracer: Callable[[], Tracer]
    timeout: float


# -- config parsing ---------------------------------------------------------------------------

# Messages name the field within the config; TRACE_CONFIG puts the argument's name first.

def _bool(config: Mapping[str, Any], key: str, where: str = "") -> bool:
    value = config.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidParams(f"{where}{key}: expected true or false")
    return value


def _fields(config: Mapping[str, Any], allowed: set[str], what: str = "") -> None:
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise InvalidParams(f"unknown {what}field {unknown[0]!r} "
                            f"(known: {', '.join(sorted(allowed))})")


_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
         "h": 3600.0}


def parse_duration(text: Any) -> float:
    """A Go duration ("5s", "1m30s", "250ms") in seconds, as geth's `timeout`."""
    if not isinstance(text, str) or not text:
        raise InvalidParams(f"timeout {text!r}: expected a duration such as \"10s\"")
    if text == "0":
        return 0.0
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION.match(text, pos)
        if m is None:
            raise InvalidParams(f"timeout {text!r}: expected a duration such as "
                                "\"10s\" or \"500ms\"")
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    return total


_TRACE_FIELDS = {"tracer", "tracerConfig", "timeout", "reexec", "enableMemory",
                 "disableStack", "disableStorage", "enableReturnData", "limit", "debug"}
_CALL_FIELDS = _TRACE_FIELDS | {"stateOverrides", "blockOverrides", "txIndex"}
_TRACERS = ("callTracer", "prestateTracer")


def parse_trace_config(config: Any, *, allowed: set[str] | None = None) -> TraceOptions:
    """geth's TraceConfig -> which tracer to run and for how long; -32602 when malformed."""
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise InvalidParams("expected an object")
    _fields(config, allowed or _TRACE_FIELDS)
    timeout = DEFAULT_TIMEOUT
    if config.get("timeout") is not None:
        timeout = min(parse_duration(config["timeout"]), MAX_TIMEOUT)
    name = config.get("tracer")
    tracer_config = config.get("tracerConfig")
    if tracer_config is not None and not isinstance(tracer_config, dict):
        raise InvalidParams("tracerConfig: expected an object")
    tracer_config = tracer_config or {}
    make: Callable[[], Tracer]
    if name is None or name == "":
        limit = config.get("limit", 0)
        if limit is None:
            limit = 0
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise InvalidParams("limit: expected a non-negative integer")
        slc = StructLogConfig(
            enable_memory=_bool(config, "enableMemory"),
            disable_stack=_bool(config, "disableStack"),
            disable_storage=_bool(config, "disableStorage"),
            enable_return_data=_bool(config, "enableReturnData"),
            limit=limit)
        make = lambda: StructLogger(slc)  # noqa: E731
    elif name == "callTracer":
        _fields(tracer_config, {"onlyTopCall", "withLog"}, "tracerConfig ")
        ctc = CallTracerConfig(only_top_call=_bool(tracer_config, "onlyTopCall", "tracerConfig."),
                               with_log=_bool(tracer_config, "withLog", "tracerConfig."))
        make = lambda: CallTracer(ctc)  # noqa: E731
    elif name == "prestateTracer":
        _fields(tracer_config, {"diffMode", "disableCode", "disableStorage", "includeEmpty"},
                "tracerConfig ")
        ptc = PrestateTracerConfig(
            diff_mode=_bool(tracer_config, "diffMode", "tracerConfig."),
            disable_code=_bool(tracer_config, "disableCode", "tracerConfig."),
            disable_storage=_bool(tracer_config, "disableStorage", "tracerConfig."),
            include_empty=_bool(tracer_config, "includeEmpty", "tracerConfig."))
        if ptc.diff_mode and ptc.include_empty:
            raise InvalidParams("tracerConfig: cannot use diffMode with includeEmpty")
        make = lambda: PrestateTracer(ptc)  # noqa: E731
    elif isinstance(name, str):
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise InvalidParams(f"tracer not found: {shown!r} (this node has the struct logger "
                            f"and {', '.join(_TRACERS)}; no JavaScript tracers)")
    else:
        raise InvalidParams("tracer: expected a string")
    return TraceOptions(make, timeout)


def TRACE_CONFIG(value: Any, name: str) -> None:
    try:
        parse_trace_config(value)
    except InvalidParams as exc:
        raise InvalidParams(f"invalid {name}: {exc.message}") from None


def TRACE_CALL_CONFIG(value: Any, name: str) -> None:
    try:
        parse_trace_config(value, allowed=_CALL_FIELDS)
        if value.get("blockOverrides") is not None:
            raise InvalidParams("blockOverrides: not supported by this node (use "
                                "stateOverrides)")
        if value.get("txIndex") is not None:
            raise InvalidParams("txIndex: not supported by this node (trace on the block "
                                "before, with debug_traceBlock*)")
    except InvalidParams as exc:
        raise InvalidParams(f"invalid {name}: {exc.message}") from None
    if value.get("stateOverrides") is not None:
        STATE_OVERRIDES(value["stateOverrides"], f"{name}.stateOverrides")


# -- running ----------------------------------------------------------------------------------

def _run(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except TraceAborted as exc:
        raise ServerError(str(exc)) from None


def _block_results(ctx: RpcContext, header: Any, options: TraceOptions) -> list[dict[str, Any]]:
    if header.block_number == 0:
        raise ServerError("genesis is not traceable")
    block = ctx.block(header)
    traced = replay_block(ctx.chain, block, lambda i: options.make_tracer(),
                          timeout=options.timeout)
    results: list[dict[str, Any]] = _run(
        lambda: [{"txHash": "0x" + t.tx_hash.hex(), "result": t.result} for t in traced])
    return results


def trace_transaction(ctx: RpcContext, params: list[Any]) -> Any:
    tx_hash = parse_hash(param(params, 0, "txHash"), "txHash")
    options = parse_trace_config(param(params, 1, "config", None))
    found = ctx.locate_transaction(tx_hash)
    if found is None:
        raise ServerError("transaction not found")
    header, index = found
    if header.block_number == 0:
        raise ServerError("genesis is not traceable")
    block = ctx.block(header)
    tracer = options.make_tracer()
    traced = replay_block(ctx.chain, block, lambda i: tracer if i == index else None,
                          upto=index, timeout=options.timeout)
    results = _run(lambda: list(traced))
    return results[-1].result


def trace_call(ctx: RpcContext, params: list[Any]) -> Any:
    raw_config = param(params, 2, "config", None) or {}
    options = parse_trace_config(raw_config, allowed=_CALL_FIELDS)
    req = execution.CallRequest.parse(param(params, 0, "transaction"))
    block_id = param(params, 1, "block", "latest")
    if block_id == "pending":
        raise ServerError("tracing on top of pending is not supported")
    header = ctx.resolve_block(block_id)
    assert header is not None  # resolve_block raises for an unknown block
    overrides = raw_config.get("stateOverrides")
    with execution.call_state(ctx.chain, header, overrides) as (vm, state):
        tx = _call_transaction(vm, state, req, header.gas_limit)
        try:
            return _run(lambda: trace_transaction_on(vm, state, tx, options.make_tracer(),
                                                     timeout=options.timeout))
        except ValidationError as exc:
            text = str(exc)
            if "balance" in text or "afford" in text:
                text = "insufficient funds for gas * price + value"
            raise ServerError(f"tracing failed: {text}") from None


def _call_transaction(vm: Any, state: Any, req: execution.CallRequest, gas_limit: int) -> Any:
    """The call as a transaction from `req.sender` (spoofed: no signature), nonce the
    sender's, gas capped as eth_call caps it."""
    gas = req.gas if req.gas is not None else gas_limit
    if req.gas_price > 0:
        balance = state.get_balance(req.sender)
        if balance < req.value:
            raise ServerError("insufficient funds for transfer")
        gas = min(gas, (balance - req.value) // req.gas_price)
    signed = vm.create_transaction(nonce=state.get_nonce(req.sender), gas_price=req.gas_price,
                                   gas=gas, to=req.to, value=req.value, data=req.data,
                                   v=27, r=1, s=1)
    if gas < signed.intrinsic_gas:
        if req.gas is None or gas < req.gas:  # capped by what the balance pays for
            raise ServerError("tracing failed: insufficient funds for gas * price + value")
        raise ServerError(f"tracing failed: intrinsic gas too low: have {gas}, want "
                          f"{signed.intrinsic_gas}")
    return SpoofTransaction(signed, sender=req.sender, access_list=req.access_list,
                            validate=lambda: None)


def trace_block_by_number(ctx: RpcContext, params: list[Any]) -> Any:
    block_id = param(params, 0, "block")
    options = parse_trace_config(param(params, 1, "config", None))
    header = ctx.resolve_block(block_id, required=False)
    if header is None:
        raise ServerError(f"block #{parse_qty(block_id, 'block')} not found")
    return _block_results(ctx, header, options)


def trace_block_by_hash(ctx: RpcContext, params: list[Any]) -> Any:
    block_hash = parse_hash(param(params, 0, "blockHash"), "blockHash")
    options = parse_trace_config(param(params, 1, "config", None))
    try:
        header = ctx.chain.get_block_header_by_hash(block_hash)  # type: ignore[arg-type]
    except (HeaderNotFound, BlockNotFound):
        raise ServerError(f"block 0x{block_hash.hex()} not found") from None
    return _block_results(ctx, header, options)


METHODS = {
    "debug_traceTransaction": trace_transaction,
    "debug_traceCall": trace_call,
    "debug_traceBlockByNumber": trace_block_by_number,
    "debug_traceBlockByHash": trace_block_by_hash,
}

PARAMS: dict[str, tuple[Arg, ...]] = {
    "debug_traceTransaction": (Arg("txHash", HASH), Arg("config", TRACE_CONFIG, optional=True)),
    "debug_traceCall": (Arg("transaction", TRANSACTION),
                        Arg("block", BLOCK_OR_HASH, optional=True),
                        Arg("config", TRACE_CALL_CONFIG, optional=True)),
    "debug_traceBlockByNumber": (Arg("block", BLOCK), Arg("config", TRACE_CONFIG, optional=True)),
    "debug_traceBlockByHash": (Arg("blockHash", HASH), Arg("config", TRACE_CONFIG, optional=True)),
}
