"""geth's `prestateTracer` (eth/tracers/native/prestate.go): the accounts and storage slots a
transaction touched, as they were before it ran; with `diffMode`, `{"pre", "post"}` holding
only what changed.

Accounts are read the first time the transaction reaches them: the sender, the recipient (or
the created address), the coinbase and EIP-7702 authorities before anything runs; then the
targets of BALANCE, EXTCODE*, the CALL family, CREATE/CREATE2 and SELFDESTRUCT, and the slots
of SLOAD/SSTORE, as each opcode is about to run.  An account's JSON: balance (hex), code,
codeHash (not for code-less accounts), nonce (a number, left out when 0), storage.  Accounts
empty before the transaction are left out unless `includeEmpty`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from eth.constants import EMPTY_SHA3
from eth.vm.forks.prague.constants import DELEGATION_DESIGNATION_PREFIX
from eth_typing import Address
from eth_utils.crypto import keccak

from poai.chain.tracing.engine import Step, Tracer, TxEnv, TxResult
from poai.chain.tracing.opcodes import (
    BALANCE,
    CALL,
    CALLCODE,
    CREATE,
    CREATE2,
    DELEGATECALL,
    EXTCODECOPY,
    EXTCODEHASH,
    EXTCODESIZE,
    SELFDESTRUCT,
    SLOAD,
    SSTORE,
    STATICCALL,
)
from poai.compat.pyevm import generate_contract_address

_ACCOUNT_OPS = frozenset({EXTCODECOPY, EXTCODEHASH, EXTCODESIZE, BALANCE, SELFDESTRUCT})
_CALLS = frozenset({CALL, CALLCODE, DELEGATECALL, STATICCALL})
_ADDRESS_MASK = (1 << 160) - 1


@dataclass(frozen=True)
class PrestateTracerConfig:
    diff_mode: bool = False
    disable_code: bool = False
    disable_storage: bool = False
    include_empty: bool = False


@dataclass
class _Account:
    balance: int | None = None
    nonce: int = 0
    code: bytes | None = None
    code_hash: bytes | None = None
    storage: dict[int, int] | None = field(default=None)
    empty: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.balance is not None:
            out["balance"] = hex(self.balance)
        if self.code is not None:
            out["code"] = "0x" + self.code.hex()
        if self.code_hash is not None:
            out["codeHash"] = "0x" + self.code_hash.hex()
        if self.nonce:
            out["nonce"] = self.nonce
        if self.storage:
            out["storage"] = {f"0x{k:064x}": f"0x{v:064x}" for k, v in sorted(self.storage.items())}
        return out


def _address(value: int) -> bytes:
    return (value & _ADDRESS_MASK).to_bytes(20, "big")


def _delegate(code: bytes) -> bytes | None:
    """The EIP-7702 delegation target of an account's code, if it is a designator."""
    if len(code) == 23 and code.startswith(DELEGATION_DESIGNATION_PREFIX):
        return code[3:]
    return None


class PrestateTracer(Tracer):
    wants_steps = True

    def __init__(self, config: PrestateTracerConfig | None = None) -> None:
        self.config = config or PrestateTracerConfig()
        self.pre: dict[bytes, _Account] = {}
        self.post: dict[bytes, _Account] = {}
        self.created: set[bytes] = set()
        self.deleted: set[bytes] = set()
        self.state: Any = None

    # -- reads ------------------------------------------------------------------------------
    def lookup_account(self, address: bytes) -> None:
        if address in self.pre:
            return
        state = self.state
        code = bytes(state.get_code(Address(address)))
        acc = _Account(balance=state.get_balance(Address(address)),
                       nonce=state.get_nonce(Address(address)), code=code or None)
        code_hash = bytes(state.get_code_hash(Address(address)))
        if code_hash not in (b"\0" * 32, EMPTY_SHA3):
            acc.code_hash = code_hash
        acc.empty = not (acc.nonce > 0 or code or (acc.balance or 0) != 0)
        if self.config.disable_code:
            acc.code = None
        if not self.config.disable_storage:
            acc.storage = {}
        self.pre[address] = acc

    def lookup_storage(self, address: bytes, slot: int) -> None:
        if self.config.disable_storage:
            return
        self.lookup_account(address)
        storage = self.pre[address].storage
        if storage is not None and slot not in storage:
            storage[slot] = self.state.get_storage(Address(address), slot)

    # -- hooks ------------------------------------------------------------------------------
    def tx_start(self, env: TxEnv) -> None:
        self.state = env.state
        if env.to is None:
            to = env.created or b""
            self.created.add(to)
        else:
            to = env.to
            target = _delegate(bytes(env.state.get_code(Address(to))))
            if target is not None:
                self.lookup_account(target)
        self.lookup_account(env.sender)
        self.lookup_account(to)
        self.lookup_account(env.coinbase)
        for authority in env.authorities:
            self.lookup_account(authority)

    def step(self, step: Step) -> None:
        op = step.op
        if op in (SLOAD, SSTORE):
            slot = step.stack_top(0)
            if slot is not None:
                self.lookup_storage(step.address, slot)
        elif op in _ACCOUNT_OPS:
            target = step.stack_top(0)
            if target is None:
                return
            self.lookup_account(_address(target))
            if op == SELFDESTRUCT and step.address in self.created:  # EIP-6780
                self.deleted.add(step.address)
        elif op in _CALLS:
            target = step.stack_top(1)
            if target is None or step.stack_top(4 if op in (CALL, CALLCODE) else 3) is None:
                return
            address = _address(target)
            self.lookup_account(address)
            delegate = _delegate(bytes(step.state.get_code(Address(address))))
            if delegate is not None:
                self.lookup_account(delegate)
        elif op == CREATE:
            nonce = step.state.get_nonce(Address(step.address))
            address = generate_contract_address(Address(step.address), nonce)
            self.lookup_account(address)
            self.created.add(address)
        elif op == CREATE2:
            offset, size, salt = step.stack_top(1), step.stack_top(2), step.stack_top(3)
            if offset is None or size is None or salt is None:
                return
            memory = step.memory()
            init = memory[offset:offset + size].ljust(size, b"\0") if size < 1 << 32 else b""
            address = keccak(b"\xff" + step.address + salt.to_bytes(32, "big")
                             + keccak(init))[12:]
            self.lookup_account(address)
            self.created.add(address)

    def tx_end(self, env: TxEnv, result: TxResult) -> None:
        if self.config.diff_mode:
            self._diff(env.state)
        if self.config.include_empty:
            return
        for address in [a for a, acc in self.pre.items() if acc.empty]:
            del self.pre[address]

    def _diff(self, state: Any) -> None:
        for address, acc in list(self.pre.items()):
            if address in self.deleted:  # pruned from post, kept in pre
                continue
            modified = False
            post = _Account(storage={})
            balance = state.get_balance(Address(address))
            nonce = state.get_nonce(Address(address))
            code_hash = bytes(state.get_code_hash(Address(address)))
            if balance != acc.balance:
                modified, post.balance = True, balance
            if nonce != acc.nonce:
                modified, post.nonce = True, nonce
            if code_hash != (acc.code_hash or EMPTY_SHA3):
                modified, post.code_hash = True, code_hash
            if not self.config.disable_code:
                code = bytes(state.get_code(Address(address)))
                if code != (acc.code or b""):
                    modified, post.code = True, code
            if not self.config.disable_storage and acc.storage is not None:
                for slot, value in list(acc.storage.items()):
                    if value == 0:
                        del acc.storage[slot]
                    new = state.get_storage(Address(address), slot)
                    if value == new:
                        acc.storage.pop(slot, None)
                    else:
                        modified = True
                        if new != 0:
                            post.storage[slot] = new  # type: ignore[index]
            if modified:
                self.post[address] = post
            else:
                del self.pre[address]

    def result(self) -> dict[str, Any]:
        pre = _accounts_json(self.pre)
        if self.config.diff_mode:
            return {"post": _accounts_json(self.post), "pre": pre}
        return pre


def _accounts_json(accounts: dict[bytes, _Account]) -> dict[str, Any]:
    return {"0x" + a.hex(): acc.to_json() for a, acc in sorted(accounts.items())}


__all__ = ["PrestateTracer", "PrestateTracerConfig"]
