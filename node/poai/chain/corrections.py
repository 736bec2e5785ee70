"""Consensus rules py-evm 0.12.1b1 gets wrong, corrected for PoAI's states (consensus-critical).

Each is an official ethereum/tests case that py-evm fails (tests/conformance/test_corrections.py
runs them, against PoAI and against stock py-evm):

- EIP-7610: creating a contract where an account already has storage (but neither code nor a
  nonce) is an address collision, like code or a nonce there (`InitCollisionParis`,
  `create2collisionStorageParis`, `dynamicAccountOverwriteEmpty_Paris`); py-evm looks at code
  and nonce only.
- EIP-1559: a transaction whose max priority fee is above its max fee is invalid (`tipTooHigh`);
  py-evm accepts it.
- EIP-1559: the sender must afford `gas_limit * max_fee_per_gas + value` (plus the blob fee of a
  blob transaction) before execution (`transactionIntinsicBug_Paris`); py-evm checks the gas
  at the effective price plus the value, and the gas at the max fee without the value.
- EIP-4844: a blob transaction cannot create a contract (`createBlobhashTx`); py-evm runs it as
  a creation.
- EIP-3860: a creation transaction whose init code is over 49,152 bytes is invalid
  (`creationTxInitCodeSizeLimit`); py-evm raises OutOfGas out of the state after buying the
  gas, an exception a block import does not expect from a transaction.
- EIP-3607: a transaction from an account with code is invalid (`stEIP3607`); py-evm does not
  check it.  (Prague: an EIP-7702 delegation designator is not such code.)

`CorrectedRules` is mixed into a fork's state class before py-evm's (PoaiState; the Cancun
state of tests/conformance).
"""

from __future__ import annotations

from eth.abc import SignedTransactionAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.vm.forks.cancun.constants import BLOB_TX_TYPE
from eth.vm.forks.cancun.state import get_total_blob_gas
from eth.vm.forks.shanghai.constants import MAX_INITCODE_SIZE
from eth.vm.state import BaseState
from eth_keys.exceptions import BadSignature
from eth_typing import Address
from eth_utils.exceptions import ValidationError

from poai.compat.pyevm_rules import storage_root


def creation_rule_violation(tx: SignedTransactionAPI) -> str | None:
    """A creation rule `tx` breaks (EIP-3860, EIP-4844), in geth's words, or None."""
    if tx.to:
        return None
    if tx.type_id == BLOB_TX_TYPE:
        return "blob transaction of type create"
    if len(tx.data) > MAX_INITCODE_SIZE:
        return f"max initcode size exceeded: code size {len(tx.data)}, limit {MAX_INITCODE_SIZE}"
    return None


def max_cost(tx: SignedTransactionAPI) -> int:
    """What the sender must hold before execution: gas * max fee + value (+ the blob fee)."""
    cost: int = tx.gas * tx.max_fee_per_gas + tx.value
    if tx.type_id == BLOB_TX_TYPE:
        cost += get_total_blob_gas(tx) * tx.max_fee_per_blob_gas
    return cost


def transaction_rule_violation(tx: SignedTransactionAPI, balance: int) -> str | None:
    """The first EIP-1559/3860/4844 rule `tx` breaks, in words, or None."""
    max_fee = tx.max_fee_per_gas
    if tx.max_priority_fee_per_gas > max_fee:
        return (f"max priority fee per gas {tx.max_priority_fee_per_gas} is higher than "
                f"max fee per gas {max_fee}")
    creation = creation_rule_violation(tx)
    if creation is not None:
        return creation
    cost = max_cost(tx)
    if balance < cost:
        return (f"insufficient funds for gas * max fee + value: have {balance}, want {cost}")
    return None


DELEGATION_PREFIX = b"\xef\x01\x00"  # EIP-7702's designator: an EOA's delegated code


class CorrectedRules(BaseState):
    def validate_transaction(self, transaction: SignedTransactionAPI) -> None:
        try:
            sender = transaction.sender
        except BadSignature as exc:  # a signature that recovers no key: an invalid transaction
            raise ValidationError(f"invalid signature: {exc}") from exc
        problem = transaction_rule_violation(transaction, self.get_balance(sender))
        if problem is not None:
            raise ValidationError(problem)
        if self.get_code_hash(sender) != EMPTY_SHA3 and not self.get_code(sender).startswith(
                DELEGATION_PREFIX):
            raise ValidationError(f"sender not an eoa: address 0x{sender.hex()}")
        # A mixin: the fork's state class after it in the MRO implements the rest.
        super().validate_transaction(transaction)  # type: ignore[safe-super]

    def has_code_or_nonce(self, address: Address) -> bool:
        # py-evm asks this only to decide a creation's collision (EIP-684 + EIP-7610).
        return (super().has_code_or_nonce(address)
                or storage_root(self, address) != BLANK_ROOT_HASH)


__all__ = ["CorrectedRules", "creation_rule_violation", "max_cost", "transaction_rule_violation"]
