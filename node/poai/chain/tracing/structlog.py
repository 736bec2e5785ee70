"""geth's default tracer, the struct logger (eth/tracers/logger/logger.go), in its JSON-RPC
form: one entry per opcode with the machine as it was before the opcode ran.

Entry keys in geth's order: pc, op, gas, gasCost, depth, error (on a step that failed before
running: out of gas, stack, invalid opcode), stack (unless disableStack; items as hex
quantities), returnData (enableReturnData, when not empty), memory (enableMemory, 32-byte
words), storage (on SLOAD/SSTORE unless disableStorage: the slots of the running contract seen
so far in the transaction), refund (when not zero).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from eth_typing import Address

from poai.chain.tracing.engine import Step, TraceEngine, Tracer, TxEnv, TxResult
from poai.chain.tracing.opcodes import SLOAD, SSTORE, op_name


@dataclass(frozen=True)
class StructLogConfig:
    enable_memory: bool = False
    disable_stack: bool = False
    disable_storage: bool = False
    enable_return_data: bool = False
    limit: int = 0  # geth: stop logging once the logs' JSON passes this many bytes (0: no limit)


def _word(value: int) -> str:
    return f"0x{value:064x}"


class StructLogger(Tracer):
    wants_steps = True

    def __init__(self, config: StructLogConfig | None = None) -> None:
        self.config = config or StructLogConfig()
        self.engine: TraceEngine | None = None  # the refund counter's source
        self.logs: list[dict[str, Any]] = []
        self.size = 0
        self.storage: dict[bytes, dict[int, int]] = {}
        self.gas = 0
        self.failed = False
        self.output = b""

    def attach(self, engine: TraceEngine) -> None:
        self.engine = engine

    def step(self, step: Step) -> None:
        cfg = self.config
        if cfg.limit and self.size > cfg.limit:
            return
        stack = None if cfg.disable_stack and step.op not in (SLOAD, SSTORE) else step.stack()
        storage = None
        if not cfg.disable_storage and step.op in (SLOAD, SSTORE) and stack:
            slots = self.storage.setdefault(step.address, {})
            if step.op == SLOAD:
                slots[stack[-1]] = step.state.get_storage(Address(step.address), stack[-1])
                storage = dict(slots)
            elif len(stack) >= 2:
                slots[stack[-1]] = stack[-2]
                storage = dict(slots)
        # in the list now: a CALL's entry comes before its callee's, though its cost is
        # known only once the callee has started
        entry: dict[str, Any] = {"pc": step.pc, "op": op_name(step.op), "gas": step.gas,
                                 "gasCost": 0, "depth": step.depth}
        self.logs.append(entry)
        step.record = (
            entry,
            None if cfg.disable_stack else stack,
            step.return_data if cfg.enable_return_data else b"",
            step.memory() if cfg.enable_memory else b"",
            storage,
            self.engine.refund() if self.engine is not None else 0,
        )

    def step_done(self, step: Step) -> None:
        if step.record is None:
            return
        entry, stack, return_data, memory, storage, refund = step.record
        entry["gasCost"] = step.cost
        if step.error:
            entry["error"] = step.error
        if stack is not None:
            entry["stack"] = [hex(v) for v in stack]
        if return_data:
            entry["returnData"] = "0x" + return_data.hex()
        if memory:
            entry["memory"] = ["0x" + memory[i:i + 32].ljust(32, b"\0").hex()
                               for i in range(0, len(memory), 32)]
        if storage:
            entry["storage"] = {_word(k): _word(v) for k, v in sorted(storage.items())}
        if refund > 0:
            entry["refund"] = refund
        if self.config.limit:
            self.size += len(json.dumps(entry, separators=(",", ":")))

    def tx_end(self, env: TxEnv, result: TxResult) -> None:
        self.gas = result.gas_used
        self.failed = result.error is not None
        # geth: the output when it succeeded, the revert data when it reverted, else nothing
        keep = not self.failed or result.error == "execution reverted"
        self.output = result.output if keep else b""

    def result(self) -> dict[str, Any]:
        return {"gas": self.gas, "failed": self.failed, "returnValue": "0x" + self.output.hex(),
                "structLogs": self.logs}


__all__ = ["StructLogConfig", "StructLogger"]
