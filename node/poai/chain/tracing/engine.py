"""The tracer hook py-evm lacks: a computation class that reports frames, opcodes and logs.

`traced_computation_class(base, engine)` derives, for one traced transaction, a subclass of the
state's computation class whose `apply_message` / `apply_create_message` (py-evm's own
extension points: every call frame goes through them) and `add_log_entry` report to the
engine, and whose opcode table wraps each opcode (`_TracedOpcode`) so the engine sees it before
and after it runs.  The replay sets it on the traced transaction's state only
(`traced_state`), so a node that is not tracing runs py-evm's classes untouched: tracing costs
nothing when off.

The engine keeps one `Frame` per call frame and hands geth-shaped events to a `Tracer`
(poai.chain.tracing.structlog / calls / prestate):
- `enter(frame)` / `exit(frame)`: a call frame starts / ends (geth's OnEnter / OnExit);
- `step(step)` before an opcode runs (stack, memory and storage as they are then) and
  `step_done(step)` once its gas cost and error are known (geth's OnOpcode has both at once;
  py-evm charges gas while the opcode runs);
- `log(frame, address, topics, data, index)` (geth's OnLog).

Gas cost of an opcode is what it took from the frame, except for the CALL family, where geth's
cost includes the gas handed to the callee (read when the callee's frame starts), and
CREATE/CREATE2, where it does not.
"""

from __future__ import annotations

import re
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from eth.abc import ComputationAPI, MessageAPI, StateAPI, TransactionContextAPI
from eth.exceptions import (
    ContractCreationCollision,
    FullStack,
    Halt,
    InsufficientFunds,
    InsufficientStack,
    InvalidInstruction,
    InvalidJumpDestination,
    OutOfBoundsRead,
    OutOfGas,
    ReservedBytesInCode,
    Revert,
    StackDepthLimit,
    VMError,
    WriteProtection,
)
from eth.vm.computation import BaseComputation
from eth.vm.logic.invalid import InvalidOpcode
from eth_typing import Address

from poai.chain.tracing.opcodes import (
    CALL,
    CALL_OPS,
    CREATE,
    CREATE2,
    SELFDESTRUCT,
    STATICCALL,
    op_name,
)
from poai.compat.pyevm_tracing import memory_bytes, stack_top, stack_values


class TraceAborted(Exception):
    """The trace went past its deadline (geth: "execution timeout")."""


def vm_error_text(error: BaseException) -> str:
    """A py-evm VM error in geth's words (core/vm/errors.go)."""
    if isinstance(error, Revert):
        return "execution reverted"
    if isinstance(error, OutOfGas):
        if "code size" in str(error):
            return "max code size exceeded"
        return "out of gas"
    if isinstance(error, InvalidInstruction):
        return "invalid opcode: " + _invalid_op_text(error)
    for kind, text in _ERROR_TEXT:
        if isinstance(error, kind):
            return text
    return str(error) or type(error).__name__


_ERROR_TEXT: tuple[tuple[type[BaseException], str], ...] = (
    (InsufficientStack, "stack underflow"),
    (FullStack, "stack limit reached 1024"),
    (InvalidJumpDestination, "invalid jump destination"),
    (WriteProtection, "write protection"),
    (OutOfBoundsRead, "return data out of bounds"),
    (ContractCreationCollision, "contract address collision"),
    (StackDepthLimit, "max call depth exceeded"),
    (InsufficientFunds, "insufficient balance for transfer"),
    (ReservedBytesInCode, "invalid code: must not begin with 0xef"),
)

_INVALID_OP = re.compile(r"0x([0-9a-fA-F]{1,2})")


def _invalid_op_text(error: BaseException) -> str:
    found = _INVALID_OP.search(str(error))
    return op_name(int(found.group(1), 16)) if found else "INVALID"


# geth logs these failures on the opcode's own step (they happen before it runs); a revert,
# a bad jump or a write in a static call happen while it runs and only end the frame.
_STEP_ERRORS = (OutOfGas, InsufficientStack, FullStack, InvalidInstruction)
_NEEDED_GAS = re.compile(r"Needed (\d+)")


@dataclass
class Frame:
    """One call frame as geth's tracers see it."""

    kind: int  # the opcode that opened it: CALL, CREATE, ... (CALL / CREATE at depth 0)
    depth: int  # 0 for the transaction's own frame
    sender: bytes
    to: bytes
    value: int | None  # None for STATICCALL
    gas: int
    input: bytes
    message: MessageAPI | None = None
    address: bytes = b""  # the storage address its code runs in
    computation: ComputationAPI | None = None
    # set at exit
    gas_used: int = 0
    output: bytes = b""
    error: str | None = None
    reverted: bool = False
    # engine bookkeeping
    op: int = -1  # the opcode running now
    gas_before: int = 0
    child_cost: int | None = None
    pc_after: int = 0
    call_target: bytes | None = None
    logs_at_entry: int = 0


@dataclass
class Step:
    """One opcode about to run, as geth's OnOpcode sees it."""

    pc: int
    op: int
    gas: int
    depth: int  # geth's: 1 for the transaction's own frame
    frame: Frame
    computation: ComputationAPI
    cost: int = 0
    error: str | None = None
    record: Any = None  # the tracer's own record of this step

    @property
    def address(self) -> bytes:
        return self.frame.address

    def stack(self) -> list[int]:
        return stack_values(self.computation)

    def stack_top(self, depth: int = 0) -> int | None:
        return stack_top(self.computation, depth)

    def memory(self) -> bytes:
        return memory_bytes(self.computation)

    @property
    def return_data(self) -> bytes:
        return bytes(self.computation.return_data)

    @property
    def state(self) -> StateAPI:
        return self.computation.state


@dataclass
class TxEnv:
    """The traced transaction, seen before anything of it runs (geth's OnTxStart)."""

    state: StateAPI
    sender: bytes
    to: bytes | None  # None: contract creation
    created: bytes | None  # the address a creation makes
    gas_limit: int
    value: int
    data: bytes
    coinbase: bytes
    authorities: tuple[bytes, ...] = ()  # EIP-7702 authorities, recovered


@dataclass
class TxResult:
    gas_used: int  # as the receipt says
    computation: ComputationAPI
    error: str | None
    output: bytes


class Tracer(ABC):
    """Hooks a tracer may implement (all default to nothing) and the result it must give."""

    wants_steps: ClassVar[bool] = False  # step()/step_done() for every opcode

    def attach(self, engine: TraceEngine) -> None:
        """Called once before the transaction starts, with the engine running it."""
        return None

    def tx_start(self, env: TxEnv) -> None:
        return None

    def tx_end(self, env: TxEnv, result: TxResult) -> None:
        return None

    def enter(self, frame: Frame) -> None:
        return None

    def exit(self, frame: Frame) -> None:
        return None

    def step(self, step: Step) -> None:
        return None

    def step_done(self, step: Step) -> None:
        return None

    def log(self, frame: Frame, address: bytes, topics: tuple[int, ...], data: bytes,
            index: int) -> None:
        return None

    @abstractmethod
    def result(self) -> Any:
        """The trace, shaped as geth answers it."""


CHECK_EVERY = 256  # opcodes between deadline checks


class TraceEngine:
    """The frames of one traced transaction and the tracer they report to."""

    def __init__(self, tracer: Tracer, env: TxEnv, *, deadline: float | None = None,
                 first_log_index: int = 0) -> None:
        self.tracer = tracer
        self.env = env
        self.deadline = deadline
        self.frames: list[Frame] = []
        self.log_index = first_log_index
        self._ops = 0

    # -- frames ---------------------------------------------------------------------------
    def opens(self, message: MessageAPI) -> bool:
        """False for the inner apply_message of a creation (same message, frame already open)."""
        return not self.frames or self.frames[-1].message is not message

    def push(self, message: MessageAPI) -> Frame:
        self._check_deadline()
        if not self.frames:
            env = self.env
            kind = CREATE if message.is_create else CALL
            frame = Frame(kind=kind, depth=0, sender=env.sender,
                          to=message.storage_address if message.is_create else (env.to or b""),
                          value=env.value, gas=env.gas_limit, input=env.data)
        else:
            parent = self.frames[-1]
            kind = parent.op if parent.op in CALL_OPS else (
                CREATE if message.is_create else CALL)
            is_create = kind in (CREATE, CREATE2)
            remaining = parent.computation.get_gas_remaining() if parent.computation else 0
            parent.child_cost = parent.gas_before - remaining - (message.gas if is_create else 0)
            if is_create:
                to = bytes(message.storage_address)
                data = bytes(message.code)
            else:
                to = parent.call_target if parent.call_target is not None \
                    else bytes(message.to)
                data = bytes(message.data_as_bytes)
            frame = Frame(kind=kind, depth=len(self.frames), sender=parent.address, to=to,
                          value=None if kind == STATICCALL else message.value,
                          gas=message.gas, input=data)
        frame.message = message
        frame.address = message.storage_address
        frame.logs_at_entry = self.log_index
        self.frames.append(frame)
        self.tracer.enter(frame)
        return frame

    def pop(self, frame: Frame, computation: ComputationAPI | None,
            error: BaseException | None = None) -> None:
        if self.frames and self.frames[-1] is frame:
            self.frames.pop()
        if computation is not None:
            frame.computation = computation
            frame.gas_used = frame.message.gas - computation.get_gas_remaining() \
                if frame.message is not None else 0
            if computation.is_error:
                error = computation.error
                frame.output = bytes(computation.output) if isinstance(error, Revert) else b""
            else:
                frame.output = bytes(computation.output)
        if error is not None:
            frame.error = vm_error_text(error)
            frame.reverted = True
            self.log_index = frame.logs_at_entry  # geth's journal takes the frame's logs back
        self.tracer.exit(frame)

    def selfdestruct(self, parent: Frame, beneficiary: bytes, balance: int) -> None:
        """geth reports a SELFDESTRUCT as a frame of its own (gas 0, the balance moved)."""
        frame = Frame(kind=SELFDESTRUCT, depth=len(self.frames), sender=parent.address,
                      to=beneficiary, value=balance, gas=0, input=b"")
        self.tracer.enter(frame)
        self.tracer.exit(frame)

    def on_log(self, address: bytes, topics: tuple[int, ...], data: bytes) -> None:
        frame = self.frames[-1] if self.frames else None
        if frame is not None:
            self.tracer.log(frame, address, topics, data, self.log_index)
        self.log_index += 1

    def _check_deadline(self) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise TraceAborted("execution timeout")

    # -- opcodes ----------------------------------------------------------------------------
    def run_opcode(self, fn: Any, op: int, computation: ComputationAPI) -> None:
        self._ops += 1
        if self._ops % CHECK_EVERY == 0:
            self._check_deadline()
        frame = self.frames[-1]
        if frame.computation is None:
            frame.computation = computation
        counter = computation.code.program_counter
        # py-evm's code iterator moves the counter past the opcode it yields, except for the
        # STOP it yields once the code has run out (geth logs that one at pc = code length).
        pc = counter if counter == frame.pc_after else counter - 1
        gas = computation.get_gas_remaining()
        frame.op, frame.gas_before, frame.child_cost = op, gas, None
        if op in CALL_OPS and op not in (CREATE, CREATE2):
            target = stack_top(computation, 1)
            frame.call_target = (target % (1 << 160)).to_bytes(20, "big") \
                if target is not None else None
        step: Step | None = None
        if self.tracer.wants_steps:
            step = Step(pc=pc, op=op, gas=gas, depth=frame.depth + 1, frame=frame,
                        computation=computation)
            self.tracer.step(step)
        destruct: tuple[bytes, int] | None = None
        if op == SELFDESTRUCT:
            target = stack_top(computation, 0)
            if target is not None:
                beneficiary = (target % (1 << 160)).to_bytes(20, "big")
                destruct = (beneficiary, computation.state.get_balance(Address(frame.address)))
        failure: BaseException | None = None
        try:
            fn(computation=computation)
        except Halt:
            if destruct is not None:
                self.selfdestruct(frame, *destruct)
            raise
        except VMError as exc:
            failure = exc
            raise
        finally:
            frame.pc_after = computation.code.program_counter
            if step is not None:
                self._finish_step(step, frame, computation, failure)

    def _finish_step(self, step: Step, frame: Frame, computation: ComputationAPI,
                     failure: BaseException | None) -> None:
        if frame.child_cost is not None:
            step.cost = frame.child_cost
        else:
            step.cost = frame.gas_before - computation.get_gas_remaining()
        if isinstance(failure, _STEP_ERRORS):
            step.error = vm_error_text(failure)
            needed = _NEEDED_GAS.search(str(failure)) if isinstance(failure, OutOfGas) else None
            if needed is not None:  # the charge that failed: geth reports the whole cost
                step.cost += int(needed.group(1))
        self.tracer.step_done(step)

    def refund(self) -> int:
        """The transaction's refund counter now (geth's StateDB.GetRefund): every open frame's
        own refunds and those of its finished, successful callees."""
        return sum(f.computation.get_gas_refund() for f in self.frames
                   if f.computation is not None)


class _TracedOpcode:
    """An opcode of the traced computation class: the engine runs it between its hooks."""

    __slots__ = ("engine", "fn", "gas_cost", "mnemonic", "op")

    def __init__(self, engine: TraceEngine, op: int, fn: Any) -> None:
        self.engine, self.op, self.fn = engine, op, fn
        self.mnemonic = getattr(fn, "mnemonic", op_name(op))
        self.gas_cost = getattr(fn, "gas_cost", 0)

    def __call__(self, computation: ComputationAPI) -> None:
        self.engine.run_opcode(self.fn, self.op, computation)


class TracingComputation(BaseComputation):
    """Mixed in before a fork's computation class by `traced_computation_class`."""

    engine: ClassVar[TraceEngine]

    @classmethod
    def apply_message(cls, state: StateAPI, message: MessageAPI,
                      transaction_context: TransactionContextAPI,
                      parent_computation: ComputationAPI | None = None) -> ComputationAPI:
        engine = cls.engine
        if not engine.opens(message):  # a creation's own frame, opened by apply_create_message
            return super().apply_message(state, message, transaction_context,
                                         parent_computation=parent_computation)
        frame = engine.push(message)
        try:
            computation = super().apply_message(state, message, transaction_context,
                                                parent_computation=parent_computation)
        except VMError as exc:  # refused before it ran (py-evm checks depth and funds here)
            engine.pop(frame, None, exc)
            raise
        engine.pop(frame, computation)
        return computation

    @classmethod
    def apply_create_message(cls, state: StateAPI, message: MessageAPI,
                             transaction_context: TransactionContextAPI,
                             parent_computation: ComputationAPI | None = None
                             ) -> ComputationAPI:
        engine = cls.engine
        frame = engine.push(message)
        try:
            computation = super().apply_create_message(
                state, message, transaction_context, parent_computation=parent_computation)
        except VMError as exc:
            engine.pop(frame, None, exc)
            raise
        engine.pop(frame, computation)
        return computation

    def add_log_entry(self, account: Any, topics: tuple[int, ...], data: bytes) -> None:
        super().add_log_entry(account, topics, data)
        type(self).engine.on_log(bytes(account), tuple(topics), bytes(data))


def traced_computation_class(base: type[ComputationAPI], engine: TraceEngine
                             ) -> type[ComputationAPI]:
    """`base` with every frame, opcode and log reported to `engine` (one class per trace)."""
    table = dict(base.opcodes)
    opcodes = {op: _TracedOpcode(engine, op, table.get(op) or InvalidOpcode(op))
               for op in range(256)}
    return type(f"Traced{base.__name__}", (TracingComputation, base),
                {"engine": engine, "opcodes": opcodes})


@contextmanager
def traced_state(state: StateAPI, engine: TraceEngine) -> Iterator[StateAPI]:
    """`state` running its computations through `engine` for the duration."""
    base = type(state).computation_class
    state.computation_class = traced_computation_class(base, engine)
    try:
        yield state
    finally:
        del state.computation_class  # back to the class's own


__all__ = [
    "Frame", "Step", "TraceAborted", "TraceEngine", "Tracer", "TracingComputation", "TxEnv",
    "TxResult", "traced_computation_class", "traced_state", "vm_error_text",
]
