"""Encrypted quiz dataset: fixed-length byte records, each sealed with AES-256-GCM.

File layout (all integers big-endian)::

    header (64 bytes)
      magic       8  b"POAIDS\\x00\\x01"  (format version 1)
      sample_len  4  bytes (= tokens) per record
      count       8  number of records
      key_check  32  HKDF(key, info="poai-dataset key-check"): tells a wrong key from tampering
      reserved   12  zero
    record i (sample_len + 48 bytes), at 64 + i * (sample_len + 48)
      AES-256-GCM(key_i, nonce_i, plaintext ‖ sha256(plaintext), aad = header[:20] ‖ uint64(i))
      = ciphertext (sample_len + 32) ‖ tag (16)

``key_i = HKDF-SHA256(ikm=key, salt="poai-dataset-v1", info="record" ‖ uint64(i))``: one key per
record, used once, so the deterministic ``nonce_i = 0^4 ‖ uint64(i)`` is safe. The record's
SHA-256 travels inside the ciphertext (a clear hash would let anyone confirm guessed records of
a public-text dataset before the key is revealed) and is checked after decryption. The dataset's
content hash, the one DatasetDAO names, is the sha256 of the whole file. Record tokens are the
plaintext bytes (byte ids 0..255 of :mod:`poai.model.tokenizer`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from types import TracebackType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"POAIDS\x00\x01"
HEADER_LEN = 64
KEY_LEN = 32
TAG_LEN = 16
DIGEST_LEN = 32
_HEADER_FIXED = struct.Struct(">8sIQ")  # magic, sample_len, count: 20 bytes, authenticated
_KDF_SALT = b"poai-dataset-v1"
_KEY_CHECK_INFO = b"poai-dataset key-check"
MAX_SAMPLE_LEN = 1 << 16
DEFAULT_CACHE = 1024


class DatasetError(ValueError):
    """Bad dataset file, wrong key, bad index, or a record that fails authentication."""


def _hkdf(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_LEN, salt=_KDF_SALT, info=info).derive(key)


def record_key(key: bytes, index: int) -> bytes:
    return _hkdf(key, b"record" + struct.pack(">Q", index))


def record_nonce(index: int) -> bytes:
    return b"\x00" * 4 + struct.pack(">Q", index)


def key_check(key: bytes) -> bytes:
    return _hkdf(key, _KEY_CHECK_INFO)


def record_size(sample_len: int) -> int:
    return sample_len + DIGEST_LEN + TAG_LEN


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_LEN:
        raise DatasetError(f"dataset key must be {KEY_LEN} bytes")


def _check_sample_len(sample_len: int) -> None:
    if isinstance(sample_len, bool) or not isinstance(sample_len, int) \
            or not 1 <= sample_len <= MAX_SAMPLE_LEN:
        raise DatasetError(f"sample_len must be an int in [1, {MAX_SAMPLE_LEN}], "
                           f"got {sample_len!r}")


def encode_header(sample_len: int, count: int, key: bytes) -> bytes:
    head = _HEADER_FIXED.pack(MAGIC, sample_len, count) + key_check(key)
    return head + b"\x00" * (HEADER_LEN - len(head))


def seal_record(key: bytes, header: bytes, index: int, plaintext: bytes) -> bytes:
    """The encrypted form of record ``index`` (exposed for tests and tools)."""
    payload = plaintext + hashlib.sha256(plaintext).digest()
    return seal_payload(key, header, index, payload)


def seal_payload(key: bytes, header: bytes, index: int, payload: bytes) -> bytes:
    aad = header[: _HEADER_FIXED.size] + struct.pack(">Q", index)
    return AESGCM(record_key(key, index)).encrypt(record_nonce(index), payload, aad)


def encrypt_records(key: bytes, sample_len: int, records: list[bytes]) -> bytes:
    """Whole dataset file bytes for ``records`` (each exactly ``sample_len`` bytes)."""
    _check_key(key)
    _check_sample_len(sample_len)
    for i, r in enumerate(records):
        if len(r) != sample_len:
            raise DatasetError(f"record {i} has {len(r)} bytes, expected {sample_len}")
    header = encode_header(sample_len, len(records), key)
    return header + b"".join(seal_record(key, header, i, r) for i, r in enumerate(records))


def build_dataset(text_path: str | Path, out_path: str | Path, key: bytes,
                  sample_len: int = 64) -> str:
    """Cut the file at ``text_path`` into consecutive ``sample_len``-byte records (a shorter
    tail is dropped), encrypt them into ``out_path`` (atomic write) and return its sha256."""
    _check_sample_len(sample_len)
    data = Path(text_path).read_bytes()
    count = len(data) // sample_len
    if count == 0:
        raise DatasetError(f"{text_path}: fewer than {sample_len} bytes, no record to build")
    records = [data[i * sample_len : (i + 1) * sample_len] for i in range(count)]
    blob = encrypt_records(key, sample_len, records)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=".tmp-", suffix=".poaids")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; this content is public
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return hashlib.sha256(blob).hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class EncryptedDataset:
    """Random access to the records of an encrypted dataset file, decrypted on demand."""

    def __init__(self, path: Path, key: bytes, fd: int, header: bytes, sha256: str,
                 cache_size: int) -> None:
        self.path = path
        self.sha256 = sha256
        self._key = key
        self._fd = fd
        self._header = header
        _magic, self.sample_len, self._count = _HEADER_FIXED.unpack(header[: _HEADER_FIXED.size])
        self._record_size = record_size(self.sample_len)
        self._cache: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path, key: bytes, expected_sha256: str | None = None,
             cache_size: int = DEFAULT_CACHE) -> EncryptedDataset:
        _check_key(key)
        p = Path(path)
        try:
            fd = os.open(p, os.O_RDONLY)
        except OSError as e:
            raise DatasetError(f"cannot open dataset {p}: {e}") from e
        try:
            header = os.pread(fd, HEADER_LEN, 0)
            if len(header) != HEADER_LEN or header[:8] != MAGIC:
                raise DatasetError(f"{p} is not a PoAI dataset (bad magic or short header)")
            _, sample_len, count = _HEADER_FIXED.unpack(header[: _HEADER_FIXED.size])
            _check_sample_len(sample_len)
            if header[_HEADER_FIXED.size + KEY_LEN :] != b"\x00" * (HEADER_LEN - 52):
                raise DatasetError(f"{p}: reserved header bytes are not zero")
            size = os.fstat(fd).st_size
            if count == 0 or size != HEADER_LEN + count * record_size(sample_len):
                raise DatasetError(f"{p}: size {size} does not match {count} records of "
                                   f"{sample_len} bytes")
            digest = file_sha256(p)
            if expected_sha256 is not None and digest != expected_sha256.lower():
                raise DatasetError(f"{p}: sha256 {digest} does not match the expected "
                                   f"{expected_sha256}")
            check = header[_HEADER_FIXED.size : _HEADER_FIXED.size + KEY_LEN]
            if not hmac.compare_digest(check, key_check(key)):
                raise DatasetError(f"{p}: wrong key for this dataset")
        except BaseException:
            os.close(fd)
            raise
        return cls(p, key, fd, header, digest, max(1, cache_size))

    def __len__(self) -> int:
        return int(self._count)

    def record_tokens(self, index: int) -> list[int]:
        """Token ids of record ``index``: exactly ``sample_len`` byte ids."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < self._count:
            raise DatasetError(f"record index {index!r} out of range [0, {self._count})")
        with self._lock:
            cached = self._cache.get(index)
            if cached is not None:
                self._cache.move_to_end(index)
                return list(cached)
        tokens = tuple(self._decrypt(index))
        with self._lock:
            self._cache[index] = tokens
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return list(tokens)

    def _decrypt(self, index: int) -> bytes:
        if self._fd < 0:
            raise DatasetError(f"dataset {self.path} is closed")
        blob = os.pread(self._fd, self._record_size, HEADER_LEN + index * self._record_size)
        if len(blob) != self._record_size:
            raise DatasetError(f"record {index}: truncated in {self.path}")
        aad = self._header[: _HEADER_FIXED.size] + struct.pack(">Q", index)
        try:
            payload = AESGCM(record_key(self._key, index)).decrypt(record_nonce(index), blob, aad)
        except InvalidTag:
            raise DatasetError(f"record {index}: authentication failed (tampered or wrong key) "
                               f"in {self.path}") from None
        plaintext, digest = payload[: self.sample_len], payload[self.sample_len :]
        if hashlib.sha256(plaintext).digest() != digest:
            raise DatasetError(f"record {index}: sha256 mismatch after decryption in {self.path}")
        return plaintext

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> EncryptedDataset:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
