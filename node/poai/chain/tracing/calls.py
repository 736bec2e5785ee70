"""geth's `callTracer` (eth/tracers/native/call.go): the transaction's call tree.

Each frame: {from, gas, gasUsed, to, input, output, error, revertReason, calls, logs, value,
type} with geth's omissions (no `to` for a failed creation, `output` only when it returned or
reverted with data, `revertReason` when the revert data is an `Error(string)` or a `Panic`,
no `value` for STATICCALL).  The top frame's gas is the transaction's gas limit and its gasUsed
the receipt's.  Options: `onlyTopCall` (no sub-calls), `withLog` (each frame's logs, with the
log's index in the block and its position among the frame's calls; the logs of failed frames
are dropped, as their state changes are).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from poai.chain.tracing.engine import Frame, Tracer, TxEnv, TxResult
from poai.chain.tracing.opcodes import CREATE, CREATE2, op_name
from poai.chain.tracing.revert import revert_reason


@dataclass(frozen=True)
class CallTracerConfig:
    only_top_call: bool = False
    with_log: bool = False


def _address(value: bytes) -> str:
    return "0x" + value.hex()


class CallTracer(Tracer):
    def __init__(self, config: CallTracerConfig | None = None) -> None:
        self.config = config or CallTracerConfig()
        self.stack: list[dict[str, Any]] = []
        self.root: dict[str, Any] | None = None

    def enter(self, frame: Frame) -> None:
        if self.config.only_top_call and frame.depth > 0:
            return
        call: dict[str, Any] = {"from": _address(frame.sender), "gas": frame.gas,
                                "gasUsed": 0, "to": _address(frame.to),
                                "input": frame.input, "type": op_name(frame.kind),
                                "value": frame.value, "_failed": False}
        self.stack.append(call)

    def exit(self, frame: Frame) -> None:
        if self.config.only_top_call and frame.depth > 0:
            return
        call = self.stack.pop()
        call["gasUsed"] = frame.gas_used
        if frame.error is None:
            call["output"] = frame.output
        else:
            call["error"] = frame.error
            call["_failed"] = frame.reverted
            if frame.kind in (CREATE, CREATE2):
                call["to"] = None
            if frame.error == "execution reverted" and frame.output:
                call["output"] = frame.output
                reason = revert_reason(frame.output)
                if reason is not None:
                    call["revertReason"] = reason
        if self.stack:
            self.stack[-1].setdefault("calls", []).append(call)
        else:
            self.root = call

    def log(self, frame: Frame, address: bytes, topics: tuple[int, ...], data: bytes,
            index: int) -> None:
        if not self.config.with_log or not self.stack:
            return
        if self.config.only_top_call and frame.depth > 0:
            return
        current = self.stack[-1]
        current.setdefault("logs", []).append({
            "address": _address(address),
            "topics": [f"0x{t:064x}" for t in topics],
            "data": "0x" + data.hex(),
            "index": hex(index),
            "position": hex(len(current.get("calls", ()))),
        })

    def tx_end(self, env: TxEnv, result: TxResult) -> None:
        if self.root is None:  # refused before any frame ran (a creation's address collision)
            self.root = {"from": _address(env.sender), "gas": env.gas_limit, "gasUsed": 0,
                         "to": None if env.to is None else _address(env.to),
                         "input": env.data, "type": "CREATE" if env.to is None else "CALL",
                         "value": env.value, "_failed": result.error is not None}
            if result.error is not None:
                self.root["error"] = result.error
        self.root["gasUsed"] = result.gas_used

    def result(self) -> dict[str, Any]:
        if self.root is None:
            raise RuntimeError("the transaction opened no call frame")
        return _render(self.root, parent_failed=False, with_log=self.config.with_log)


_ORDER = ("from", "gas", "gasUsed", "to", "input", "output", "error", "revertReason", "calls",
          "logs", "value", "type")


def _render(call: dict[str, Any], *, parent_failed: bool, with_log: bool) -> dict[str, Any]:
    """A frame as geth's JSON: hex quantities and bytes, its keys in geth's order, omitted
    when empty; logs of a failed frame (or one inside it) dropped."""
    failed = parent_failed or bool(call.get("_failed"))
    out: dict[str, Any] = {}
    for key in _ORDER:
        value = call.get(key)
        if key in ("gas", "gasUsed"):
            out[key] = hex(int(value or 0))
        elif key == "input":
            out[key] = "0x" + bytes(value or b"").hex()
        elif key == "output":
            if value:
                out[key] = "0x" + bytes(value).hex()
        elif key == "calls":
            if value:
                out[key] = [_render(c, parent_failed=failed, with_log=with_log) for c in value]
        elif key == "logs":
            if value and not (failed and with_log):
                out[key] = value
        elif key == "value":
            if value is not None:
                out[key] = hex(value)
        elif value is not None and value != "":
            out[key] = value
    return out


__all__ = ["CallTracer", "CallTracerConfig"]
