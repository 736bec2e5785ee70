import threading
import time
from collections.abc import Iterator

import pytest
from poai.quiz.context import QuizContext
from poai.quiz.miner import Miner, MinerError, Seal
from poai.quiz.reduce import loss_hash, target, unpack_q
from poai.quiz.seal import verify_seal

SH = bytes([7] * 32)


@pytest.fixture(scope="module")
def miner() -> Iterator[Miner]:
    m = Miner(workers=2)
    yield m
    m.close()


def test_finds_a_seal_that_verifies(miner: Miner, tiny_ctx: QuizContext) -> None:
    difficulty = 3  # ~3 / 0.35 forward passes (a ticket when all 16 values clear the margin)
    seal = miner.mine(tiny_ctx, SH, difficulty, timeout=120)
    assert isinstance(seal, Seal)
    assert seal.attempts >= 1
    assert loss_hash(SH, seal.nonce, seal.mix_hash) < target(difficulty)
    assert verify_seal(tiny_ctx, SH, seal.nonce, seal.mix_hash, difficulty) == list(seal.losses)
    # claimed values are the floors of the miner's own losses, clear of the bucket edges
    qs = unpack_q(seal.mix_hash, tiny_ctx.params.values)
    assert len(qs) == len(seal.losses) == 16
    for q, v in zip(qs, seal.losses, strict=True):
        assert miner.margin <= v * 4096 - q <= 1 - miner.margin
    assert miner.mine(tiny_ctx, SH, 1 << 200, timeout=1.0) is None
    assert miner.hashrate() > 0


def test_consecutive_jobs_and_timeout(miner: Miner, tiny_ctx: QuizContext) -> None:
    a = miner.mine(tiny_ctx, SH, 2, timeout=60)
    b = miner.mine(tiny_ctx, bytes([8] * 32), 2, timeout=60)
    assert a is not None and b is not None
    t = time.monotonic()
    assert miner.mine(tiny_ctx, SH, 1 << 200, timeout=0.5) is None
    assert time.monotonic() - t < 5


def test_cancel_returns_promptly(miner: Miner, tiny_ctx: QuizContext) -> None:
    miner.mine(tiny_ctx, SH, 1, timeout=60)  # workers warm
    result: list[Seal | None] = []
    th = threading.Thread(target=lambda: result.append(miner.mine(tiny_ctx, SH, 1 << 200)))
    th.start()
    time.sleep(0.5)
    t0 = time.monotonic()
    miner.cancel()
    th.join(timeout=5)
    latency = time.monotonic() - t0
    assert not th.is_alive() and result == [None]
    assert latency < 1.0  # the 100 ms figure is measured by bench/quiz_mining.py
    # the miner is reusable after a cancel
    assert miner.mine(tiny_ctx, SH, 1, timeout=60) is not None


def test_bad_arguments(miner: Miner, tiny_ctx: QuizContext) -> None:
    with pytest.raises(ValueError):
        miner.mine(tiny_ctx, SH, 0)
    with pytest.raises(ValueError):
        miner.mine(tiny_ctx, bytes(31), 1)
    with pytest.raises(ValueError):
        Miner(workers=0)
    with pytest.raises(ValueError):
        Miner(margin=0.5)
    with pytest.raises(ValueError, match="tau"):
        Miner(tau=-1e-5)


def test_worker_error_is_reported(miner: Miner, tiny_ctx: QuizContext) -> None:
    import dataclasses

    ghost = dataclasses.replace(tiny_ctx, manifest_hash="d" * 64)
    with pytest.raises(MinerError, match="d" * 64):
        miner.mine(ghost, SH, 1, timeout=60)
    assert miner.mine(tiny_ctx, SH, 1, timeout=60) is not None


def test_cancel_while_workers_boot(tiny_ctx: QuizContext) -> None:
    with Miner(workers=1) as m:
        result: list[Seal | None] = []
        th = threading.Thread(target=lambda: result.append(m.mine(tiny_ctx, SH, 1 << 200)))
        th.start()
        time.sleep(0.1)  # the worker is still importing torch
        t0 = time.monotonic()
        m.cancel()
        th.join(timeout=5)
        assert result == [None] and time.monotonic() - t0 < 1.0


def test_closed_miner_refuses(tiny_ctx: QuizContext) -> None:
    m = Miner(workers=1)
    m.close()
    with pytest.raises(MinerError, match="closed"):
        m.mine(tiny_ctx, SH, 1, timeout=1)


def test_short_slices_never_lose_a_found_seal(miner: Miner, tiny_ctx: QuizContext) -> None:
    # Slices far shorter than one attempt (the node mines in slices): a ticket found after its
    # slice ended (difficulty 1: every attempt has one) must come back from a later slice.
    miner.mine(tiny_ctx, SH, 1, timeout=60)  # workers warm
    sh = bytes([9] * 32)
    late_before = miner.late_seals
    seals = 0
    for _ in range(300):
        seal = miner.mine(tiny_ctx, sh, 1, timeout=0.001)
        if seal is not None:
            seals += 1
            verify_seal(tiny_ctx, sh, seal.nonce, seal.mix_hash, 1)
            if miner.late_seals > late_before:
                break
    # Whether a seal arrives in its slice or is picked up late depends on timing (mine() also
    # waits for a seal being checked at the deadline); either way none may be lost: seals come
    # back from 1 ms slices. The next test checks a late seal never serves another header.
    assert seals >= 1


def test_late_seal_of_another_header_is_not_returned(miner: Miner, tiny_ctx: QuizContext) -> None:
    # A seal found for header A after its slice ended must never be returned for header B.
    a, b = bytes([10] * 32), bytes([11] * 32)
    for _ in range(5):
        miner.mine(tiny_ctx, a, 1, timeout=0.001)
        seal = miner.mine(tiny_ctx, b, 1, timeout=60)
        assert seal is not None
        verify_seal(tiny_ctx, b, seal.nonce, seal.mix_hash, 1)


def test_near_tied_router_seals_are_not_published(
    tiny_ctx: QuizContext, tied_ctx: QuizContext
) -> None:
    # In tied_ctx's model, layer 0 routes most tokens between experts whose router logits are
    # within 1e-6 of each other: every attempt fails the routing guard.
    with Miner(workers=1) as m:
        assert m.mine(tied_ctx, SH, 1, timeout=20) is None
        assert m.guard_drops() > 0
        # the same model and difficulty without the guard (tau = 0) publishes at once
        # (the normal model publishes with the guard on: see the tests above)
        drops = m.guard_drops()
        assert m.mine(tiny_ctx, SH, 1, timeout=60) is not None
        assert m.guard_drops() - drops < 5
    with Miner(workers=1, tau=0.0) as m0:
        seal = m0.mine(tied_ctx, SH, 1, timeout=60)
        assert seal is not None and m0.guard_drops() == 0


_CTRL_C_SCRIPT = """
import pickle, sys, signal
# As in a terminal's foreground job, whatever this test runner inherited (a shell's
# background job starts with SIGINT ignored, and Python then keeps it ignored).
signal.signal(signal.SIGINT, signal.default_int_handler)
from poai.quiz.miner import Miner
ctx = pickle.loads(bytes.fromhex(sys.argv[1]))
m = Miner(workers=2)
if sys.argv[2] == "grinding":
    m.mine(ctx, bytes(32), 1, timeout=120)  # returns once the workers are up
print("ready", flush=True)
try:
    m.mine(ctx, bytes(32), 1 << 200, timeout=120)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""


@pytest.mark.parametrize("phase", ["booting", "grinding"])
def test_ctrl_c_stops_cleanly(tiny_ctx: QuizContext, phase: str) -> None:
    # Ctrl-C in a terminal signals the whole process group: the workers must not print
    # tracebacks (they ignore SIGINT; the parent stops them), nor leak semaphores at exit.
    import os
    import pickle
    import signal
    import subprocess
    import sys

    p = subprocess.Popen(
        [sys.executable, "-c", _CTRL_C_SCRIPT, pickle.dumps(tiny_ctx).hex(), phase],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "ready"
        time.sleep(0.3 if phase == "booting" else 1.0)
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0 and out.strip() == "interrupted", err
    assert "Traceback" not in err and "leaked" not in err, err
