"""bench/inference_check.py in its bounded quick mode: one JSON object, no honest job flagged,
every forgery caught, and its cost figures present (the full run is recorded in
docs/BENCHMARKS.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_inference_check_bench_quick() -> None:
    env = {**os.environ, "ETH_HASH_BACKEND": "pysha3"}
    out = subprocess.run([sys.executable, str(REPO / "bench" / "inference_check.py"), "--quick"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=400,
                         check=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stdout
    r = json.loads(lines[0])
    assert r["quick"] is True and r["honest_jobs"] == r["forged_jobs"] == 8
    assert set(r["forged_by_kind"]) == {"wrong_token", "truncated", "extended", "inflated_count"}
    assert r["honest_flagged"] == 0 and r["forged_missed"] == 0
    assert r["max_honest_greedy_gap"] < r["epsilon_logit"] < r["min_forged_greedy_gap"]
    assert r["check_per_token_ms"] > 0 and r["evm_ordinary_mgas_per_s"] > 0
    assert r["gas_per_job"]["min"] >= r["g_base"]
