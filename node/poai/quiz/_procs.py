"""Worker-process hygiene shared by the miner and the parallel verifier: Ctrl-C belongs to the
parent, which shuts its workers down; workers must not print a KeyboardInterrupt traceback, and
must not outlive a parent that was killed (SIGKILL, OOM) without the chance to stop them."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
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
    """In a worker process, first thing: ignore SIGINT, then drop any pending one; and exit
    when the parent dies (exit_with_parent)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    exit_with_parent()


def exit_with_parent() -> None:
    """End this worker process as soon as its parent is gone.  A spawned worker blocked on a
    multiprocessing queue never sees EOF when the parent is SIGKILLed (the child holds both ends
    of the queue's pipe), so it would idle forever holding a model in memory; the parent's
    sentinel becomes ready when the parent exits for any reason."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return
    sentinel = parent.sentinel

    def watch() -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="poai-parent-watch", daemon=True).start()
