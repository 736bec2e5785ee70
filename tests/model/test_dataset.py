from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from poai.model.dataset import (
    HEADER_LEN,
    DatasetError,
    EncryptedDataset,
    build_dataset,
    encode_header,
    encrypt_records,
    record_size,
    seal_payload,
)

KEY = bytes(range(32))
TEXT = ("The quick brown fox jumps over the lazy dog. " * 40).encode()


def _build(tmp_path: Path, sample_len: int = 16, text: bytes = TEXT) -> tuple[Path, str]:
    src = tmp_path / "text.txt"
    src.write_bytes(text)
    out = tmp_path / "ds.poaids"
    return out, build_dataset(src, out, KEY, sample_len)


def _record_offset(index: int, sample_len: int) -> int:
    return HEADER_LEN + index * record_size(sample_len)


def test_round_trip_records_are_text_chunks(tmp_path: Path) -> None:
    out, digest = _build(tmp_path)
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    with EncryptedDataset.open(out, KEY, expected_sha256=digest) as ds:
        assert ds.sha256 == digest
        assert ds.sample_len == 16
        assert len(ds) == len(TEXT) // 16
        for i in (0, 1, len(ds) - 1):
            tokens = ds.record_tokens(i)
            assert len(tokens) == 16
            assert bytes(tokens) == TEXT[i * 16 : (i + 1) * 16]
    assert out.stat().st_size == HEADER_LEN + len(TEXT) // 16 * record_size(16)


def test_ciphertext_hides_the_text(tmp_path: Path) -> None:
    out, _ = _build(tmp_path)
    assert b"quick brown" not in out.read_bytes()
    assert hashlib.sha256(TEXT[:16]).digest() not in out.read_bytes()


def test_cached_records_are_copies(tmp_path: Path) -> None:
    out, _ = _build(tmp_path)
    with EncryptedDataset.open(out, KEY, cache_size=2) as ds:
        a = ds.record_tokens(3)
        a[0] = 999
        assert ds.record_tokens(3)[0] != 999
        for i in range(6):  # evicts and re-decrypts
            ds.record_tokens(i)
        assert bytes(ds.record_tokens(3)) == TEXT[48:64]


@pytest.mark.parametrize("where", ["ciphertext", "tag"])
def test_tampered_record_is_rejected_naming_index(tmp_path: Path, where: str) -> None:
    out, _ = _build(tmp_path)
    data = bytearray(out.read_bytes())
    off = _record_offset(5, 16) + (3 if where == "ciphertext" else record_size(16) - 1)
    data[off] ^= 0x80
    out.write_bytes(bytes(data))
    with EncryptedDataset.open(out, KEY) as ds:
        assert bytes(ds.record_tokens(4)) == TEXT[64:80]  # neighbours are intact
        with pytest.raises(DatasetError, match="record 5: authentication failed"):
            ds.record_tokens(5)


def test_wrong_sha256_inside_a_valid_ciphertext_is_rejected(tmp_path: Path) -> None:
    # A record that authenticates under the key but carries the wrong digest (a buggy or
    # malicious builder) must still be refused.
    records = [TEXT[i * 16 : (i + 1) * 16] for i in range(4)]
    header = encode_header(16, 4, KEY)
    blob = bytearray(encrypt_records(KEY, 16, records))
    forged = seal_payload(KEY, header, 2, records[2] + hashlib.sha256(b"other").digest())
    blob[_record_offset(2, 16) : _record_offset(3, 16)] = forged
    out = tmp_path / "forged.poaids"
    out.write_bytes(bytes(blob))
    with EncryptedDataset.open(out, KEY) as ds:
        assert bytes(ds.record_tokens(1)) == records[1]
        with pytest.raises(DatasetError, match="record 2: sha256 mismatch"):
            ds.record_tokens(2)


def test_swapped_records_are_rejected(tmp_path: Path) -> None:
    out, _ = _build(tmp_path)
    data = bytearray(out.read_bytes())
    a = slice(_record_offset(1, 16), _record_offset(2, 16))
    b = slice(_record_offset(2, 16), _record_offset(3, 16))
    data[a], data[b] = data[b], data[a]
    out.write_bytes(bytes(data))
    with EncryptedDataset.open(out, KEY) as ds:
        for i in (1, 2):
            with pytest.raises(DatasetError, match=f"record {i}"):
                ds.record_tokens(i)


def test_wrong_key_is_rejected_at_open(tmp_path: Path) -> None:
    out, _ = _build(tmp_path)
    with pytest.raises(DatasetError, match="wrong key"):
        EncryptedDataset.open(out, bytes(32))
    with pytest.raises(DatasetError, match="32 bytes"):
        EncryptedDataset.open(out, KEY[:16])


def test_tampered_header_is_rejected(tmp_path: Path) -> None:
    out, digest = _build(tmp_path)
    data = bytearray(out.read_bytes())
    with pytest.raises(DatasetError, match="does not match the expected"):
        EncryptedDataset.open(out, KEY, expected_sha256="00" * 32)
    bad_magic = bytes(data)
    out.write_bytes(b"X" + bad_magic[1:])
    with pytest.raises(DatasetError, match="not a PoAI dataset"):
        EncryptedDataset.open(out, KEY)
    out.write_bytes(bytes(data[:-1]))
    with pytest.raises(DatasetError, match="size"):
        EncryptedDataset.open(out, KEY)
    reserved = bytearray(data)
    reserved[HEADER_LEN - 1] = 1
    out.write_bytes(bytes(reserved))
    with pytest.raises(DatasetError, match="reserved"):
        EncryptedDataset.open(out, KEY)
    # a changed sample_len no longer matches the file size or the authenticated header
    relen = bytearray(data)
    relen[11] ^= 0x01
    out.write_bytes(bytes(relen))
    with pytest.raises(DatasetError):
        EncryptedDataset.open(out, KEY)


def test_bad_index(tmp_path: Path) -> None:
    out, _ = _build(tmp_path)
    with EncryptedDataset.open(out, KEY) as ds:
        for bad in (-1, len(ds), True):
            with pytest.raises(DatasetError, match="out of range"):
                ds.record_tokens(bad)
    with pytest.raises(DatasetError, match="closed"):
        ds.record_tokens(0)


def test_bad_build_input(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no record"):
        _build(tmp_path, sample_len=64, text=b"short")
    with pytest.raises(DatasetError, match="sample_len"):
        _build(tmp_path, sample_len=0)
    with pytest.raises(DatasetError, match="cannot open"):
        EncryptedDataset.open(tmp_path / "absent.poaids", KEY)


def test_golden_vector() -> None:
    """The file format is consensus: these bytes must never change silently."""
    records = [bytes([i]) * 8 for i in range(3)]
    blob = encrypt_records(bytes(32), 8, records)
    assert len(blob) == HEADER_LEN + 3 * record_size(8)
    assert hashlib.sha256(blob).hexdigest() == GOLDEN_SHA256


GOLDEN_SHA256 = "f6bbfcff66551c03564440c0a05e6f2e19749c0471e616d92bc2cf660b7868e9"


def test_format_matches_its_specification() -> None:
    """Decrypt a record with nothing but the documented derivation (HKDF, nonce, AAD)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    records = [b"abcdefgh", b"ijklmnop"]
    blob = encrypt_records(KEY, 8, records)
    assert blob[:8] == b"POAIDS\x00\x01"
    assert blob[8:12] == (8).to_bytes(4, "big") and blob[12:20] == (2).to_bytes(8, "big")
    index = 1
    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"poai-dataset-v1",
             info=b"record" + index.to_bytes(8, "big")).derive(KEY)
    nonce = bytes(4) + index.to_bytes(8, "big")
    rec = blob[HEADER_LEN + record_size(8) : HEADER_LEN + 2 * record_size(8)]
    payload = AESGCM(k).decrypt(nonce, rec, blob[:20] + index.to_bytes(8, "big"))
    assert payload == records[1] + hashlib.sha256(records[1]).digest()
