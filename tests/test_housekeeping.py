"""The node's housekeeping: `release_free_memory` gives the allocator's free pages back (memory
freed under a live block at the top of the heap, so glibc cannot shrink the heap by itself,
stays in RSS until the call, and after it RSS falls by about what was freed); the thread trims
on its interval, stops at once, refuses a non-positive interval; a Node runs one between start
and stop."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from poai.housekeeping import Housekeeping
from poai.node import Node
from support.poai_tiny import tiny_config


def test_rounds_on_the_interval_and_stops_at_once() -> None:
    hk = Housekeeping(interval=0.05)
    hk.start()
    deadline = time.monotonic() + 10
    while hk.trims < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    t0 = time.monotonic()
    hk.stop()
    assert hk.trims >= 3 and time.monotonic() - t0 < 1.0
    done = hk.trims
    time.sleep(0.2)
    assert hk.trims == done  # stopped means stopped
    assert hk.run_once() in (True, False)  # glibc: an answer, not None


def test_a_non_positive_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Housekeeping(interval=0)


def test_a_node_keeps_house_while_it_runs(tmp_path: Path) -> None:
    node = Node(tmp_path / "data", tiny_config(tmp_path / "assets"))
    node.housekeeping.interval = 0.05
    node.start()
    try:
        deadline = time.monotonic() + 10
        while node.housekeeping.trims < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert node.housekeeping.trims >= 2
    finally:
        node.stop()
    assert node.housekeeping._thread is None  # noqa: SLF001


PROBE = textwrap.dedent("""
    import json
    from poai.housekeeping import release_free_memory

    def rss_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

    # 2 KB blocks come from malloc (pymalloc takes only <= 512 bytes); 150 MB of them
    blocks = [bytes(2048) for _ in range(75_000)]
    pin = bytes(2048)  # allocated last: the heap's top stays in use
    full = rss_mb()
    del blocks
    freed = rss_mb()
    released = release_free_memory()
    print(json.dumps({"full": full, "freed": freed, "trimmed": rss_mb(), "released": released}))
""")


def test_free_pages_go_back_to_the_kernel() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         timeout=120, check=True)
    r = json.loads(out.stdout)
    assert r["released"] is True, r
    assert r["freed"] > r["full"] - 50, r  # freeing alone left most of it resident
    assert r["trimmed"] < r["freed"] - 100, r  # the call gave >= 100 of the 150 MB back


