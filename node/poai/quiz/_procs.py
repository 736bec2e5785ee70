"""Worker-process hygiene shared by the miner and the parallel verifier: Ctrl-C belongs to the
parent, which shuts its workers down; workers must not print a KeyboardInterrupt traceback."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT in this thread while child processes are started: the blocked mask survives
    fork+exec, so a Ctrl-C during a child's start-up stays pending until the child ignores it
    (ignore_sigint); the parent gets any pending SIGINT when the block ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def ignore_sigint() -> None:
    """In a worker process, first thing: ignore SIGINT, then drop any pending one."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
