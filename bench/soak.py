"""Soak: a mining node under a long mixed load while it also serves a syncing peer.

Load, all at once for --duration seconds: eth_blockNumber/eth_getBalance/eth_call readers (the
blockNumber latency is sampled), a transfer and contract-write flood from --senders funded
accounts, WebSocket subscriptions (newHeads, logs, pending transactions) opened, read and
dropped without unsubscribing, polling filters created, polled once and abandoned, chats with
the model (`/v1/chat/completions`, a new prompt and seed each time) and paid inference-market
jobs (the miner runs `--market-worker --market-challenger`; dev account 3 posts a job every
--job-interval seconds). A second, non-mining node joins by P2P after the first quarter and must
follow the head.

Prints one JSON object: the miner's RSS at start (after warm-up), peak and end, and its growth
over the second half (goal: flat — filters and subscriptions expire, caches are bounded); every
transaction the node accepted is mined or explicitly reported dropped (`lost` must be 0); the
head advances in every --window; eth_blockNumber p50/p99 latency; chats served and their latency;
every posted job answered (committed or finalized by the worker); the peer's distance to the
head. `--no-ai` leaves the chats and jobs out.
Every loop is bounded in count and time.

    .venv/bin/python bench/soak.py --duration 600      # the full soak (>= 10 minutes)
    .venv/bin/python bench/soak.py --duration 60       # the bounded form run by the tests
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from web3 import Web3
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]
# The node-process harness and the counter contract of the tests (tests/support).
sys.path.insert(0, str(ROOT / "tests"))
from rpc_throughput import Client  # noqa: E402  (bench/ is the script's own directory)
from support import nodeproc as harness  # noqa: E402
from support.contract import counter  # noqa: E402

GWEI = 10**9
INC = "0x" + function_signature_to_4byte_selector("increment()").hex()
COUNT = "0x" + function_signature_to_4byte_selector("count()").hex()


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """Resident memory in MB: VmRSS (all), RssAnon (the process's own: heap, arenas, stacks)
    or RssFile (mapped files, e.g. LevelDB's table files: page cache the kernel can reclaim,
    growing with the chain)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field}")


def wait_receipt(client: Client, tx_hash: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (receipt := client.call("eth_getTransactionReceipt", tx_hash)) is None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{tx_hash} not mined in {timeout:.0f}s")
        time.sleep(0.2)
    return receipt


class Senders:
    """Funded accounts that sign transfers and counter writes with locally tracked nonces."""

    def __init__(self, client: Client, chain_id: int, count: int, timeout: float) -> None:
        self.client, self.chain_id = client, chain_id
        rng = random.Random(7)
        self.accounts = [Account.from_key(rng.randbytes(32)) for _ in range(count)]
        self.nonces = {a.address: 0 for a in self.accounts}
        funder = Account.from_key(harness.DEV_KEYS[0])
        nonce = int(client.call("eth_getTransactionCount", funder.address, "pending"), 16)
        hashes = []
        for i, acct in enumerate(self.accounts):
            hashes.append(self._send(funder, nonce + i, acct.address, 10**20, "0x", 21000))
        self.contract = to_checksum_address(wait_receipt(client, self._send(
            funder, nonce + count, None, 0, counter()["bytecode"], 500_000), timeout)[
            "contractAddress"])
        for h in hashes:
            wait_receipt(client, h, timeout)

    def _send(self, acct: Any, nonce: int, to: str | None, value: int, data: str,
              gas: int) -> str:
        tx = {"chainId": self.chain_id, "type": 2, "nonce": nonce, "gas": gas, "to": to,
              "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": GWEI, "value": value,
              "data": data}
        raw = "0x" + bytes(acct.sign_transaction(tx).raw_transaction).hex()
        return str(self.client.call("eth_sendRawTransaction", raw))

    def send_one(self, i: int) -> str:
        acct = self.accounts[i % len(self.accounts)]
        nonce = self.nonces[acct.address]
        write = i % 2 == 1
        tx_hash = self._send(acct, nonce, self.contract if write else "0x" + "42" * 20,
                             0 if write else 1, INC if write else "0x", 80_000 if write else 21000)
        self.nonces[acct.address] = nonce + 1
        return tx_hash


class Buyer:
    """Dev account 3 posting paid jobs to InferenceMarket, as `poai market ask` does."""

    def __init__(self, client: Client, chain_id: int) -> None:
        from poai.governance.contracts import load_genesis_contracts

        contracts = load_genesis_contracts()
        self.client, self.chain_id = client, chain_id
        self.address = to_checksum_address("0x" + contracts.addresses["InferenceMarket"].hex())
        self.abi = Web3().eth.contract(abi=contracts.abis["InferenceMarket"])
        self.account = Account.from_key(harness.DEV_KEYS[3])
        self.nonce = int(client.call("eth_getTransactionCount", self.account.address,
                                     "pending"), 16)
        self.posted: list[str] = []

    def _read(self, fn: str) -> int:
        return int(self.client.call("eth_call", {"to": self.address,
                                                 "data": self.abi.encode_abi(fn, args=[])},
                                    "latest"), 16)

    def post(self, i: int) -> None:
        head = int(self.client.call("eth_blockNumber"), 16)
        deadline = head + min(60, self._read("maxJobBlocks"))
        data = self.abi.encode_abi("postJob", args=[
            self._read("activeSnapshot"), f"def task_{i}(x):".encode(), 8, 700, 950_000, i,
            deadline])
        tx = {"chainId": self.chain_id, "type": 2, "nonce": self.nonce, "gas": 400_000,
              "to": self.address, "maxFeePerGas": 100 * GWEI, "maxPriorityFeePerGas": GWEI,
              "value": 10**16, "data": data}
        raw = "0x" + bytes(self.account.sign_transaction(tx).raw_transaction).hex()
        self.posted.append(str(self.client.call("eth_sendRawTransaction", raw)))
        self.nonce += 1

    def statuses(self) -> dict[str, int]:
        jobs = self.client.call("poai_jobs", {"buyer": self.account.address, "limit": 1000})
        out: dict[str, int] = {}
        for job in jobs:
            out[job["status"]] = out.get(job["status"], 0) + 1
        return out


def chat(url: str, i: int) -> float:
    """One chat completion with a prompt and seed never used before; returns its latency."""
    body = json.dumps({"model": "poai", "max_tokens": 8, "temperature": 0.8, "seed": i,
                       "messages": [{"role": "user", "content": f"Write step {i}."}]}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=120) as resp:
        reply = json.loads(resp.read())
    if not reply["choices"][0]["message"]["content"] and reply["usage"]["completion_tokens"] < 1:
        raise RuntimeError(f"empty chat reply: {reply}")
    return time.perf_counter() - t0


def percentiles(values: list[float]) -> dict[str, Any]:
    lat = sorted(values)
    return {"p50": round(1000 * statistics.median(lat), 2) if lat else None,
            "p99": round(1000 * lat[int(0.99 * (len(lat) - 1))], 2) if lat else None,
            "samples": len(lat)}


def run(duration: float, senders_n: int, tx_rate: float, window: float,
        keep_logs: Path | None = None, ai: bool = True,
        job_interval: float = 20.0) -> dict[str, Any]:
    os.environ.setdefault("ETH_HASH_BACKEND", "pysha3")
    out: dict[str, Any] = {"duration_s": duration, "senders": senders_n, "tx_rate": tx_rate}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        genesis = harness.fast_genesis(base / "genesis.json")
        p2p_port = harness.free_port()
        market = ("--market-worker", "--market-challenger") if ai else ()
        miner = harness.NodeProcess(base / "miner", genesis,
                                    extra_args=("--p2p-port", str(p2p_port), *market))
        peer: harness.NodeProcess | None = None
        try:
            miner.wait_block(1, timeout=300)
            client = Client(miner.url)
            senders = Senders(client, miner.chain_id, senders_n, 180)
            stop = threading.Event()
            errors: list[str] = []
            accepted: list[str] = []
            latencies: list[float] = []
            chat_latencies: list[float] = []
            buyer = Buyer(client, miner.chain_id) if ai else None
            counts = {"reads": 0, "filters": 0, "subscriptions": 0, "ws_messages": 0,
                      "chats": 0, "jobs": 0}
            lock = threading.Lock()

            def guarded(fn: Any) -> Any:
                def loop() -> None:
                    while not stop.is_set():
                        try:
                            fn()
                        except Exception as exc:  # noqa: BLE001 - reported in the JSON
                            with lock:
                                errors.append(f"{fn.__name__}: {exc}")
                            time.sleep(0.5)
                return loop

            def reads() -> None:
                t0 = time.perf_counter()
                client.call("eth_blockNumber")
                latencies.append(time.perf_counter() - t0)
                client.call("eth_getBalance", senders.accounts[0].address, "latest")
                client.call("eth_call", {"to": senders.contract, "data": COUNT}, "latest")
                counts["reads"] += 3
                time.sleep(0.05)

            sent = [0]

            def flood() -> None:
                tx_hash = senders.send_one(sent[0])
                sent[0] += 1
                accepted.append(tx_hash)
                time.sleep(1 / tx_rate)

            def filters() -> None:
                kind = random.choice(["eth_newBlockFilter", "eth_newPendingTransactionFilter",
                                      "eth_newFilter"])
                args = [{"address": senders.contract}] if kind == "eth_newFilter" else []
                fid = client.call(kind, *args)
                client.call("eth_getFilterChanges", fid)  # polled once, then abandoned
                counts["filters"] += 1
                time.sleep(0.05)

            def subscriptions() -> None:
                ws_url = miner.url.replace("http://", "ws://")
                with connect(ws_url, open_timeout=10, close_timeout=1) as ws:
                    for kind in (["newHeads"], ["logs", {"address": senders.contract}],
                                 ["newPendingTransactions"]):
                        ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                                            "params": kind}))
                        json.loads(ws.recv(timeout=10))
                        counts["subscriptions"] += 1
                    deadline = time.monotonic() + 2
                    while time.monotonic() < deadline:
                        try:
                            ws.recv(timeout=0.5)
                            counts["ws_messages"] += 1
                        except TimeoutError:
                            pass
                    # dropped without eth_unsubscribe

            def chats() -> None:
                chat_latencies.append(chat(miner.url, counts["chats"]))
                counts["chats"] += 1
                time.sleep(1.0)

            def jobs() -> None:
                assert buyer is not None
                buyer.post(counts["jobs"])
                counts["jobs"] += 1
                stop.wait(job_interval)

            loads = [reads, reads, flood, filters, subscriptions] + ([chats, jobs] if ai else [])
            threads = [threading.Thread(target=guarded(f), daemon=True) for f in loads]
            started = time.monotonic()
            samples: list[tuple[float, float, int]] = []  # (t, rss, head)
            anon: list[float] = []  # RssAnon at each sample
            peer_joined = -1.0
            joiner: threading.Thread | None = None
            peers: list[harness.NodeProcess] = []

            def start_peer() -> None:  # a process start takes seconds: keep sampling meanwhile
                addr = next(line.split()[-1] for line in miner.text().splitlines()
                            if line.startswith("P2P listening on"))
                peers.append(harness.NodeProcess(base / "peer", genesis, mine=False,
                                                 extra_args=("--p2p-port", "0", "--peer", addr)))

            for t in threads:
                t.start()
            while (elapsed := time.monotonic() - started) < duration:
                head = int(client.call("eth_blockNumber"), 16)
                samples.append((elapsed, rss_mb(miner.proc.pid), head))
                anon.append(rss_mb(miner.proc.pid, "RssAnon"))
                if joiner is None and elapsed > duration / 4:
                    joiner = threading.Thread(target=start_peer, daemon=True)
                    joiner.start()
                    peer_joined = elapsed
                time.sleep(min(2.0, max(0.1, duration - elapsed)))
            stop.set()
            for t in threads:
                t.join(30)
            if joiner is not None:
                joiner.join(180)
                peer = peers[0] if peers else None

            # Every accepted transaction: mined, or still pending/queued in the pool (reported),
            # else lost.
            drain_deadline = time.monotonic() + 120
            accepted += buyer.posted if buyer is not None else []
            pending = list(accepted)
            while pending and time.monotonic() < drain_deadline:
                pending = [h for h in pending
                           if client.call("eth_getTransactionReceipt", h) is None]
                if pending:
                    time.sleep(1)
            content = client.call("txpool_content")
            in_pool = {tx["hash"] for section in content.values()
                       for by_nonce in section.values() for tx in by_nonce.values()}
            head = int(client.call("eth_blockNumber"), 16)
            peer_head = int(peer.call("eth_blockNumber"), 16) if peer is not None else -1
            if peer is not None:  # the peer follows: it reaches the head we saw at the end
                follow_deadline = time.monotonic() + 60
                while peer_head < head and time.monotonic() < follow_deadline:
                    time.sleep(1)
                    peer_head = int(peer.call("eth_blockNumber"), 16)
            rss_end = rss_mb(miner.proc.pid)
            job_status: dict[str, int] = {}
            if buyer is not None:  # each posted job answered: committed (or already final)
                answer_deadline = time.monotonic() + 120
                while True:
                    job_status = buyer.statuses()
                    waiting = job_status.get("open", 0) + job_status.get("claimed", 0)
                    if not waiting or time.monotonic() > answer_deadline:
                        break
                    time.sleep(1)
        finally:
            if peer is not None:
                peer.stop()
            miner.stop()
            if keep_logs is not None:
                keep_logs.mkdir(parents=True, exist_ok=True)
                for log in base.glob("*.log"):
                    shutil.copy(log, keep_logs / log.name)

    warm = [s for s in samples if s[0] >= duration / 4] or samples
    half = [s for s in samples if s[0] >= duration / 2] or samples
    windows: list[int] = []  # blocks gained by the end of each window over the one before
    last = samples[0][2]
    for w in range(1, int(duration // window) + 1):
        reached = max((s[2] for s in samples if s[0] < w * window), default=last)
        windows.append(reached - last)
        last = reached
    out.update({
        "rss_mb": {"start": round(warm[0][1], 1), "peak": round(max(s[1] for s in samples), 1),
                   "end": round(rss_end, 1),
                   "second_half_growth": round(half[-1][1] - half[0][1], 1),
                   # (seconds, MB) about every twelfth of the run: the curve, not just its ends
                   "series": [[round(t), round(r, 1)] for t, r, _ in
                              samples[::max(1, len(samples) // 12)]]},
        # the process's own memory (RSS less mapped files), the part that must stay flat
        "rss_anon_mb": {"start": round(anon[len(samples) - len(warm)], 1),
                        "peak": round(max(anon), 1), "end": round(anon[-1], 1),
                        "second_half_growth": round(anon[-1] - anon[len(samples) - len(half)], 1),
                        "series": [round(a, 1) for a in anon[::max(1, len(anon) // 12)]]},
        "transactions": {"accepted": len(accepted), "mined": len(accepted) - len(pending),
                         "in_pool": len([h for h in pending if h in in_pool]),
                         "lost": len([h for h in pending if h not in in_pool])},
        "head": {"end": head, "blocks_per_window": windows, "window_s": window,
                 "stalled_windows": sum(1 for w in windows if w == 0)},
        "peer": {"joined_at_s": round(peer_joined, 1), "head": peer_head,
                 "caught_up": peer_head >= head},
        "eth_blockNumber_ms": percentiles(latencies),
        "chat_ms": percentiles(chat_latencies),
        "jobs": {"posted": len(buyer.posted) if buyer is not None else 0, **job_status,
                 "answered": job_status.get("committed", 0) + job_status.get("finalized", 0)},
        "load": counts, "errors": len(errors), "first_errors": errors[:5],
    })
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of load (600)")
    ap.add_argument("--senders", type=int, default=50, help="funded senders (50)")
    ap.add_argument("--tx-rate", type=float, default=20.0, help="transactions per second (20)")
    ap.add_argument("--window", type=float, default=15.0,
                    help="the head must advance in every window of this many seconds (15)")
    ap.add_argument("--keep-logs", type=Path, help="copy the nodes' logs into this directory")
    ap.add_argument("--no-ai", action="store_true",
                    help="leave out the chats and the inference-market jobs")
    ap.add_argument("--job-interval", type=float, default=20.0,
                    help="seconds between two market jobs (20)")
    args = ap.parse_args()
    if not 10 <= args.duration <= 7200:
        ap.error("--duration must be in 10..7200 seconds")
    if not 1 <= args.senders <= 1000 or not 0.1 <= args.tx_rate <= 1000:
        ap.error("--senders must be in 1..1000 and --tx-rate in 0.1..1000")
    if not 1 <= args.job_interval <= 3600:
        ap.error("--job-interval must be in 1..3600 seconds")
    print(json.dumps(run(args.duration, args.senders, args.tx_rate, args.window,
                         args.keep_logs, not args.no_ai, args.job_interval)))


if __name__ == "__main__":
    main()
