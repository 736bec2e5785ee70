"""eth_call and eth_estimateGas on py-evm: a spoofed sender on a costless copy of the state.

py-evm's simulated transactions still check the sender's nonce (FIELD-NOTES), so the call takes
the sender's current nonce from the state it runs on. Estimation is geth's: one run at the cap,
then a binary search from the gas actually used, stopping within 1.5%.

py-evm's `in_costless_state` builds a child header, a VM state and Prague's system-contract
checks for every call (about a third of a call's time); `CallStates` keeps one such state per
block hash and runs each call between a snapshot and its revert, so its trie caches also serve
the next call.  A block hash names immutable state, so nothing is invalidated: a new head is a
new key and old ones fall out of the LRU.  For the same reason the outcome of a call (output
or error) is kept per (block hash, call): dapps poll the same view calls every block.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from eth.abc import (
    BlockHeaderAPI,
    ChainAPI,
    ComputationAPI,
    MessageAPI,
    StateAPI,
    VirtualMachineAPI,
)
from eth.constants import CREATE_CONTRACT_ADDRESS
from eth.exceptions import Revert
from eth.vm.message import Message
from eth.vm.spoof import SpoofTransaction
from eth_typing import Address
from eth_utils.exceptions import ValidationError
from lru import LRU

from poai.compat.pyevm import generate_contract_address
from poai.rpc.errors import ExecutionReverted, InvalidParams, RpcError, ServerError
from poai.rpc.hexutil import parse_address, parse_data, parse_hash, parse_qty

ESTIMATE_ERROR_RATIO = 0.015  # geth's estimateGasErrorRatio
ZERO_ADDRESS = Address(b"\x00" * 20)


@dataclass(frozen=True)
class CallRequest:
    sender: Address
    to: Address  # b"" for contract creation
    gas: int | None
    gas_price: int
    value: int
    data: bytes
    access_list: tuple[tuple[bytes, tuple[int, ...]], ...]

    @classmethod
    def parse(cls, obj: Any) -> CallRequest:
        if not isinstance(obj, dict):
            raise InvalidParams("invalid call object: expected an object")
        if "data" in obj and "input" in obj and obj["data"] != obj["input"]:
            raise InvalidParams('both "data" and "input" are set and not equal')
        payload = obj.get("input", obj.get("data"))
        price = obj.get("gasPrice") or obj.get("maxFeePerGas")
        access = []
        for entry in obj.get("accessList") or []:
            if not isinstance(entry, dict):
                raise InvalidParams("invalid accessList entry")
            access.append((parse_address(entry.get("address")),
                           tuple(int.from_bytes(parse_hash(k), "big")
                                 for k in entry.get("storageKeys") or [])))
        return cls(
            sender=parse_address(obj["from"], "from") if obj.get("from") else ZERO_ADDRESS,
            to=parse_address(obj["to"], "to") if obj.get("to") else CREATE_CONTRACT_ADDRESS,
            gas=parse_qty(obj["gas"], "gas") if obj.get("gas") is not None else None,
            gas_price=parse_qty(price, "gasPrice") if price is not None else 0,
            value=parse_qty(obj["value"], "value") if obj.get("value") is not None else 0,
            data=parse_data(payload, "input") if payload is not None else b"",
            access_list=tuple(access),
        )


def apply_state_overrides(state: StateAPI, overrides: Any) -> None:
    if overrides is None:
        return
    if not isinstance(overrides, dict):
        raise InvalidParams("invalid state override: expected an object")
    for address_hex, spec in overrides.items():
        address = parse_address(address_hex, "state override address")
        if not isinstance(spec, dict):
            raise InvalidParams("invalid state override entry")
        if "state" in spec and "stateDiff" in spec:
            raise InvalidParams(f"account {address_hex} has both 'state' and 'stateDiff'")
        if spec.get("balance") is not None:
            state.set_balance(address, parse_qty(spec["balance"], "balance"))
        if spec.get("nonce") is not None:
            state.set_nonce(address, parse_qty(spec["nonce"], "nonce"))
        if spec.get("code") is not None:
            state.set_code(address, parse_data(spec["code"], "code"))
        if spec.get("state") is not None:
            state.delete_storage(address)
        for slot, value in (spec.get("state") or spec.get("stateDiff") or {}).items():
            state.set_storage(address, int.from_bytes(parse_hash(slot, "slot"), "big"),
                              int.from_bytes(parse_hash(value, "value"), "big"))


def costless_state(vm: VirtualMachineAPI) -> StateAPI:
    """The state `vm.in_costless_state()` yields (a child of the VM's header, base fee 0), built
    without the context manager so it can be kept."""
    header = vm.get_header()
    child = vm.generate_block_from_parent_header_and_coinbase(header, header.coinbase).header
    if hasattr(child, "base_fee_per_gas"):
        child = child.copy(base_fee_per_gas=0)
    prev_hashes = itertools.chain((header.hash,), vm.previous_hashes or ())
    return vm.build_state(vm.chaindb.db, child, vm.chain_context,  # type: ignore[attr-defined]
                          prev_hashes)


RESULT_CACHE_SIZE = 4096  # (block hash, call) -> output bytes or (code, message, data)
RESULT_CACHE_MAX_OUTPUT = 16 * 1024  # longer outputs are computed again


class CallStates:
    """Costless call states kept per block hash (LRU); use only under ``Node.lock``."""

    def __init__(self, size: int = 4) -> None:
        self._entries: Any = LRU(size)
        self._results: Any = LRU(RESULT_CACHE_SIZE)
        self._lock = threading.RLock()  # one call at a time per cache, even without Node.lock

    def result(self, key: tuple[bytes, CallRequest]) -> Any:
        return self._results.get(key)

    def remember(self, key: tuple[bytes, CallRequest], outcome: Any) -> None:
        self._results[key] = outcome

    @contextmanager
    def open(self, chain: ChainAPI, header: BlockHeaderAPI
             ) -> Iterator[tuple[VirtualMachineAPI, StateAPI]]:
        with self._lock:
            entry = self._entries.get(header.hash)
            if entry is None:
                vm = chain.get_vm(header)
                entry = (vm, costless_state(vm))
                self._entries[header.hash] = entry
            vm, state = entry
            snapshot = state.snapshot()
            try:
                yield vm, state
            except RpcError:
                raise  # a reverted or failed call: the state is journaled as usual
            except BaseException:
                # An unexpected failure may leave the state half-journaled: build it anew.
                self._entries.pop(header.hash, None)
                raise
            finally:
                state.revert(snapshot)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._results.clear()


@contextmanager
def call_state(chain: ChainAPI, header: BlockHeaderAPI, overrides: Any = None,
               states: CallStates | None = None) -> Iterator[tuple[Any, StateAPI]]:
    """A throwaway state on top of ``header`` with base fee 0 (as geth's eth_call).

    With ``states`` and no overrides, the kept state of ``header`` is used (and reverted after);
    state overrides always get a fresh state, so nothing they change can outlive the call.
    """
    if states is not None and overrides is None:
        with states.open(chain, header) as (vm, state):
            yield vm, state
        return
    vm = chain.get_vm(header)
    with vm.in_costless_state() as state:
        apply_state_overrides(state, overrides)
        yield vm, state


def _run(vm: Any, state: StateAPI, req: CallRequest, gas: int) -> ComputationAPI:
    # A legacy transaction with a placeholder low-s signature; the sender is spoofed.
    signed = vm.create_transaction(
        nonce=state.get_nonce(req.sender), gas_price=req.gas_price, gas=gas,
        to=req.to, value=req.value, data=req.data, v=27, r=1, s=1)
    tx = SpoofTransaction(signed, sender=req.sender, access_list=req.access_list,
                          validate=lambda: _validate_unsigned(signed))
    snapshot = state.snapshot()
    try:
        # `state.apply_transaction` minus `finalize_computation` (gas refund to the sender,
        # fee to the coinbase, touched-account cleanup): none of it changes the output, the
        # gas used or the refund counter, and the snapshot is reverted anyway.
        executor = state.get_transaction_executor()
        executor.validate_transaction(tx)  # type: ignore[arg-type]
        message = _build_message(state, executor, tx)
        return executor.build_computation(message, tx)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ServerError(_validation_message(str(exc))) from exc
    finally:
        state.revert(snapshot)


def _build_message(state: StateAPI, executor: Any, tx: Any) -> MessageAPI:
    """Cancun/Prague's `build_evm_message` for the spoofed legacy transaction, without its
    debug log line, which py-evm formats on every call whether or not debug logging is on
    (repr of the transaction, a keccak of the input and the hex of the whole contract code:
    about a sixth of a small view call).  Same steps in the same order: the fee is taken
    from the sender (zero at gas price 0), the sender's nonce goes up, the code to run is the
    target's (following an EIP-7702 delegation, which warms the delegate)."""
    if tx.type_id is not None:  # only the legacy form `_run` builds is handled here
        return executor.build_evm_message(tx)  # type: ignore[no-any-return]
    sender = tx.sender
    fee = tx.gas * state.get_gas_price(tx)
    if fee:  # eth_call's default gas price is 0: no balance to change
        state.delta_balance(sender, -fee)
    state.increment_nonce(sender)
    if tx.to == CREATE_CONTRACT_ADDRESS:
        create_address = generate_contract_address(sender, state.get_nonce(sender) - 1)
        data, code, is_delegation = b"", tx.data, False
    else:
        create_address = None
        data = tx.data
        code, delegate = executor.get_code_at_address(tx.to)
        is_delegation = delegate is not None
    return Message(gas=tx.gas - tx.intrinsic_gas, to=tx.to, sender=sender, value=tx.value,
                   data=data, code=code,
                   create_address=create_address,  # type: ignore[arg-type] # None: a call
                   refund=executor.calc_message_refund(tx), is_delegation=is_delegation)


def _validate_unsigned(signed: Any) -> None:
    """The transaction checks of `validate()` except the signature's: the placeholder signature
    means nothing, and recovering a key from it costs an ECDSA recovery per call."""
    if signed.gas < signed.intrinsic_gas:
        raise ValidationError("Insufficient gas")


def _validation_message(text: str) -> str:
    if "balance" in text or "afford" in text:
        return "insufficient funds for gas * price + value"
    if "intrinsic" in text.lower() or "Insufficient gas" in text:
        return "intrinsic gas too low"
    return text


def _gas_cap(state: StateAPI, req: CallRequest, block_gas_limit: int) -> int:
    cap = req.gas if req.gas is not None else block_gas_limit
    if req.gas_price > 0:  # geth: cap the gas by what the sender's balance can pay for
        balance = state.get_balance(req.sender)
        if balance < req.value:
            raise ServerError("insufficient funds for transfer")
        cap = min(cap, (balance - req.value) // req.gas_price)
    return cap


def _raise_if_failed(computation: ComputationAPI) -> None:
    if not computation.is_error:
        return
    if isinstance(computation.error, Revert):
        raise ExecutionReverted(computation.output)
    raise ServerError(_vm_error_message(computation.error))


def _vm_error_message(error: Exception) -> str:
    name = type(error).__name__
    return {
        "OutOfGas": "out of gas",
        "InsufficientFunds": "insufficient balance for transfer",
        "InvalidInstruction": "invalid opcode",
        "StackDepthLimit": "max call depth exceeded",
        "WriteProtection": "write protection",
    }.get(name, f"execution error: {name} {error}".strip())


def eth_call(chain: ChainAPI, header: BlockHeaderAPI, req: CallRequest,
             overrides: Any = None, states: CallStates | None = None) -> bytes:
    # A block hash fixes the state and the call's header, so the outcome is fixed too.
    key = (header.hash, req) if states is not None and overrides is None else None
    if key is not None:
        known = states.result(key)  # type: ignore[union-attr]
        if isinstance(known, bytes):
            return known
        if known is not None:
            raise RpcError(*known)
    try:
        with call_state(chain, header, overrides, states) as (vm, state):
            gas = _gas_cap(state, req, header.gas_limit)
            computation = _run(vm, state, req, gas)
            _raise_if_failed(computation)
            output = bytes(computation.output)
    except RpcError as err:
        if key is not None:
            states.remember(key, (err.code, err.message, err.data))  # type: ignore[union-attr]
        raise
    if key is not None and len(output) <= RESULT_CACHE_MAX_OUTPUT:
        states.remember(key, output)  # type: ignore[union-attr]
    return output


def estimate_gas(chain: ChainAPI, header: BlockHeaderAPI, req: CallRequest,
                 overrides: Any = None, states: CallStates | None = None) -> int:
    with call_state(chain, header, overrides, states) as (vm, state):
        hi = _gas_cap(state, req, header.gas_limit)
        computation = _run(vm, state, req, hi)
        _raise_if_failed(computation)
        used = hi - computation.get_gas_remaining()
        # Plain transfers need exactly the intrinsic gas: no search.
        if not req.data and req.to and not state.get_code(req.to):
            return max(21000, used)
        lo = used - 1
        # geth's optimistic first guess: used gas plus refunds, times 64/63 for call stipends.
        guess = min(hi, (used + computation.get_gas_refund()) * 64 // 63)
        if guess < hi:
            if _run(vm, state, req, guess).is_error:
                lo = guess
            else:
                hi = guess
        while lo + 1 < hi:
            if (hi - lo) / hi < ESTIMATE_ERROR_RATIO:
                break
            mid = (lo + hi) // 2
            if mid > lo * 2:  # geth: most calls need little gas; probe low first
                mid = lo * 2
            if _run(vm, state, req, mid).is_error:
                lo = mid
            else:
                hi = mid
        return hi
