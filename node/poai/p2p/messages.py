"""Wire formats of the PoAI P2P protocols.

Every payload is RLP with fixed sedes; blocks, headers and transactions travel as their own
canonical encodings (opaque bytes here), so this module does not depend on the chain. Stream
frames are a 4-byte big-endian length followed by the payload; every size is bounded before
anything is allocated or decoded. Decoding anything malformed raises ``MalformedMessage``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import rlp
from rlp.sedes import Binary, CountableList, big_endian_int, binary

_encode: Callable[..., bytes] = rlp.encode  # (untyped in rlp)

PROTOCOL_VERSION = 1

# Protocol ids of the request/response streams.
STATUS_PROTOCOL = "/poai/status/1"
HEADERS_BY_RANGE_PROTOCOL = "/poai/headers-by-range/1"
HEADERS_BY_HASH_PROTOCOL = "/poai/headers-by-hash/1"
BLOCKS_BY_RANGE_PROTOCOL = "/poai/blocks-by-range/1"
BLOCKS_BY_HASH_PROTOCOL = "/poai/blocks-by-hash/1"
BLOB_BY_HASH_PROTOCOL = "/poai/blob-by-hash/1"

# Limits. Gossip stays far below py-libp2p's 1 MiB pubsub frame (bigger payloads are dropped
# silently there); block bodies above MAX_GOSSIP_BLOCK are announced by hash and fetched.
MAX_REQUEST_SIZE = 16 * 1024
MAX_RESPONSE_SIZE = 32 * 1024 * 1024
MAX_GOSSIP_SIZE = 512 * 1024
MAX_GOSSIP_BLOCK = 256 * 1024
MAX_HEADERS_PER_REQUEST = 512
MAX_BLOCKS_PER_REQUEST = 128
MAX_HASHES_PER_REQUEST = 128
MAX_TXS_PER_GOSSIP = 256
MAX_TX_SIZE = 128 * 1024
MAX_BLOB_SIZE = 32 * 1024 * 1024 - 1024

_hash32 = Binary.fixed_length(32)


class WireError(ValueError):
    """A message that must not be processed; the sender is to blame."""


class MalformedMessage(WireError):
    """Bytes that do not decode to the expected message."""


class MessageTooLarge(WireError):
    """A message beyond the protocol's size bound."""


def topic_blocks(chain_id: int) -> str:
    return f"/poai/{chain_id}/blocks/1"


def topic_transactions(chain_id: int) -> str:
    return f"/poai/{chain_id}/txs/1"


def _decode(data: bytes, sedes: Any, what: str, limit: int) -> Any:
    if not isinstance(data, bytes | bytearray):
        raise MalformedMessage(f"{what}: expected bytes, got {type(data).__name__}")
    if len(data) > limit:
        raise MessageTooLarge(f"{what}: {len(data)} bytes exceeds the limit of {limit}")
    try:
        return rlp.decode(bytes(data), sedes=sedes, strict=True)
    except (rlp.exceptions.DecodingError, rlp.exceptions.DeserializationError) as exc:
        raise MalformedMessage(f"{what}: undecodable ({exc.__class__.__name__})") from exc


def _check_count(n: int, limit: int, what: str) -> None:
    if n > limit:
        raise MessageTooLarge(f"{what}: {n} items exceeds the limit of {limit}")


# ----------------------------------------------------------------------------- status


@dataclass(frozen=True)
class Status:
    """The handshake: peers of another chain (chain id or genesis) are refused."""

    protocol_version: int
    chain_id: int
    genesis_hash: bytes
    head_hash: bytes
    head_number: int
    total_difficulty: int

    _sedes = rlp.sedes.List(
        [big_endian_int, big_endian_int, _hash32, _hash32, big_endian_int, big_endian_int]
    )

    def encode(self) -> bytes:
        return _encode(
            [
                self.protocol_version,
                self.chain_id,
                self.genesis_hash,
                self.head_hash,
                self.head_number,
                self.total_difficulty,
            ],
            sedes=self._sedes,
        )

    @classmethod
    def decode(cls, data: bytes) -> Status:
        v, cid, gh, hh, hn, td = _decode(data, cls._sedes, "status", 1024)
        return cls(v, cid, gh, hh, hn, td)


class HandshakeRefused(WireError):
    """The remote status belongs to another chain or protocol version."""


def check_compatible(local: Status, remote: Status) -> None:
    """Raise HandshakeRefused when ``remote`` is not a peer of our chain."""
    if remote.protocol_version != local.protocol_version:
        raise HandshakeRefused(
            f"protocol version {remote.protocol_version} != ours {local.protocol_version}"
        )
    if remote.chain_id != local.chain_id:
        raise HandshakeRefused(f"chain id {remote.chain_id} != ours {local.chain_id}")
    if remote.genesis_hash != local.genesis_hash:
        raise HandshakeRefused(
            f"genesis {remote.genesis_hash.hex()} != ours {local.genesis_hash.hex()}"
        )


# ----------------------------------------------------------------------------- gossip


@dataclass(frozen=True)
class BlockAnnouncement:
    """A new block: the whole block RLP when small, else only hash and number (fetch it)."""

    block_hash: bytes
    number: int
    total_difficulty: int
    block_rlp: bytes  # b"" when the block must be fetched by hash

    _sedes = rlp.sedes.List([_hash32, big_endian_int, big_endian_int, binary])

    def encode(self) -> bytes:
        if len(self.block_rlp) > MAX_GOSSIP_BLOCK:
            raise MessageTooLarge(
                f"block of {len(self.block_rlp)} bytes must be announced by hash"
            )
        return _encode(
            [self.block_hash, self.number, self.total_difficulty, self.block_rlp],
            sedes=self._sedes,
        )

    @classmethod
    def for_block(
        cls, block_hash: bytes, number: int, total_difficulty: int, block_rlp: bytes
    ) -> BlockAnnouncement:
        body = block_rlp if len(block_rlp) <= MAX_GOSSIP_BLOCK else b""
        return cls(block_hash, number, total_difficulty, body)

    @classmethod
    def decode(cls, data: bytes) -> BlockAnnouncement:
        h, n, td, body = _decode(data, cls._sedes, "block announcement", MAX_GOSSIP_SIZE)
        if len(body) > MAX_GOSSIP_BLOCK:
            raise MessageTooLarge(f"gossiped block of {len(body)} bytes")
        return cls(h, n, td, body)


def encode_transactions(raw_txs: list[bytes]) -> bytes:
    _check_count(len(raw_txs), MAX_TXS_PER_GOSSIP, "transactions")
    return _encode(list(raw_txs), sedes=CountableList(binary))


def decode_transactions(data: bytes) -> list[bytes]:
    txs: list[bytes] = list(
        _decode(data, CountableList(binary), "transactions", MAX_GOSSIP_SIZE)
    )
    if not txs:
        raise MalformedMessage("transaction gossip with no transactions")
    _check_count(len(txs), MAX_TXS_PER_GOSSIP, "transactions")
    for tx in txs:
        if not tx or len(tx) > MAX_TX_SIZE:
            raise MalformedMessage(f"transaction of {len(tx)} bytes")
    return txs


# ----------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class RangeRequest:
    """Headers or blocks numbered ``start .. start+count-1`` on the server's canonical chain."""

    start: int
    count: int

    _sedes = rlp.sedes.List([big_endian_int, big_endian_int])

    def encode(self) -> bytes:
        return _encode([self.start, self.count], sedes=self._sedes)

    @classmethod
    def decode(cls, data: bytes, max_count: int) -> RangeRequest:
        start, count = _decode(data, cls._sedes, "range request", MAX_REQUEST_SIZE)
        if count == 0:
            raise MalformedMessage("range request for 0 items")
        _check_count(count, max_count, "range request")
        return cls(start, count)


def encode_hashes(hashes: list[bytes]) -> bytes:
    _check_count(len(hashes), MAX_HASHES_PER_REQUEST, "hash request")
    return _encode(list(hashes), sedes=CountableList(_hash32))


def decode_hashes(data: bytes) -> list[bytes]:
    hashes: list[bytes] = list(
        _decode(data, CountableList(_hash32), "hash request", MAX_REQUEST_SIZE)
    )
    if not hashes:
        raise MalformedMessage("hash request with no hashes")
    _check_count(len(hashes), MAX_HASHES_PER_REQUEST, "hash request")
    return hashes


def encode_items(items: list[bytes]) -> bytes:
    """A response of opaque encoded items (headers, blocks)."""
    return _encode(list(items), sedes=CountableList(binary))


def decode_items(data: bytes, max_count: int) -> list[bytes]:
    items: list[bytes] = list(
        _decode(data, CountableList(binary), "item list", MAX_RESPONSE_SIZE)
    )
    _check_count(len(items), max_count, "item list")
    return items


def encode_blob_request(digest: str) -> bytes:
    return bytes.fromhex(digest)


def decode_blob_request(data: bytes) -> str:
    if len(data) != 32:
        raise MalformedMessage(f"blob request of {len(data)} bytes, expected a 32-byte sha256")
    return data.hex()


# ----------------------------------------------------------------------------- responses

RESPONSE_OK = 0
RESPONSE_NOT_FOUND = 1
RESPONSE_INVALID_REQUEST = 2
RESPONSE_SERVER_ERROR = 3

_response_sedes = rlp.sedes.List([big_endian_int, binary])


class ResponseError(Exception):
    """The server answered with an error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"peer answered error {code}: {message}")
        self.code = code


def encode_response(code: int, payload: bytes) -> bytes:
    return _encode([code, payload], sedes=_response_sedes)


def decode_response(data: bytes) -> bytes:
    """The payload of an OK response; raises ResponseError for an error answer."""
    code, payload = _decode(data, _response_sedes, "response", MAX_RESPONSE_SIZE)
    if code != RESPONSE_OK:
        raise ResponseError(code, payload[:200].decode("utf-8", "replace"))
    return bytes(payload)


# ----------------------------------------------------------------------------- framing


def frame(payload: bytes, limit: int) -> bytes:
    if len(payload) > limit:
        raise MessageTooLarge(f"frame of {len(payload)} bytes exceeds the limit of {limit}")
    return len(payload).to_bytes(4, "big") + payload


def frame_length(prefix: bytes, limit: int) -> int:
    """Length announced by a 4-byte frame prefix, checked against ``limit``."""
    if len(prefix) != 4:
        raise MalformedMessage(f"truncated frame prefix ({len(prefix)} bytes)")
    n = int.from_bytes(prefix, "big")
    if n > limit:
        raise MessageTooLarge(f"frame of {n} bytes exceeds the limit of {limit}")
    return n
