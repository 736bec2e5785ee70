"""The node's housekeeping thread: it trims on its interval, stops at once, refuses a
non-positive interval; a Node runs one between start and stop."""

from __future__ import annotations

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
