"""Worker processes of the miner and the verifier end when their parent is SIGKILLed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

# A parent that starts one miner worker and one verifier worker (the real classes), prints their
# pids once both are up, then waits to be killed.
PARENT = r"""
import os, sys, time
from poai.quiz.miner import Miner
from poai.quiz.verifier import ParallelVerifier
from poai.quiz._procs import sigint_blocked

miner = Miner(workers=1)
w = miner._ensure_started()
verifier = ParallelVerifier(1)
with sigint_blocked():
    ex = verifier._executor()
    pid = ex.submit(os.getpid).result(timeout=120)
print(w.procs[0].pid, pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purpose.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_workers_exit_when_the_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "ETH_HASH_BACKEND": "pysha3"})
    try:
        assert parent.stdout is not None
        line = parent.stdout.readline()
        assert line, "parent did not start its workers"
        pids = [int(p) for p in line.split()]
        assert all(_alive(p) for p in pids)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 20
        while any(_alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [p for p in pids if _alive(p)]
        assert left == [], f"workers {left} outlived their killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)
