"""The txpool refuses the transactions blocks refuse where py-evm alone would not
(poai.chain.corrections): blob creations, over-long init code, blob fees the sender cannot pay,
and (as before) a priority fee above the max fee."""

from __future__ import annotations

import re

import pytest
from eth_keys import keys
from poai.chain.transactions import PoaiTransactionBuilder
from poai.txpool.pool import TxPoolError, decode_transaction
from support.devnode import ACCOUNTS, CHAIN_ID, FUNDS, DevNode, sign

GWEI = 10**9
BLOB_HASH = b"\x01" + b"\x00" * 31


def blob_tx(to: bytes, max_fee_per_blob_gas: int = GWEI, value: int = 0) -> bytes:
    unsigned = PoaiTransactionBuilder.new_unsigned_blob_transaction(
        chain_id=CHAIN_ID, nonce=0, max_priority_fee_per_gas=GWEI, max_fee_per_gas=3 * GWEI,
        gas=100_000, to=to, value=value, data=b"", access_list=[],
        max_fee_per_blob_gas=max_fee_per_blob_gas, blob_versioned_hashes=[BLOB_HASH])
    signed = unsigned.as_signed_transaction(keys.PrivateKey(bytes(ACCOUNTS[0].key)))
    return bytes(signed.encode())


def add(node: DevNode, raw: bytes) -> bytes:
    return node.txpool.add(decode_transaction(node._builder, raw))


@pytest.fixture
def node() -> DevNode:
    return DevNode()


def test_blob_transaction_creating_a_contract_is_refused(node: DevNode) -> None:
    with pytest.raises(TxPoolError, match="blob transaction of type create"):
        add(node, blob_tx(to=b""))
    assert len(node.txpool) == 0
    add(node, blob_tx(to=b"\x22" * 20))  # the same transaction with a recipient is fine
    assert len(node.txpool) == 1


def test_blob_fee_counts_in_the_funds_needed(node: DevNode) -> None:
    # 131,072 blob gas at FUNDS // 100,000 wei each is more than the sender holds.
    with pytest.raises(TxPoolError, match=re.escape("insufficient funds")):
        add(node, blob_tx(to=b"\x22" * 20, max_fee_per_blob_gas=FUNDS // 100_000))
    assert len(node.txpool) == 0


def test_init_code_over_the_eip3860_limit_is_refused(node: DevNode) -> None:
    data = b"\x00" * (49_152 + 1)
    with pytest.raises(TxPoolError, match="max initcode size exceeded: code size 49153"):
        add(node, sign(0, nonce=0, to="", data=data, gas=1_000_000))
    add(node, sign(0, nonce=0, to="", data=data[:-1], gas=1_000_000))
    assert len(node.txpool) == 1


def test_priority_fee_above_max_fee_is_refused(node: DevNode) -> None:
    with pytest.raises(TxPoolError, match="max priority fee per gas higher than max fee"):
        add(node, sign(0, nonce=0, maxPriorityFeePerGas=4 * GWEI, maxFeePerGas=3 * GWEI))
