"""Prague's transaction classes, with the per-transaction conversions made direct.

py-evm computes a typed transaction's type byte (used by its hash, its encoding and its
signing message) with eth_utils' generic `to_bytes`, 11 us per transaction decoded: a third
of hashing it.  Same classes otherwise; same bytes (tests/chain/test_transactions.py).
"""

from __future__ import annotations

from functools import cached_property

from eth.abc import DecodedZeroOrOneLayerRLP, ReceiptAPI, SignedTransactionAPI
from eth.vm.forks.berlin.transactions import TypedTransaction
from eth.vm.forks.prague.transactions import PragueTransactionBuilder, PragueTypedTransaction

from poai.chain.receipts import PoaiReceiptBuilder, PoaiTypedReceipt, new_receipt


class PoaiTypedTransaction(PragueTypedTransaction):
    receipt_builder = PoaiReceiptBuilder

    @classmethod
    def decode(cls, encoded: bytes) -> SignedTransactionAPI:
        type_id = encoded[0]  # a byte, already an int
        return cls(type_id, cls.get_payload_codec(type_id).decode(encoded[1:]))

    @cached_property
    def _type_byte(self) -> bytes:
        return bytes((self.type_id,))  # type: ignore[arg-type]  # set by __init__

    def make_receipt(
        self, status: bytes, gas_used: int,
        log_entries: tuple[tuple[bytes, tuple[int, ...], bytes], ...],
    ) -> ReceiptAPI:
        # Every typed payload's own make_receipt is this same Receipt (py-evm, Berlin-Prague).
        receipt = new_receipt(status, gas_used, log_entries)
        return PoaiTypedReceipt(self.type_id, receipt)  # type: ignore[arg-type]


class PoaiTransactionBuilder(PragueTransactionBuilder):
    typed_transaction = PoaiTypedTransaction

    @classmethod
    def serialize(cls, obj: SignedTransactionAPI) -> DecodedZeroOrOneLayerRLP:
        # Any fork's typed transaction is typed (py-evm tests against this fork's class only,
        # and so would encode e.g. a London-built one as legacy).
        if isinstance(obj, TypedTransaction):
            return cls.typed_transaction.serialize(obj)
        return cls.legacy_signed.serialize(obj)


__all__ = ["PoaiTransactionBuilder", "PoaiTypedTransaction"]
