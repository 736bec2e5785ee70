"""JSON-RPC throughput: the same workloads against a mining `poai node` and `anvil -b 1`.

Prints one JSON object: eth_blockNumber and eth_call requests/s (the same call repeated, and
distinct calls that no cache can answer), signed transfers accepted/s and seconds until all are
mined, contract writes likewise (each the median of --rounds bursts), and each node/anvil ratio.
Every loop is bounded in count and time. `--quick` is the small run used by the test suite.

    .venv/bin/python bench/rpc_throughput.py [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

ROOT = Path(__file__).resolve().parents[1]
# The node-process harness and the counter contract of the tests (tests/support).
sys.path.insert(0, str(ROOT / "tests"))
from support import nodeproc as harness  # noqa: E402

BIN, DEV_KEYS, NodeProcess = harness.BIN, harness.DEV_KEYS, harness.NodeProcess
fast_genesis, free_port = harness.fast_genesis, harness.free_port

from support.contract import counter  # noqa: E402

IN_FLIGHT = 8
EXTRA_FIGURES = ("eth_call_distinct_rps",)  # reported beside the four ratios
GWEI = 10**9
INC = "0x" + function_signature_to_4byte_selector("increment()").hex()
COUNT = "0x" + function_signature_to_4byte_selector("count()").hex()


class Client:
    """One keep-alive HTTP connection per thread."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.local = threading.local()

    def call(self, method: str, *params: Any) -> Any:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
        try:
            conn.request("POST", "/", body, {"Content-Type": "application/json"})
            reply = json.loads(conn.getresponse().read())
        except (OSError, http.client.HTTPException):
            self.local.conn = None  # the next call reconnects
            raise
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]


def rate(client: Client, count: int, fn: Any) -> float:
    started = time.perf_counter()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        list(pool.map(lambda i: fn(client, i), range(count)))
    return count / (time.perf_counter() - started)


def wait_receipt(client: Client, tx_hash: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        receipt = client.call("eth_getTransactionReceipt", tx_hash)
        if receipt is not None:
            return receipt
        if time.monotonic() > deadline:
            raise TimeoutError(f"{tx_hash} not mined in {timeout}s")
        time.sleep(0.2)


def signed_batch(chain_id: int, nonces: dict[str, int], count: int, to: str | None,
                 data: str, gas: int) -> list[str]:
    keys = DEV_KEYS[:5]
    out = []
    for i in range(count):
        acct = Account.from_key(keys[i % len(keys)])
        nonce = nonces[acct.address]
        nonces[acct.address] += 1
        tx = {"chainId": chain_id, "type": 2, "nonce": nonce, "gas": gas,
              "maxFeePerGas": 200 * GWEI, "maxPriorityFeePerGas": GWEI, "value": 1 if
              data == "0x" else 0, "to": to, "data": data}
        out.append("0x" + bytes(acct.sign_transaction(tx).raw_transaction).hex())
    return out


def send_and_mine(client: Client, raws: list[str], timeout: float) -> tuple[float, float]:
    """(accepted tx/s, seconds from the first send until the last is mined)."""
    started = time.perf_counter()
    with ThreadPoolExecutor(IN_FLIGHT) as pool:
        hashes = list(pool.map(lambda r: client.call("eth_sendRawTransaction", r), raws))
    accepted = len(raws) / (time.perf_counter() - started)
    deadline = time.monotonic() + timeout
    # Receipts of the last nonce of each sender imply the earlier ones (nonce order).
    for tx_hash in hashes[-5:]:
        wait_receipt(client, tx_hash, max(1.0, deadline - time.monotonic()))
    for tx_hash in hashes[:-5]:
        if client.call("eth_getTransactionReceipt", tx_hash) is None:
            wait_receipt(client, tx_hash, max(1.0, deadline - time.monotonic()))
    return accepted, time.perf_counter() - started


def workloads(url: str, n_reads: int, n_txs: int, timeout: float, rounds: int = 1
              ) -> dict[str, float]:
    client = Client(url)
    chain_id = int(client.call("eth_chainId"), 16)
    nonces = {Account.from_key(k).address: int(client.call(
        "eth_getTransactionCount", Account.from_key(k).address, "pending"), 16)
        for k in DEV_KEYS[:5]}
    deploy = signed_batch(chain_id, nonces, 1, None, counter()["bytecode"], 500_000)
    receipt = wait_receipt(client, client.call("eth_sendRawTransaction", deploy[0]), timeout)
    address = to_checksum_address(receipt["contractAddress"])
    out: dict[str, float] = {}
    out["block_number_rps"] = rate(client, n_reads, lambda c, i: c.call("eth_blockNumber"))
    out["eth_call_rps"] = rate(client, n_reads, lambda c, i: c.call(
        "eth_call", {"to": address, "data": COUNT}, "latest"))
    # The same call from a different sender each time: no answer can be reused, every call
    # runs the EVM (the figure above may be served from a per-block result cache).
    out["eth_call_distinct_rps"] = rate(client, n_reads, lambda c, i: c.call(
        "eth_call", {"to": address, "data": COUNT, "from": "0x" + f"{i + 1:040x}"}, "latest"))
    # A burst's figures depend on where it falls against the 1 s block boundaries (on both
    # sides), so each is the median of `rounds` bursts.
    for name, to, data, gas in (("transfers", "0x" + "42" * 20, "0x", 21000),
                                ("writes", address, INC, 80_000)):
        runs = [send_and_mine(client, signed_batch(chain_id, nonces, n_txs, to, data, gas),
                              timeout) for _ in range(rounds)]
        out[f"{name}_accepted_per_s"] = statistics.median(r[0] for r in runs)
        out[f"{name}_all_mined_s"] = statistics.median(r[1] for r in runs)
    return {k: round(v, 2) for k, v in out.items()}


def start_anvil() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([str(BIN / "anvil"), "-b", "1", "--port", str(port), "--silent"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            Client(url).call("eth_chainId")
            return proc, url
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("anvil did not start") from None
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small bounded run (tests)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="bursts per transaction workload, median reported (default 3)")
    args = parser.parse_args()
    n_reads, n_txs, timeout = (200, 20, 120.0) if args.quick else (3000, 500, 300.0)
    rounds = 1 if args.quick else args.rounds
    os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be in 1..20")
    results: dict[str, Any] = {"quick": args.quick, "in_flight": IN_FLIGHT,
                               "reads": n_reads, "txs": n_txs, "rounds": rounds}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        node = NodeProcess(base / "datadir", fast_genesis(base / "genesis.json"))
        try:
            node.wait_block(1, timeout=300)  # the miner loads the model first
            results["node"] = workloads(node.url, n_reads, n_txs, timeout, rounds)
        finally:
            node.stop()
    anvil, url = start_anvil()
    try:
        results["anvil"] = workloads(url, n_reads, n_txs, timeout, rounds)
    finally:
        anvil.terminate()
        anvil.wait(10)
    def ratio(k: str) -> float | None:
        return round(results["node"][k] / results["anvil"][k], 3) if results["anvil"][k] else None

    results["ratio_node_over_anvil"] = {
        k: ratio(k) for k in results["node"]
        if k.endswith(("rps", "per_s")) and k not in EXTRA_FIGURES
    }
    results["ratio_node_over_anvil_extra"] = {k: ratio(k) for k in EXTRA_FIGURES}
    results["ratio_anvil_time_over_node_time"] = {
        k: round(results["anvil"][k] / results["node"][k], 3) if results["node"][k] else None
        for k in results["node"] if k.endswith("_s") and not k.endswith("per_s")
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
