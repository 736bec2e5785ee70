"""A running node's periodic upkeep of its own process: every `interval` seconds the C
allocator's free pages go back to the kernel (`poai.compat.glibc.release_free_memory`), so the
node's RSS follows the memory it uses under a long mixed load instead of the allocator's
high-water mark."""

from __future__ import annotations

import logging
import threading
import time

from poai.compat.glibc import release_free_memory

log = logging.getLogger(__name__)

TRIM_INTERVAL_S = 30.0


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


__all__ = ["TRIM_INTERVAL_S", "Housekeeping"]
