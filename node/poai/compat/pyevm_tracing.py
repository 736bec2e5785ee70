"""py-evm private names the transaction tracer reads (poai.chain.tracing).

py-evm has no tracer hook and no public way to look at a running computation's stack or
memory; the tracer's struct logger needs both before each opcode.  These two reads are the only
private names it uses (the rest goes through `ComputationAPI`), listed in RELIES_ON so a py-evm
upgrade that moves them fails in tests/compat.
"""

from __future__ import annotations

from eth.abc import ComputationAPI

from poai.compat import Reliance

RELIES_ON: tuple[Reliance, ...] = (
    Reliance("eth.vm.computation:BaseComputation._stack"),
    Reliance("eth.vm.stack:Stack.values", instance_attr=True),
    Reliance("eth.vm.computation:BaseComputation._memory"),
    Reliance("eth.vm.memory:Memory._bytes", instance_attr=True),
)


def stack_values(computation: ComputationAPI) -> list[int]:
    """The computation's stack, bottom first, each item as an integer (py-evm keeps some as
    the bytes they were pushed as)."""
    values = computation._stack.values  # type: ignore[attr-defined]
    return [v if isinstance(v, int) else int.from_bytes(v, "big") for v in values]


def stack_top(computation: ComputationAPI, depth: int = 0) -> int | None:
    """The stack item `depth` below the top as an integer, None when the stack is shorter."""
    values = computation._stack.values  # type: ignore[attr-defined]
    if len(values) <= depth:
        return None
    v = values[-1 - depth]
    return v if isinstance(v, int) else int.from_bytes(v, "big")


def stack_size(computation: ComputationAPI) -> int:
    return len(computation._stack.values)  # type: ignore[attr-defined]


def memory_bytes(computation: ComputationAPI) -> bytes:
    """A copy of the computation's memory."""
    return bytes(computation._memory._bytes)  # type: ignore[attr-defined]


__all__ = ["RELIES_ON", "memory_bytes", "stack_size", "stack_top", "stack_values"]
