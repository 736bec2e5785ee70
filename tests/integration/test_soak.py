"""The bounded soak (bench/soak.py --duration 60): a mining node under a mixed load (RPC, a
transaction flood, subscriptions, filters, chats and market jobs) while serving a syncing peer
loses no transaction, answers every job, keeps advancing, and its memory stays flat."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bounded_soak() -> None:
    res = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--duration", "60"],
                         capture_output=True, text=True, timeout=900,
                         env={**os.environ, "ETH_HASH_BACKEND": "pysha3"})
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["errors"] == 0, report["first_errors"]
    txs = report["transactions"]
    assert txs["accepted"] > 300 and txs["lost"] == 0 and txs["mined"] == txs["accepted"], txs
    assert report["head"]["stalled_windows"] == 0, report["head"]
    assert report["peer"]["caught_up"], report["peer"]
    assert report["load"]["filters"] > 100 and report["load"]["subscriptions"] > 10
    # The model answers chats throughout, and the market worker answers every paid job.
    assert report["load"]["chats"] >= 5 and report["chat_ms"]["samples"] >= 5
    jobs = report["jobs"]
    assert jobs["posted"] >= 2 and jobs["answered"] == jobs["posted"], jobs
    # Flat after warm-up: abandoned filters and dropped subscriptions must not accumulate.
    assert report["rss_mb"]["second_half_growth"] < 40, report["rss_mb"]
