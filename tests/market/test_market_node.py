"""The inference market on a real mining node (devnet-fast), end to end.

One node runs the market worker (dev account 1) and the challenger (dev account 2); the buyer
is dev account 3 and a dishonest worker fixture dev account 4. Paths, in one run:
- a buyer's job is claimed by the worker, the node is killed (SIGKILL) while the job is claimed
  and restarted: the worker resumes the job — one claim, one commit — and it is paid out;
- `poai market ask` posts a job and prints the answer the worker committed;
- the fee is split to the wei: royalties by the committed counts, the rest to the worker;
- the fixture commits a wrong token to one job and an inflated expert count to another: the
  challenger service proves both with the INFERENCE_CHECK precompile and the fixture is slashed
  (90% burnt, 10% + the bond to the challenger, the fees back to the buyer);
- the buyer's CLI refuses a refund of a paid job in words and withdraws the refunded fees;
- every wei is accounted for: the balances of all parties (buyer, workers, challenger, market,
  StakedPOAI, the burn address) plus the gas they paid are the same before and after.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from poai.cli import main
from poai.governance.contracts import load_genesis_contracts
from poai.market.contract import decode_event, pack_tokens
from support.nodeproc import DEV_KEYS, NodeProcess, free_port
from web3 import Web3

ROOT = Path(__file__).resolve().parents[2]
FAST = Path("devnet-fast")
ETHER = 10**18
HONEST_FEE = ETHER // 100
LOW_FEE = ETHER // 1000  # below the worker's --market-min-fee: left to the fixture
PROMPT = b"def add(a, b):\n    return"
PARAMS = (6, 0, 1_000_000, 0)  # maxTokens, greedy, top-p 1, seed
BURN = "0x000000000000000000000000000000000000dEaD"
WAIT_S = 150


def _poai(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "poai.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "ETH_HASH_BACKEND": "pysha3"})


class Chain:
    def __init__(self, url: str) -> None:
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
        gc = load_genesis_contracts()
        self.addr = {n: Web3.to_checksum_address("0x" + a.hex()) for n, a in gc.addresses.items()}
        self.market = self.w3.eth.contract(address=self.addr["InferenceMarket"],
                                           abi=gc.abis["InferenceMarket"])
        self.staked = self.w3.eth.contract(address=self.addr["StakedPOAI"],
                                           abi=gc.abis["StakedPOAI"])

    def send(self, key: str, fn: Any, value: int = 0) -> Any:
        acct = Account.from_key(key)
        tx = fn.build_transaction({"from": acct.address, "value": value,
                                   "nonce": self.w3.eth.get_transaction_count(acct.address,
                                                                              "pending")})
        tx["gas"] = int(tx["gas"]) * 5 // 4 + 30_000  # the state may move after the estimate
        h = self.w3.eth.send_raw_transaction(acct.sign_transaction(tx).raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(h, timeout=90, poll_latency=0.2)
        assert receipt["status"] == 1, receipt
        return receipt

    def post(self, fee: int) -> int:
        head = self.w3.eth.block_number
        receipt = self.send(DEV_KEYS[3], self.market.functions.postJob(
            self.market.functions.activeSnapshot().call(), PROMPT, *PARAMS, head + 60),
            value=fee)
        return int(self.market.events.JobPosted().process_receipt(receipt)[0]["args"]["jobId"])

    def job(self, job_id: int) -> dict[str, Any]:
        reply = self.w3.provider.make_request("poai_job", [job_id])  # type: ignore[arg-type]
        return dict(reply["result"])

    def wait(self, job_id: int, statuses: set[str], node: NodeProcess) -> dict[str, Any]:
        deadline = time.monotonic() + WAIT_S
        while True:
            job = self.job(job_id)
            if job["status"] in statuses:
                return job
            assert time.monotonic() < deadline, (job, node.text()[-3000:])
            time.sleep(0.3)

    def logs(self, name: str, job_id: int) -> list[dict[str, Any]]:
        out = []
        for lg in self.w3.eth.get_logs({"address": self.addr["InferenceMarket"], "fromBlock": 0}):
            decoded = decode_event([bytes(t) for t in lg["topics"]], bytes(lg["data"]))
            if decoded and decoded[0] == name and decoded[1].get("jobId") == job_id:
                out.append(decoded[1] | {"block": lg["blockNumber"]})
        return out


def _gas_paid(w3: Web3, senders: set[str], first: int, last: int) -> int:
    total = 0
    for n in range(first, last + 1):
        for tx in w3.eth.get_block(n, full_transactions=True)["transactions"]:
            if tx["from"] in senders:  # type: ignore[index]
                r = w3.eth.get_transaction_receipt(tx["hash"])  # type: ignore[index]
                total += r["gasUsed"] * r["effectiveGasPrice"]
    return total


def test_market_on_a_mining_node(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    datadir = tmp_path / "datadir"
    port = free_port()
    args = ("--p2p-port", "0", "--market-worker", "--market-challenger",
            "--market-min-fee", str(LOW_FEE + 1))
    node = NodeProcess(datadir, FAST, log_path=tmp_path / "node.log", extra_args=args,
                       port=port)
    try:
        c = Chain(node.url)
        w3 = c.w3
        who = {"worker": 1, "challenger": 2, "buyer": 3, "fixture": 4}
        acct = {k: Account.from_key(DEV_KEYS[i]).address for k, i in who.items()}
        parties = [*acct.values(), c.addr["InferenceMarket"], c.addr["StakedPOAI"], BURN]
        timelock = c.addr["PoAITimelock"]  # the genesis experts' contributor (royalties)
        first = w3.eth.block_number
        before = {a: w3.eth.get_balance(a, first) for a in parties}
        burnt_before = c.market.functions.totalBurnt().call(block_identifier=first)
        royalties_before = c.market.functions.pendingOf(timelock).call()

        # 1. A job, SIGKILL while the worker holds it claimed, restart: resumed, not re-claimed.
        job_a = c.post(HONEST_FEE)
        c.wait(job_a, {"claimed", "committed"}, node)
        node.proc.kill()
        node.proc.wait(10)
        node.log.close()
        node = NodeProcess(datadir, FAST, log_path=tmp_path / "node2.log", extra_args=args,
                           port=port)

        # 2. The buyer's CLI: post, wait, print the answer.
        r = _poai("market", "ask", PROMPT.decode(), "--rpc", node.url, "--dev-account", "3",
                  "--max-tokens", str(PARAMS[0]), "--fee", "0.01", "--json")
        assert r.returncode == 0, r.stderr + node.text()[-3000:]
        job_e = json.loads(r.stdout)
        assert job_e["status"] in ("committed", "finalized")
        honest = c.wait(job_a, {"committed", "finalized"}, node)
        assert honest["outputTokens"] == job_e["outputTokens"]  # same prompt, greedy: same answer
        assert honest["answer"] == job_e["answer"]
        for method, params in (("poai_job", ["zz"]), ("poai_jobs", [{"status": "done"}]),
                               ("poai_jobs", [{"limit": 0}]), ("poai_job", [])):
            error = w3.provider.make_request(method, params)["error"]  # type: ignore[arg-type]
            assert error["code"] == -32602, (method, params, error)
        assert w3.provider.make_request("poai_job", [999])["result"] is None  # type: ignore[arg-type]
        listed = w3.provider.make_request("poai_jobs", [{"buyer": acct["buyer"]}])  # type: ignore[arg-type]
        assert [j["id"] for j in listed["result"]][:2] == [job_a, job_e["id"]]
        r = _poai("market", "job", str(job_a), "--rpc", node.url, "--json")
        assert r.returncode == 0 and json.loads(r.stdout)["answer"] == honest["answer"], r.stderr

        # 3. The dishonest fixture: a wrong first token, then one expert count inflated.
        fixture = DEV_KEYS[4]
        stake = c.market.functions.minWorkerStake().call()
        c.send(fixture, c.staked.functions.deposit(), value=2 * stake)
        c.send(fixture, c.market.functions.registerWorker())
        tokens, ids, counts = honest["outputTokens"], honest["expertIds"], honest["counts"]
        wrong = [0 if tokens[0] != 0 else 1, *tokens[1:]]  # a NUL byte: nowhere near the top
        inflated = [counts[0] + 1, *counts[1:]]
        frauds = {"wrong token": c.post(LOW_FEE), "inflated count": c.post(LOW_FEE)}
        for job_id in frauds.values():  # both claimed before the first fraud bans the fixture
            c.send(fixture, c.market.functions.claimJob(job_id))
        for job_id, out, cs in ((frauds["wrong token"], wrong, counts),
                                (frauds["inflated count"], tokens, inflated)):
            c.send(fixture, c.market.functions.commitResult(job_id, pack_tokens(out), ids, cs))
        for name, job_id in frauds.items():
            job = c.wait(job_id, {"fraud", "finalized"}, node)
            assert job["status"] == "fraud", (name, job)
            assert job["challenger"] == acct["challenger"]
            expected = "wrong_token" if name == "wrong token" else "wrong_count"
            assert job["verdict"]["fault"] == expected, (name, job["verdict"])
        assert c.market.functions.workers(acct["fixture"]).call()[1] is True  # banned

        # 4. Payouts: both honest jobs finalized, every credit withdrawn by its service.
        for job_id in (job_a, job_e["id"]):
            c.wait(job_id, {"finalized"}, node)
        deadline = time.monotonic() + WAIT_S
        while any(c.market.functions.pendingOf(acct[k]).call() for k in ("worker",
                                                                          "challenger")):
            assert time.monotonic() < deadline, node.text()[-3000:]
            time.sleep(0.5)
        # To the wei: royalty by the committed counts, the rest to the worker.
        royalty_bps = c.market.functions.royaltyBps().call()
        paid_royalty = 0
        for job_id in (job_a, job_e["id"]):
            job = c.job(job_id)
            royalty = HONEST_FEE * royalty_bps // 10_000
            shares = [royalty * n // sum(job["counts"]) for n in job["counts"]]
            (fin,) = c.logs("JobFinalized", job_id)
            assert fin["royaltyPaid"] == sum(shares)
            assert fin["workerPay"] == HONEST_FEE - sum(shares)
            credited = c.logs("RoyaltyCredited", job_id)
            assert [(e["expertId"], e["amount"]) for e in credited] == \
                [(i, s) for i, s in zip(job["expertIds"], shares, strict=True) if s]
            paid_royalty += sum(shares)
            assert len(c.logs("JobClaimed", job_id)) == 1  # the restart claimed nothing twice
            assert len(c.logs("ResultCommitted", job_id)) == 1
        assert c.market.functions.pendingOf(timelock).call() - royalties_before == paid_royalty
        # The buyer's CLI: a refused refund in words; the fraud fees withdrawn.
        capsys.readouterr()
        assert main(["market", "refund", str(job_a), "--rpc", node.url, "--dev-account", "3"]) == 2
        assert "the job is finalized (WrongStatus)" in capsys.readouterr().err
        assert c.market.functions.pendingOf(acct["buyer"]).call() == 2 * LOW_FEE
        assert main(["market", "withdraw", "--rpc", node.url, "--dev-account", "3"]) == 0
        assert c.market.functions.pendingOf(acct["buyer"]).call() == 0

        # 5. Conservation: balances + gas paid + nothing created or lost; the burn is 90%.
        last = w3.eth.block_number
        after = {a: w3.eth.get_balance(a, last) for a in parties}
        gas = _gas_paid(w3, set(acct.values()), first + 1, last)
        assert sum(after.values()) + gas == sum(before.values())
        burnt = c.market.functions.totalBurnt().call(block_identifier=last) - burnt_before
        assert burnt == after[BURN] - before[BURN] == 2 * (stake * 9_000 // 10_000)
        slashed_reward = 2 * (stake - stake * 9_000 // 10_000)

        def gained(who_: str) -> int:  # native balance change plus the gas the account paid
            a_ = acct[who_]
            return after[a_] - before[a_] + _gas_paid(w3, {a_}, first + 1, last)

        # the buyer paid the honest fees (the fraud ones came back); the fixture lost its whole
        # stake; the challenger got 10% of both stakes (its bonds back); the worker the honest
        # fees less the royalties (what it keeps staked counted in)
        assert gained("buyer") == -2 * HONEST_FEE
        assert gained("fixture") == -2 * stake
        assert gained("challenger") == slashed_reward
        worker_staked = [c.staked.functions.balanceOf(acct["worker"]).call(block_identifier=n)
                         for n in (first, last)]
        assert gained("worker") + worker_staked[1] - worker_staked[0] == \
            2 * HONEST_FEE - paid_royalty
    finally:
        node.stop()
