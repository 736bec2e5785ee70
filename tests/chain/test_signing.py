"""The signing message of every transaction type: the bytes py-evm signs and recovers over."""

from __future__ import annotations

import random

import pytest
import rlp
from eth_keys import keys
from poai.chain.signing import signing_message
from poai.chain.vm import PoaiVM
from poai.txpool.pool import recover_sender

KEY = keys.PrivateKey(b"\x07" * 32)
BUILDER = PoaiVM.get_transaction_builder()


def _access_list(rng: random.Random) -> list[tuple[bytes, list[int]]]:
    return [(rng.randbytes(20), [rng.getrandbits(256) for _ in range(rng.randint(0, 3))])
            for _ in range(rng.randint(0, 3))]


def _unsigned(rng: random.Random, kind: int) -> object:
    to = b"" if rng.random() < 0.2 else rng.randbytes(20)  # a creation now and then
    common = dict(chain_id=rng.choice([1, 1337, 2**64 - 1]),
                  nonce=rng.getrandbits(rng.choice([0, 8, 64])),
                  gas=rng.randint(21_000, 30_000_000), to=to,
                  value=rng.getrandbits(rng.choice([0, 1, 100, 256])),
                  data=rng.randbytes(rng.choice([0, 1, 55, 56, 300])),
                  access_list=_access_list(rng))
    if kind == 1:
        return BUILDER.new_unsigned_access_list_transaction(gas_price=rng.getrandbits(64), **common)
    fees = dict(max_priority_fee_per_gas=rng.getrandbits(40), max_fee_per_gas=rng.getrandbits(64))
    if kind == 2:
        return BUILDER.new_unsigned_dynamic_fee_transaction(**fees, **common)
    if kind == 3:
        return BUILDER.new_unsigned_blob_transaction(
            **fees, **{**common, "to": rng.randbytes(20)}, max_fee_per_blob_gas=rng.getrandbits(32),
            blob_versioned_hashes=[b"\x01" + rng.randbytes(31)])
    auths = [dict(chain_id=rng.choice([0, 1337]), address=rng.randbytes(20),
                  nonce=rng.getrandbits(64), y_parity=rng.randint(0, 1),
                  r=rng.getrandbits(256), s=rng.getrandbits(255))
             for _ in range(rng.randint(1, 2))]
    return BUILDER.new_unsigned_set_code_transaction(**fees, **{**common, "to": rng.randbytes(20)},
                                                     authorization_list=auths)


@pytest.mark.parametrize("kind", [1, 2, 3, 4])
def test_typed_signing_message_equals_py_evm(kind: int) -> None:
    rng = random.Random(kind)
    for _ in range(40):
        tx = _unsigned(rng, kind).as_signed_transaction(KEY)  # type: ignore[attr-defined]
        tx = BUILDER.decode(tx.encode())  # as it arrives: decoded from the wire
        assert signing_message(tx) == tx.get_message_for_signing()
        assert recover_sender(tx) == tx.sender == KEY.public_key.to_canonical_address()


def test_golden_vector_dynamic_fee_transfer() -> None:
    # One fixed EIP-1559 transfer: type byte, then the nine signed fields.
    tx = BUILDER.new_unsigned_dynamic_fee_transaction(
        chain_id=1337, nonce=0, max_priority_fee_per_gas=10**9, max_fee_per_gas=10**11, gas=21_000,
        to=b"\x99" * 20, value=1, data=b"", access_list=[]).as_signed_transaction(KEY)
    assert signing_message(tx) == (
        b"\x02" + rlp.encode([1337, 0, 10**9, 10**11, 21_000, b"\x99" * 20, 1, b"", []]))
    assert signing_message(tx).hex() == (
        "02ea820539808"
        "43b9aca0085174876e8008252089499999999999999999999999999999999999999990180c0")


def test_legacy_transactions_keep_py_evm_path() -> None:
    for chain_id in (None, 1337):
        unsigned = BUILDER.create_unsigned_transaction(
            nonce=3, gas_price=10**9, gas=21_000, to=b"\x11" * 20, value=5, data=b"")
        tx = unsigned.as_signed_transaction(KEY, chain_id=chain_id)
        assert signing_message(tx) == tx.get_message_for_signing()
        assert recover_sender(tx) == KEY.public_key.to_canonical_address()


def test_invalid_field_values_raise_as_rlp_does() -> None:
    tx = BUILDER.new_unsigned_dynamic_fee_transaction(
        chain_id=1, nonce=0, max_priority_fee_per_gas=1, max_fee_per_gas=1, gas=21_000,
        to=b"\x99" * 20, value=1, data=b"", access_list=[]).as_signed_transaction(KEY)
    bad = type(tx._inner)(*[*list(tx._inner)[:5], b"\x01" * 19, *list(tx._inner)[6:]])  # 19-byte to
    bad_tx = type(tx)(tx.type_id, bad)
    with pytest.raises(rlp.SerializationError):
        signing_message(bad_tx)
    with pytest.raises(rlp.SerializationError):
        bad_tx.get_message_for_signing()
