"""Prague's typed receipt, built and encoded directly.

py-evm builds each receipt through rlp's keyword merging and eth-bloom's pure-Python filter,
computes its type byte with eth_utils' generic `to_bytes` (11 us) and encodes its body through
rlp's sedes walk (a 256-byte bloom among four fields): all once per transaction executed.  The
same objects and bytes here (tests/chain/test_receipts.py); logs keep rlp's sedes, and each
address's and topic's bloom bits are cached (a contract emits the same ones again and again).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property, lru_cache

from eth.abc import ReceiptAPI
from eth.rlp.logs import Log
from eth.rlp.receipts import Receipt
from eth.vm.forks.prague.receipts import PragueReceiptBuilder, PragueTypedReceipt
from eth_hash.auto import keccak
from rlp.sedes import CountableList

from poai.chain.immutable import build_fields
from poai.chain.rlpcodec import encode_item, encode_list_payload, encode_string, encode_uint
from poai.compat.pyevm import cache_rlp, cached_rlp

_LOGS = CountableList(Log)
_BLOOM_PREFIX = b"\xb9\x01\x00"  # a 256-byte string


def encode_receipt_body(receipt: ReceiptAPI) -> bytes:
    """``rlp.encode(receipt)`` of a (legacy-shaped) receipt: [status, gas, bloom, logs]."""
    cached = cached_rlp(receipt)
    if cached:
        return cached
    logs = receipt.logs
    encoded = encode_list_payload(
        encode_string(receipt.state_root) + encode_uint(receipt.gas_used)
        + _BLOOM_PREFIX + receipt.bloom.to_bytes(256, "big")
        + (encode_item(_LOGS.serialize(logs)) if logs else b"\xc0"))
    cache_rlp(receipt, encoded)
    return encoded


def _bloom_bits(item: bytes) -> int:
    """The three bloom bits of one log address or topic (the yellow paper's M3:2048)."""
    h = keccak(item)
    return ((1 << (((h[0] << 8) | h[1]) & 2047)) | (1 << (((h[2] << 8) | h[3]) & 2047))
            | (1 << (((h[4] << 8) | h[5]) & 2047)))


# A contract emits the same addresses and event topics again and again.
@lru_cache(4096)
def address_bloom_bits(address: bytes) -> int:
    return _bloom_bits(address)


@lru_cache(4096)
def topic_bloom_bits(topic: int) -> int:
    return _bloom_bits(topic.to_bytes(32, "big"))


def logs_bloom(logs: Sequence[Log]) -> int:
    """``int(BloomFilter.from_iterable(bloomables of logs))``."""
    bloom = 0
    for log in logs:
        bloom |= address_bloom_bits(log.address)
        for topic in log.topics:
            bloom |= topic_bloom_bits(topic)
    return bloom


def new_receipt(status: bytes, gas_used: int,
                log_entries: Sequence[tuple[bytes, tuple[int, ...], bytes]]) -> Receipt:
    """py-evm's typed transactions' ``make_receipt`` body (a `Receipt` with the logs' bloom),
    built without rlp's keyword merging: once per transaction executed."""
    logs = tuple(Log(address, topics, data) for address, topics, data in log_entries)
    bloom = logs_bloom(logs)
    return build_fields(Receipt, state_root=status, gas_used=gas_used,  # type: ignore[type-abstract]
                        bloom=bloom, logs=logs)


class PoaiTypedReceipt(PragueTypedReceipt):
    @cached_property
    def _type_byte(self) -> bytes:
        return bytes((self.type_id,))

    def encode(self) -> bytes:
        return self._type_byte + encode_receipt_body(self._inner)


class PoaiReceiptBuilder(PragueReceiptBuilder):
    typed_receipt_class = PoaiTypedReceipt


__all__ = [
    "PoaiReceiptBuilder", "PoaiTypedReceipt", "address_bloom_bits", "encode_receipt_body",
    "logs_bloom", "new_receipt", "topic_bloom_bits",
]
