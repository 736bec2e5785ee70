"""A developer node's on-request blocks: how long evm_mine, hardhat_mine and anvil_setBalance
take on a real `poai node --dev` (difficulty 1, no interval mining: only requested blocks).

Each requested block is built, sealed with the quiz (one forward pass at difficulty 1, in the
miner's worker process), checked and stored like any block. Prints one JSON object: evm_mine
and anvil_setBalance latency (median and max of --rounds calls, seconds) and hardhat_mine
blocks per second over --blocks blocks. Every loop is bounded in count.

    .venv/bin/python bench/dev_mine.py [--rounds 10] [--blocks 30]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the node-process harness of the tests
from support.nodeproc import NodeProcess, fast_genesis  # noqa: E402


def call(url: str, method: str, *params: Any) -> Any:
    """One JSON-RPC call with a long timeout (the first block waits for the model to load)."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    req = urllib.request.Request(url, data=body.encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as resp:
        reply = json.loads(resp.read())
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return reply["result"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=10, help="evm_mine / setBalance calls timed")
    p.add_argument("--blocks", type=int, default=30, help="blocks of the hardhat_mine call")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        node = NodeProcess(base / "datadir", fast_genesis(base / "genesis.json"), mine=False,
                           extra_args=("--no-p2p",))
        try:
            t0 = time.monotonic()
            call(node.url, "evm_mine")  # the miner's worker starts and loads the model
            first = time.monotonic() - t0
            mine, balance = [], []
            for i in range(args.rounds):
                t = time.monotonic()
                call(node.url, "evm_mine")
                mine.append(time.monotonic() - t)
                t = time.monotonic()
                call(node.url, "anvil_setBalance", "0x" + f"{i + 1:040x}", hex(10**18))
                balance.append(time.monotonic() - t)
            start = int(node.call("eth_blockNumber"), 16)
            t = time.monotonic()
            call(node.url, "hardhat_mine", hex(args.blocks))
            spent = time.monotonic() - t
            mined = int(node.call("eth_blockNumber"), 16) - start
        finally:
            node.stop()
    print(json.dumps({
        "first_evm_mine_s": round(first, 2),
        "evm_mine_s_median": round(statistics.median(mine), 3),
        "evm_mine_s_max": round(max(mine), 3),
        "set_balance_s_median": round(statistics.median(balance), 3),
        "set_balance_s_max": round(max(balance), 3),
        "hardhat_mine_blocks": mined,
        "hardhat_mine_blocks_per_s": round(mined / spent, 2),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
