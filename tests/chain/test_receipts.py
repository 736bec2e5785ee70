"""PoAI's typed receipts: py-evm's bytes, with and without logs."""

from __future__ import annotations

import pytest
import rlp
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.prague.receipts import PragueReceiptBuilder, PragueTypedReceipt
from poai.chain.receipts import (
    PoaiReceiptBuilder,
    PoaiTypedReceipt,
    encode_receipt_body,
    logs_bloom,
    new_receipt,
)
from poai.chain.vm import PoaiVM

LOGS = [
    [],
    [Log(b"\x11" * 20, [], b"")],
    [Log(b"\x22" * 20, [1, 2**256 - 1], b"\x00" * 300), Log(b"\x33" * 20, [7], b"\x01")],
]


def py_evm_bytes(type_id: int, status: bytes, gas_used: int, logs: list[Log]) -> bytes:
    """py-evm's own encoding of a typed receipt (EIP-2718: type || rlp(receipt)), from a fresh
    Receipt through rlp's generic encoder and py-evm's PragueTypedReceipt."""
    inner = Receipt(state_root=status, gas_used=gas_used, logs=logs)
    encoded = PragueTypedReceipt(type_id, inner).encode()
    assert encoded == bytes([type_id]) + rlp.encode(
        Receipt(state_root=status, gas_used=gas_used, logs=logs), cache=False)
    return encoded


@pytest.mark.parametrize("logs", LOGS)
@pytest.mark.parametrize("type_id", [1, 2, 3, 4])
def test_typed_receipt_encoding_equals_py_evm(logs: list[Log], type_id: int) -> None:
    expected = py_evm_bytes(type_id, b"\x01", 123_456, logs)
    ours = PoaiTypedReceipt(type_id, Receipt(state_root=b"\x01", gas_used=123_456, logs=logs))
    assert ours.encode() == expected
    assert ours.encode() == expected  # again, from the body cached by the first call
    decoded = PoaiReceiptBuilder.decode(expected)
    assert type(decoded) is PoaiTypedReceipt and decoded.encode() == expected
    assert PragueReceiptBuilder.decode(ours.encode()) == PragueReceiptBuilder.decode(expected)


@pytest.mark.parametrize("status", [b"", b"\x01"])
def test_receipt_body_cached_by_rlp_is_py_evm_bytes(status: bytes) -> None:
    """A body rlp.encode has cached (py-evm encodes receipts for the receipt trie) is reused
    as is, and equals an uncached encoding."""
    receipt = Receipt(state_root=status, gas_used=7, logs=LOGS[2])
    cached = rlp.encode(receipt, cache=True)
    assert encode_receipt_body(receipt) is cached
    assert cached == rlp.encode(Receipt(state_root=status, gas_used=7, logs=LOGS[2]),
                                cache=False)


def test_legacy_receipt_body_and_failure_status() -> None:
    for status in (b"", b"\x01"):
        receipt = Receipt(state_root=status, gas_used=0, logs=LOGS[2])
        expected = rlp.encode(Receipt(state_root=status, gas_used=0, logs=LOGS[2]), cache=False)
        assert encode_receipt_body(receipt) == expected
        assert encode_receipt_body(receipt) == expected  # cached on the receipt now


def test_transactions_make_poai_receipts() -> None:
    from eth_keys import keys

    builder = PoaiVM.get_transaction_builder()
    tx = builder.decode(builder.new_unsigned_dynamic_fee_transaction(
        chain_id=1, nonce=0, max_priority_fee_per_gas=1, max_fee_per_gas=2, gas=21_000,
        to=b"\x01" * 20, value=0, data=b"", access_list=[],
    ).as_signed_transaction(keys.PrivateKey(b"\x01" * 32)).encode())
    receipt = tx.make_receipt(b"\x01", 21_000, ())
    assert type(receipt) is PoaiTypedReceipt
    assert receipt.encode() == py_evm_bytes(2, b"\x01", 21_000, [])


@pytest.mark.parametrize("logs", LOGS)
def test_new_receipt_equals_py_evm_receipt(logs: list[Log]) -> None:
    entries = tuple((log.address, log.topics, log.data) for log in logs)
    ours = new_receipt(b"\x01", 42_000, entries)
    theirs = Receipt(state_root=b"\x01", gas_used=42_000, logs=logs)
    assert ours == theirs and rlp.encode(ours) == rlp.encode(theirs)
    assert ours.bloom == theirs.bloom and (ours.bloom != 0) == bool(logs)
    fresh = Receipt(state_root=b"\x01", gas_used=42_000, logs=logs)
    assert set(fresh.__dict__) == set(Receipt._meta.field_attrs)  # what build_fields relies on


def test_logs_bloom_equals_eth_bloom() -> None:
    import random

    from eth_bloom import BloomFilter

    rng = random.Random(9)
    for _ in range(50):
        logs = [Log(rng.randbytes(20), [rng.getrandbits(256) for _ in range(rng.randint(0, 4))],
                    b"") for _ in range(rng.randint(0, 4))]
        expected = int(BloomFilter.from_iterable(b for log in logs for b in log.bloomables))
        assert logs_bloom(logs) == logs_bloom(logs) == expected  # cold, then cached bits


def test_validate_receipt_matches_py_evm() -> None:
    from eth.vm.forks.prague import PragueVM
    from eth_utils import ValidationError

    logs = LOGS[2]
    good = Receipt(state_root=b"\x01", gas_used=1, logs=logs)
    partial = logs_bloom(logs[:1]) | logs_bloom([Log(logs[1].address, [], b"")])
    missing_topic = Receipt(state_root=b"\x01", gas_used=1, logs=logs, bloom=partial)
    missing_address = Receipt(state_root=b"", gas_used=1, logs=logs, bloom=0)
    bad_status = Receipt(state_root=b"\x02", gas_used=1, logs=[])
    for receipt in (good, missing_topic, missing_address, bad_status):
        outcomes = []
        for vm in (PragueVM, PoaiVM):
            try:
                vm.validate_receipt(receipt)
                outcomes.append("ok")
            except ValidationError as exc:
                outcomes.append(str(exc))
        assert outcomes[0] == outcomes[1]
    with pytest.raises(ValidationError, match="topic at position 0 from the log entry at posi"):
        PoaiVM.validate_receipt(missing_topic)
