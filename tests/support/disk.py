"""A small tmpfs to fill up or make read-only (mounting needs root), and a file-size limit
(RLIMIT_FSIZE, no root needed) under which the next write past a size fails as on a full disk."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def mount_tmpfs(where: Path, size: str) -> bool:
    """Mount a tmpfs of `size` (e.g. "4m") at `where`; False where the machine does not allow
    it (not root, no mount permission)."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                         capture_output=True, text=True)
    return res.returncode == 0


def remount(where: Path, option: str) -> None:
    """"ro" or "rw"."""
    subprocess.run(["mount", "-o", f"remount,{option}", str(where)], check=True)


def unmount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], check=False)


def fill(where: Path, leave: int = 0) -> None:
    """Write a filler file (`where`/filler) so that about `leave` bytes stay free."""
    st = os.statvfs(where)
    free = st.f_bavail * st.f_frsize
    try:
        with (where / "filler").open("ab") as f:
            f.write(b"\0" * max(0, free - leave))
    except OSError:  # the last pages: the disk is full, as wanted
        pass


@contextmanager
def file_size_limit(largest_file: Path, room: int = 64) -> Iterator[None]:
    """Let no file of this process grow more than `room` bytes past `largest_file`'s size: the
    next larger write fails with EFBIG ("File too large") as a real write would on a full disk.
    SIGXFSZ is ignored meanwhile (it would kill the process); both are restored after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (largest_file.stat().st_size + room, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
