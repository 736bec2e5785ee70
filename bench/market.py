"""A market job's time from posting to a committed answer, on a mining devnet node.

Starts `poai node --dev --mine --genesis devnet-fast --market-worker` (default flags otherwise,
one miner worker) in a temporary data dir, waits until its worker has staked and registered,
then posts --jobs jobs one after the other from dev account 3 — each a fresh prompt (a random
word list, so nothing can be cached), greedy, --max-tokens tokens — and times each from the
block that includes `postJob` to the block that includes the worker's `commitResult`:
blocks, and seconds from the post's receipt to the answer being readable (`poai_job`).
Reports min / median / max over the jobs, and the machine's load average (the machine may be
shared: the figures follow the load).

Prints one JSON object.

    ETH_HASH_BACKEND=pysha3 nice .venv/bin/python bench/market.py            # 8 jobs
    ETH_HASH_BACKEND=pysha3 nice .venv/bin/python bench/market.py --jobs 3   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

WORDS = ("market", "token", "expert", "chain", "block", "model", "proof", "stake", "answer",
         "python", "return", "value", "class", "def", "import", "list", "string", "number")


def _stats(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3),
            "max": round(max(values), 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--max-tokens", type=int, default=32)
    args = ap.parse_args(argv)
    from eth_account import Account
    from poai.governance.contracts import load_genesis_contracts
    from support.nodeproc import DEV_KEYS, NodeProcess
    from web3 import Web3

    rng = random.Random()
    gc = load_genesis_contracts()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        node = NodeProcess(Path(tmp) / "d", Path("devnet-fast"), log_path=Path(tmp) / "node.log",
                           extra_args=("--no-p2p", "--market-worker"))
        try:
            w3 = Web3(Web3.HTTPProvider(node.url, request_kwargs={"timeout": 60}))
            market = w3.eth.contract(address=Web3.to_checksum_address(
                "0x" + gc.addresses["InferenceMarket"].hex()), abi=gc.abis["InferenceMarket"])
            worker = Account.from_key(DEV_KEYS[1]).address
            while not market.functions.workers(worker).call()[0]:
                if time.monotonic() - t0 > 300:
                    raise SystemExit("the market worker did not register within 300 s")
                time.sleep(0.5)
            ready_s = time.monotonic() - t0
            buyer = Account.from_key(DEV_KEYS[3])
            blocks: list[float] = []
            seconds: list[float] = []
            for _ in range(args.jobs):
                prompt = " ".join(rng.choice(WORDS) for _ in range(8)).encode()
                head = w3.eth.block_number
                tx = market.functions.postJob(market.functions.activeSnapshot().call(), prompt,
                                              args.max_tokens, 0, 1_000_000, 0, head + 100
                                              ).build_transaction({
                                                  "from": buyer.address, "value": 10**16,
                                                  "nonce": w3.eth.get_transaction_count(
                                                      buyer.address, "pending")})
                tx["gas"] = int(tx["gas"]) * 5 // 4 + 30_000  # the state may move meanwhile
                h = w3.eth.send_raw_transaction(buyer.sign_transaction(tx).raw_transaction)
                receipt = w3.eth.wait_for_transaction_receipt(h, timeout=120, poll_latency=0.1)
                job_id = market.events.JobPosted().process_receipt(receipt)[0]["args"]["jobId"]
                posted = time.monotonic()
                while True:
                    job: dict[str, Any] = w3.provider.make_request(  # type: ignore[arg-type]
                        "poai_job", [job_id])["result"]
                    if job["status"] in ("committed", "finalized"):
                        break
                    if time.monotonic() - posted > 300:
                        raise SystemExit(f"job {job_id} not answered within 300 s")
                    time.sleep(0.1)
                seconds.append(time.monotonic() - posted)
                blocks.append(job["committedAt"] - receipt["blockNumber"])
        finally:
            node.stop()
    print(json.dumps({
        "bench": "market", "jobs": args.jobs, "max_tokens": args.max_tokens,
        "genesis": "devnet-fast (1 s blocks)", "node": "--dev --mine --market-worker",
        "post_to_commit_blocks": _stats(blocks), "post_to_commit_seconds": _stats(seconds),
        "worker_ready_seconds": round(ready_s, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
