"""A running node's periodic upkeep of its own process: every `interval` seconds the C
allocator's free pages go back to the kernel, so the node's RSS follows the memory it uses
under a long mixed load instead of the allocator's high-water mark.

glibc's malloc keeps pages it has freed inside its arenas (one per thread that allocated, up
to 8 per core) and returns only the top of each heap by itself.  A node's threads (RPC,
mining, P2P, the market) allocate and free blocks, receipts, tensors and JSON all day, so free
space piles up in the middle of the arenas while the memory in use stays flat.  glibc's
`malloc_trim(0)` releases the free pages inside every arena.  Elsewhere (musl, macOS) there is
no such call and the upkeep stops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

TRIM_INTERVAL_S = 30.0

_lock = threading.Lock()
_libc: Any = None
_looked = False


def _glibc() -> Any:
    global _libc, _looked
    with _lock:
        if not _looked:
            _looked = True
            name = ctypes.util.find_library("c")
            try:
                lib = ctypes.CDLL(name) if name else None
                if lib is not None and hasattr(lib, "malloc_trim"):
                    lib.malloc_trim.argtypes = [ctypes.c_size_t]
                    lib.malloc_trim.restype = ctypes.c_int
                    _libc = lib
            except OSError:
                _libc = None
        return _libc


def release_free_memory() -> bool | None:
    """Return the allocator's free pages to the kernel; True if some were released, False if
    none, None where the C library has no malloc_trim."""
    lib = _glibc()
    if lib is None:
        return None
    return bool(lib.malloc_trim(0))


class Housekeeping:
    def __init__(self, interval: float = TRIM_INTERVAL_S) -> None:
        if interval <= 0:
            raise ValueError("the housekeeping interval must be positive")
        self.interval = interval
        self.trims = 0  # rounds run
        self.trim_seconds = 0.0  # time spent in them, all together
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="poai-housekeeping",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def run_once(self) -> bool | None:
        t0 = time.perf_counter()
        released = release_free_memory()
        self.trim_seconds += time.perf_counter() - t0
        self.trims += 1
        return released

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.run_once() is None:
                log.debug("this C library cannot release free memory: housekeeping stops")
                return


__all__ = ["TRIM_INTERVAL_S", "Housekeeping", "release_free_memory"]
