"""Re-executing stored transactions under a tracer, as geth's debug_trace* do.

A block's transactions are replayed on its parent's state with the block's own header fields
(coinbase, timestamp, difficulty, mixHash, base fee) after the block's system calls, each
earlier transaction run untraced exactly as import runs it (`VM.apply_transaction`), so the
traced one sees the state it saw when the block was made.  `trace_transaction_on` traces a
transaction that is not in a block (debug_traceCall) on a state the caller prepared.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import rlp
from eth.abc import BlockAPI, ChainAPI, SignedTransactionAPI, StateAPI
from eth.vm.forks.prague.constants import MAGIC, SET_CODE_TRANSACTION_TYPE
from eth_keys.datatypes import Signature
from eth_typing import Address

from poai.chain.tracing.engine import (
    TraceEngine,
    Tracer,
    TxEnv,
    TxResult,
    traced_state,
    vm_error_text,
)
from poai.compat.pyevm import generate_contract_address

TracerFactory = Callable[[], Tracer]


@dataclass(frozen=True)
class TracedTransaction:
    index: int
    tx_hash: bytes
    result: Any  # the tracer's result (JSON-ready)


def _authorities(tx: Any) -> tuple[bytes, ...]:
    """The recoverable EIP-7702 authorities of a set-code transaction (others: none)."""
    if tx.type_id != SET_CODE_TRANSACTION_TYPE:  # others raise on authorization_list
        return ()
    out = []
    for auth in tx.authorization_list:
        try:
            message = MAGIC + rlp.encode([auth.chain_id, auth.address, auth.nonce])
            signature = Signature(vrs=(auth.y_parity, auth.r, auth.s))
            out.append(signature.recover_public_key_from_msg(message).to_canonical_address())
        except Exception:  # noqa: S112 - an invalid authorization is skipped, as py-evm does
            continue
    return tuple(out)


def tx_env(state: StateAPI, tx: Any) -> TxEnv:
    """What a tracer sees of `tx` before it runs on `state`."""
    sender = Address(bytes(tx.sender))
    created = None if tx.to else generate_contract_address(sender, state.get_nonce(sender))
    return TxEnv(state=state, sender=sender, to=bytes(tx.to) if tx.to else None,
                 created=created, gas_limit=tx.gas, value=tx.value, data=bytes(tx.data),
                 coinbase=bytes(state.coinbase), authorities=_authorities(tx))


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def replay_block(chain: ChainAPI, block: BlockAPI, tracer_for: Callable[[int], Tracer | None],
                 *, upto: int | None = None, timeout: float | None = None
                 ) -> Iterator[TracedTransaction]:
    """Replay `block`'s transactions (up to index `upto`) on its parent's state; those for
    which `tracer_for(index)` gives a tracer are traced (each within `timeout` seconds; past
    it `TraceAborted` ends the replay).  Yields each traced transaction's result."""
    parent = chain.get_block_header_by_hash(block.header.parent_hash)
    # The block's own header on its parent's state: its execution context (coinbase,
    # timestamp, difficulty, mixHash, base fee) is the block's, and no gas is used yet.
    base = block.header.copy(state_root=parent.state_root, gas_used=0)
    vm: Any = chain.get_vm(base)
    vm.block_preprocessing(block)  # EIP-4788 / EIP-2935 system calls, as import runs them
    header = base
    log_index = 0
    for index, tx in enumerate(block.transactions):
        if upto is not None and index > upto:
            break
        tracer = tracer_for(index)
        if tracer is None:
            receipt, _ = vm.apply_transaction(header, tx)
        else:
            env = tx_env(vm.state, tx)
            engine = TraceEngine(tracer, env, deadline=_deadline(timeout),
                                 first_log_index=log_index)
            tracer.attach(engine)
            tracer.tx_start(env)
            with traced_state(vm.state, engine):
                receipt, computation = vm.apply_transaction(header, tx)
            tracer.tx_end(env, _result(computation, receipt.gas_used - header.gas_used))
            yield TracedTransaction(index, bytes(tx.hash), tracer.result())
        header = vm.add_receipt_to_header(header, receipt)
        header = vm.increment_blob_gas_used(header, tx)
        log_index += len(receipt.logs)


def trace_transaction_on(vm: Any, state: StateAPI, tx: SignedTransactionAPI, tracer: Tracer,
                         *, timeout: float | None = None) -> Any:
    """Trace `tx` (a signed or spoofed transaction) on `state`, which it changes; returns the
    tracer's result.  Raises eth_utils.ValidationError when `tx` is not valid there."""
    executor = state.get_transaction_executor()
    executor.validate_transaction(tx)  # before the tracer sees anything, as geth
    env = tx_env(state, tx)
    engine = TraceEngine(tracer, env, deadline=_deadline(timeout))
    tracer.attach(engine)
    tracer.tx_start(env)
    with traced_state(state, engine):
        message = executor.build_evm_message(tx)
        computation = executor.build_computation(message, tx)
        executor.finalize_computation(tx, computation)
    tracer.tx_end(env, _result(computation, vm.finalize_gas_used(tx, computation)))
    return tracer.result()


def _result(computation: Any, gas_used: int) -> TxResult:
    error = vm_error_text(computation.error) if computation.is_error else None
    return TxResult(gas_used=gas_used, computation=computation, error=error,
                    output=bytes(computation.output))


__all__ = ["TracedTransaction", "TracerFactory", "replay_block", "trace_transaction_on",
           "tx_env"]
