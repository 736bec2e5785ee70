"""bench/sync.py runs end to end in a short mode and reports what it claims to measure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "sync.py"


@pytest.mark.slow
def test_sync_bench_prints_one_consistent_json_object() -> None:
    env = {**os.environ, "ETH_HASH_BACKEND": "pysha3"}
    out = subprocess.run([sys.executable, str(BENCH), "--blocks", "24", "--rounds", "2"], env=env,
                         capture_output=True, text=True, timeout=600, check=True).stdout
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    r = json.loads(lines[0])
    assert r["bench"] == "sync" and r["same_head"] is True and r["blocks"] == 24
    limit = r["verifier_workers"] / (r["one_verification_ms"] / 1000)
    assert r["seal_verification_limit_blocks_per_s"] == pytest.approx(limit, rel=0.01)
    assert r["ratio_to_limit"] == pytest.approx(r["blocks_per_s"] / limit, rel=0.02)
    assert r["blocks_per_s"] == pytest.approx(r["blocks"] / r["sync_seconds"], rel=0.02)
    assert r["sync_seconds"] <= r["wall_seconds_from_service_start"]
    assert r["batched_verification_ms_per_seal"] > 0 and r["import_ms_per_block"] > 0
    assert set(r["sync_thread_ms_per_block"]) == {"wait_for_seals", "import", "quiz_contexts"}
    assert r["rounds"] == 2 and r["ratio_to_limit"] in r["ratio_to_limit_each_round"]
    assert len(r["one_verification_ms_before_after"]) == 2


def test_sync_bench_refuses_a_bad_block_count() -> None:
    r = subprocess.run([sys.executable, str(BENCH), "--blocks", "0"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "--blocks must be in 1..5000" in r.stderr
    r = subprocess.run([sys.executable, str(BENCH), "--rounds", "0"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "--rounds must be in 1..10" in r.stderr
