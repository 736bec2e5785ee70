from __future__ import annotations

import pytest
import rlp
from poai.p2p import messages as m

STATUS = m.Status(m.PROTOCOL_VERSION, 7, b"\x11" * 32, b"\x22" * 32, 5, 100)


def test_status_roundtrip_and_compatibility() -> None:
    assert m.Status.decode(STATUS.encode()) == STATUS
    m.check_compatible(STATUS, STATUS)


@pytest.mark.parametrize(
    "field,value",
    [("chain_id", 8), ("genesis_hash", b"\x12" * 32), ("protocol_version", 99)],
)
def test_status_of_another_chain_is_refused(field: str, value: object) -> None:
    other = m.Status(**{**STATUS.__dict__, field: value})  # type: ignore[arg-type]
    with pytest.raises(m.HandshakeRefused):
        m.check_compatible(STATUS, other)


def test_status_with_short_hash_is_malformed() -> None:
    bad = rlp.encode([1, 7, b"\x11" * 31, b"\x22" * 32, 5, 100])
    with pytest.raises(m.MalformedMessage):
        m.Status.decode(bad)


@pytest.mark.parametrize("garbage", [b"", b"\xff\x00\x01", b"\xc0", b"hello world", b"\x83ab"])
def test_garbage_raises_malformed(garbage: bytes) -> None:
    for decode in (m.Status.decode, m.BlockAnnouncement.decode, m.decode_transactions,
                   m.decode_hashes, m.decode_response):
        with pytest.raises(m.MalformedMessage):
            decode(garbage)
    with pytest.raises(m.MalformedMessage):
        m.RangeRequest.decode(garbage, 10)


def test_block_announcement_carries_small_blocks_and_hashes_big_ones() -> None:
    small = m.BlockAnnouncement.for_block(b"\x01" * 32, 3, 50, b"\xc0" * 100)
    assert m.BlockAnnouncement.decode(small.encode()) == small
    big = m.BlockAnnouncement.for_block(b"\x01" * 32, 3, 50, b"\x00" * (m.MAX_GOSSIP_BLOCK + 1))
    assert big.block_rlp == b""
    assert m.BlockAnnouncement.decode(big.encode()).block_hash == b"\x01" * 32
    with pytest.raises(m.MessageTooLarge):
        m.BlockAnnouncement(b"\x01" * 32, 3, 50, b"\x00" * (m.MAX_GOSSIP_BLOCK + 1)).encode()


def test_oversized_gossip_is_refused_before_decoding() -> None:
    with pytest.raises(m.MessageTooLarge):
        m.BlockAnnouncement.decode(b"\x00" * (m.MAX_GOSSIP_SIZE + 1))


def test_transactions_roundtrip_and_bounds() -> None:
    txs = [b"\x02" + bytes([i]) * 40 for i in range(5)]
    assert m.decode_transactions(m.encode_transactions(txs)) == txs
    with pytest.raises(m.MessageTooLarge):
        m.encode_transactions([b"\x01"] * (m.MAX_TXS_PER_GOSSIP + 1))
    too_many = rlp.encode([b"\x01"] * (m.MAX_TXS_PER_GOSSIP + 1))
    with pytest.raises(m.MessageTooLarge):
        m.decode_transactions(too_many)
    with pytest.raises(m.MalformedMessage):
        m.decode_transactions(rlp.encode([b""]))


def test_range_request_bounds() -> None:
    assert m.RangeRequest.decode(m.RangeRequest(10, 20).encode(), 128) == m.RangeRequest(10, 20)
    with pytest.raises(m.MessageTooLarge):
        m.RangeRequest.decode(m.RangeRequest(0, 129).encode(), 128)
    with pytest.raises(m.MalformedMessage):
        m.RangeRequest.decode(m.RangeRequest(0, 0).encode(), 128)


def test_hash_requests() -> None:
    hashes = [bytes([i]) * 32 for i in range(3)]
    assert m.decode_hashes(m.encode_hashes(hashes)) == hashes
    with pytest.raises(m.MalformedMessage):
        m.decode_hashes(m.encode_hashes([]))
    with pytest.raises(m.MessageTooLarge):
        m.encode_hashes([b"\x00" * 32] * (m.MAX_HASHES_PER_REQUEST + 1))


def test_blob_request_is_a_sha256() -> None:
    digest = "ab" * 32
    assert m.decode_blob_request(m.encode_blob_request(digest)) == digest
    with pytest.raises(m.MalformedMessage):
        m.decode_blob_request(b"\x00" * 31)


def test_responses() -> None:
    assert m.decode_response(m.encode_response(m.RESPONSE_OK, b"data")) == b"data"
    with pytest.raises(m.ResponseError) as err:
        m.decode_response(m.encode_response(m.RESPONSE_NOT_FOUND, b"no such block"))
    assert err.value.code == m.RESPONSE_NOT_FOUND
    items = [b"a", b"bc", b""]
    assert m.decode_items(m.encode_items(items), 10) == items
    with pytest.raises(m.MessageTooLarge):
        m.decode_items(m.encode_items(items), 2)


def test_framing() -> None:
    framed = m.frame(b"abc", 10)
    assert m.frame_length(framed[:4], 10) == 3
    with pytest.raises(m.MessageTooLarge):
        m.frame(b"x" * 11, 10)
    with pytest.raises(m.MessageTooLarge):
        m.frame_length((11).to_bytes(4, "big"), 10)
    with pytest.raises(m.MalformedMessage):
        m.frame_length(b"\x00\x00", 10)
