"""bench/rpc_throughput.py --quick runs end to end and prints one JSON object with ratios."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
from support.nodeproc import BIN, ROOT, run_tool


@pytest.mark.slow
@pytest.mark.integration
def test_rpc_throughput_quick() -> None:
    if not (BIN / "anvil").exists() and shutil.which("anvil") is None:
        pytest.skip("anvil is not installed")
    out = run_tool([sys.executable, str(ROOT / "bench" / "rpc_throughput.py"), "--quick"],
                   timeout=600)
    result = json.loads(out)
    for target in ("node", "anvil"):
        assert result[target]["block_number_rps"] > 0
        assert result[target]["transfers_all_mined_s"] > 0
    assert set(result["ratio_node_over_anvil"]) == {
        "block_number_rps", "eth_call_rps", "transfers_accepted_per_s", "writes_accepted_per_s"}
