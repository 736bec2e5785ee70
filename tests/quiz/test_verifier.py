from collections.abc import Iterator
from typing import Any

import pytest
from poai.quiz.context import QuizContext
from poai.quiz.reduce import pack_q
from poai.quiz.seal import InvalidSeal, verify_seal
from poai.quiz.verifier import ParallelVerifier


@pytest.fixture(scope="module")
def verifier() -> Iterator[ParallelVerifier]:
    v = ParallelVerifier(workers=2)
    yield v
    v.close()


def test_parallel_agrees_with_serial(verifier: ParallelVerifier, tiny_ctx: QuizContext,
                                    clear_attempt: Any) -> None:
    items = []
    for n in range(12):
        sh = bytes([n] * 32)
        nonce, qs = clear_attempt(tiny_ctx, sh, n)
        if n % 3 == 1:
            qs[n % 4] += 1  # not the floor
        mix = pack_q(qs)
        difficulty = 1 << 250 if n % 3 == 2 else 1  # junk at a high difficulty
        items.append((tiny_ctx, sh, nonce, mix, difficulty))
    serial: list[str | None] = []
    for it in items:
        try:
            verify_seal(*it)
            serial.append(None)
        except InvalidSeal as exc:
            serial.append(str(exc))
    parallel = verifier.verify_many(items)
    assert [None if r is None else str(r) for r in parallel] == serial
    assert all(isinstance(r, InvalidSeal) for r in parallel if r is not None)
    assert serial.count(None) == 4
    assert verifier.verify_many([]) == []


def test_bad_worker_count() -> None:
    with pytest.raises(ValueError):
        ParallelVerifier(workers=0)


_CTRL_C_SCRIPT = """
import pickle, sys, time, signal
# As in a terminal's foreground job, whatever this test runner inherited (a shell's
# background job starts with SIGINT ignored, and Python then keeps it ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
from poai.quiz.verifier import ParallelVerifier
ctx = pickle.loads(bytes.fromhex(sys.argv[1]))
v = ParallelVerifier(workers=2)
v.verify_many([(ctx, bytes(32), 1, bytes(32), 1)] * 4)  # workers up and idle
print("ready", flush=True)
try:
    time.sleep(120)
except KeyboardInterrupt:
    v.close()
    print("interrupted", flush=True)
"""


def test_ctrl_c_stops_cleanly(tiny_ctx: QuizContext) -> None:
    # Ctrl-C signals the whole process group: idle workers must not print tracebacks.
    import os
    import pickle
    import signal
    import subprocess
    import sys
    import time

    p = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_SCRIPT, pickle.dumps(tiny_ctx).hex()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0 and out.strip() == "interrupted", err
    assert "Traceback" not in err and "leaked" not in err, err


def test_chunks_name_the_bad_seal_and_keep_contexts_apart(tiny_ctx: QuizContext,
                                                         clear_attempt: Any) -> None:
    import dataclasses

    from poai.quiz.epoch import epoch_key
    from poai.quiz.verifier import group_by_context

    other = dataclasses.replace(tiny_ctx, epoch_key=epoch_key(bytes([7] * 32), 3))
    items = []
    for n in range(10):
        ctx = tiny_ctx if n < 4 or n >= 7 else other  # a run of another epoch in the middle
        sh = bytes([n + 40] * 32)
        nonce, qs = clear_attempt(ctx, sh, n)
        if n == 5:
            qs[0] += 1
        items.append((ctx, sh, nonce, pack_q(qs), 1))
    # the same seal under the wrong epoch key is a wrong seal
    items.append((tiny_ctx, *items[4][1:4], 1))
    groups = group_by_context(items, 3)
    assert [(g[0] is tiny_ctx, len(g[1]), g[2]) for g in groups] == [
        (True, 3, 0), (True, 1, 3), (False, 3, 4), (True, 3, 7), (True, 1, 10)]
    with ParallelVerifier(workers=2, chunk=3) as v:
        results = v.verify_many(items)
    assert [i for i, r in enumerate(results) if r is not None] == [5, 10]
    assert "value 0" in str(results[5])
    with pytest.raises(ValueError):
        group_by_context(items, 0)
    with pytest.raises(ValueError):
        ParallelVerifier(workers=1, chunk=0)


def test_warm_up_loads_every_worker(tiny_ctx: QuizContext) -> None:
    with ParallelVerifier(workers=2) as v:
        v.warm_up(tiny_ctx)
        assert v._pool is not None and len(v._pool._processes) == 2
