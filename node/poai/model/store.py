"""Content-addressed blob store: a directory of files named by the sha256 of their bytes."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


class BlobError(Exception):
    """A blob that is missing, corrupted, or asked for by a malformed hash."""

    def __init__(self, digest: str, reason: str) -> None:
        super().__init__(f"blob {digest}: {reason}")
        self.digest = digest
        self.reason = reason


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BlobStore:
    """Files ``<root>/<sha256 hex>``. Every read re-hashes the file: a blob that does not match
    its name raises :class:`BlobError` and its bytes are never returned."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _check_digest(self, digest: str) -> str:
        if not isinstance(digest, str) or not _HEX64.match(digest):
            raise BlobError(str(digest), "not a lowercase hex sha256")
        return digest

    def path(self, digest: str) -> Path:
        return self.root / self._check_digest(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def put(self, data: bytes) -> str:
        digest = sha256_hex(data)
        target = self.path(digest)
        if target.is_file() and sha256_hex(target.read_bytes()) == digest:
            return digest
        self.root.mkdir(parents=True, exist_ok=True)
        # Write to a temp file in the same directory, then rename: readers never see a torn blob.
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp creates 0600; this content is public
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return digest

    def get(self, digest: str) -> bytes:
        p = self.path(digest)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise BlobError(digest, f"missing from store {self.root}") from None
        except OSError as e:
            raise BlobError(digest, f"unreadable: {e}") from e
        actual = sha256_hex(data)
        if actual != digest:
            raise BlobError(digest, f"corrupted: content hashes to {actual}")
        return data

    def size(self, digest: str) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobError(digest, f"missing from store {self.root}") from None

    def digests(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if _HEX64.match(p.name))
