"""The quiz benchmarks run in their bounded quick mode and report what they promise.

Speed figures are recorded from full runs in docs/BENCHMARKS.md; here only the soundness
bounds are asserted (honest agreement, salted table attack, guess attack cost), and that the
speed figures exist and are sane.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run_bench(name: str) -> dict[str, Any]:
    env = {**os.environ, "ETH_HASH_BACKEND": "pysha3"}
    out = subprocess.run([sys.executable, str(REPO / "bench" / name), "--quick"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=400, check=True)
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, f"{name} must print exactly one JSON object: {out.stdout!r}"
    report: dict[str, Any] = json.loads(lines[0])
    assert report["quick"] is True
    return report


def test_quiz_agreement_quick() -> None:
    r = run_bench("quiz_agreement.py")
    assert r["quizzes"] >= 20
    assert {"ref", "threads2", "one_by_one", "isa_default"} <= set(r["settings"])
    assert r["rejections"] == 0
    assert 0 <= r["max_divergence_steps"] < r["miner_margin_steps"]
    # the publication rule: the routing guard drops few quizzes and lets no routing flip through
    assert r["published_quizzes"] + r["dropped_by_guard"] == r["quizzes"]
    assert 0 <= r["dropped_fraction"] < 0.25
    assert r["routing_flips_published"] == 0
    assert 0 < r["max_router_logit_divergence"] < r["tau"]
    assert 0 < r["max_gap_divergence"] < r["tau"]
    assert r["rejections_without_guard"] >= r["rejections"]


def test_quiz_attacks_quick() -> None:
    r = run_bench("quiz_attacks.py")
    assert r["table_hits_salted"] == 0
    assert r["table_hits_unsalted"] == r["quizzes"]  # the attack works without a salt
    # quick mode's few salts inflate the per-value odds (in-sample maxima): a loose bound here,
    # the full run's figure is in docs/BENCHMARKS.md
    assert r["forged_over_honest_at_1e10"] >= 1000
    assert set(r["forged_over_honest_by_difficulty"]) == {f"{10**e:.0e}" for e in range(13)}
    assert 0 < r["p_guess"] < 1e-6
    assert 0 < r["tickets_per_pass"] <= 1  # at most one ticket per pass
    assert r["previous_design"]["tickets_per_pass"] > 1


def test_quiz_mining_quick() -> None:
    r = run_bench("quiz_mining.py")
    for key in ("attempts_per_s_per_core", "attempts_per_s_total", "bare_attempts_per_s",
                "verifications_per_s_single", "verifications_per_s_parallel"):
        assert r[key] > 0, key
    assert 0 < r["mining_efficiency"] <= 2
    assert 0.5 < r["model_time_share"] <= 1
    assert 0 <= r["cancel_latency_ms_max"] < 2000
    assert r["guard_pass_ms"] > 0
