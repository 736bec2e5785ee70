"""PoAI's transaction classes: py-evm's Prague bytes, hashes and senders."""

from __future__ import annotations

import pytest
import rlp
from eth.vm.forks.prague.transactions import PragueTransactionBuilder
from eth_keys import keys
from eth_utils import ValidationError
from poai.chain.transactions import PoaiTransactionBuilder, PoaiTypedTransaction
from poai.chain.vm import PoaiBlock, PoaiVM

KEY = keys.PrivateKey(b"\x05" * 32)


def _signed() -> list[object]:
    b = PoaiTransactionBuilder
    common = dict(chain_id=1337, nonce=1, gas=50_000, to=b"\x42" * 20, value=7, data=b"\x01\x02",
                  access_list=[(b"\x11" * 20, [1, 2])])
    fees = dict(max_priority_fee_per_gas=10**9, max_fee_per_gas=10**10)
    return [
        b.create_unsigned_transaction(nonce=0, gas_price=10**9, gas=21_000, to=b"\x42" * 20,
                                      value=1, data=b"").as_signed_transaction(KEY, chain_id=1337),
        b.new_unsigned_access_list_transaction(gas_price=10**9, **common)
        .as_signed_transaction(KEY),
        b.new_unsigned_dynamic_fee_transaction(**fees, **common).as_signed_transaction(KEY),
        b.new_unsigned_set_code_transaction(**fees, **common, authorization_list=[dict(
            chain_id=1337, address=b"\x33" * 20, nonce=0, y_parity=1, r=5, s=6)],
        ).as_signed_transaction(KEY),
    ]


@pytest.mark.parametrize("index", range(4))
def test_decoded_transactions_equal_py_evm(index: int) -> None:
    raw = _signed()[index].encode()  # type: ignore[attr-defined]
    ours, theirs = PoaiTransactionBuilder.decode(raw), PragueTransactionBuilder.decode(raw)
    assert ours.encode() == theirs.encode() == raw
    assert ours.hash == theirs.hash and ours.sender == theirs.sender
    assert ours.get_message_for_signing() == theirs.get_message_for_signing()
    assert isinstance(ours, PoaiTypedTransaction) == (index > 0)


def test_block_encodes_every_fork_typed_transaction_as_typed() -> None:
    txs = _signed()  # built by py-evm's London/Berlin/Prague classes, not ours
    header = PoaiVM.create_header_from_parent(
        None, difficulty=7, gas_limit=30_000_000, timestamp=1, base_fee_per_gas=10**9)
    block = PoaiBlock(header=header, transactions=txs, uncles=[], withdrawals=[])
    again = rlp.decode(rlp.encode(block), sedes=PoaiBlock)
    assert [t.hash for t in again.transactions] == [t.hash for t in txs]  # type: ignore[attr-defined]
    kinds = [type(t) is PoaiTypedTransaction for t in again.transactions]
    assert kinds == [False, True, True, True]


def test_bad_encodings_raise_as_py_evm_does() -> None:
    with pytest.raises(ValidationError, match="empty"):
        PoaiTransactionBuilder.decode(b"")
    with pytest.raises(rlp.DecodingError):
        PoaiTransactionBuilder.decode(b"\x02\xc5\x01")  # typed, truncated payload
