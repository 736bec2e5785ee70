"""`poai market ask|jobs|job|refund|withdraw`: buy inference from the chain's market.

`ask` posts a job (the prompt and decoding parameters in calldata, the fee escrowed) for the
active model snapshot, waits for a worker's committed answer and prints it; `jobs` and `job`
read the market through the node's `poai_jobs` / `poai_job`; `refund` returns the fee of a job
nobody answered by its deadline and `withdraw` pays out what the market credited the account.
Transactions go through the node's JSON-RPC like `poai gov` (same key options); a refusal is
printed in words.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from web3 import Web3
from web3.exceptions import ContractLogicError, Web3Exception
from web3.types import RPCEndpoint

from poai.governance.commands import RECEIPT_TIMEOUT_S, Gov, GovError, _common, _ether, _key
from poai.market.contract import MARKET, MarketError, decode_event, decode_revert

POLL_S = 0.5
GAS_MARGIN = 30_000


def _words(exc: ContractLogicError) -> str:
    data = exc.data
    if isinstance(data, str) and data.startswith("0x"):
        return decode_revert(bytes.fromhex(data[2:]))
    return str(exc.message or exc)


class Market:
    def __init__(self, args: argparse.Namespace) -> None:
        self.g = Gov(args.rpc, _key(args))
        self.rpc = args.rpc
        self.c = self.g.c[MARKET]

    def call(self, fn: str, *a: Any) -> Any:
        try:
            return getattr(self.c.functions, fn)(*a).call()
        except ContractLogicError as exc:
            raise MarketError(f"{fn}: {_words(exc)}") from None

    def send(self, fn: str, *a: Any, value: int = 0) -> Any:
        account = self.g.account
        if account is None:
            raise MarketError("this command sends a transaction: give --key, --key-file, "
                              "--keystore or --dev-account")
        w3 = self.g.w3
        try:
            tx = getattr(self.c.functions, fn)(*a).build_transaction({
                "from": account.address, "value": value, "chainId": self.g.chain_id,
                "nonce": w3.eth.get_transaction_count(account.address, "pending")})
        except ContractLogicError as exc:
            raise MarketError(_words(exc)) from None
        # The estimate is exact for the head's state; a job paid out meanwhile can turn a
        # storage write from nonzero->nonzero into zero->nonzero (+17,100 gas): keep a margin.
        tx["gas"] = int(tx["gas"]) * 5 // 4 + GAS_MARGIN
        signed = account.sign_transaction(tx)
        h = w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(h, timeout=RECEIPT_TIMEOUT_S,
                                                      poll_latency=0.3)
        if receipt["status"] != 1:
            raise MarketError(f"{fn}: transaction 0x{bytes(h).hex()} reverted")
        return receipt

    def job(self, job_id: int) -> dict[str, Any] | None:
        reply = self.g.w3.provider.make_request(RPCEndpoint("poai_job"), [job_id])
        if "error" in reply:
            raise MarketError(str(reply["error"]))
        result: dict[str, Any] | None = reply.get("result")
        return result


def _posted_id(receipt: Any, market: str) -> int:
    for lg in receipt["logs"]:
        if lg["address"].lower() != market.lower():
            continue
        decoded = decode_event([bytes(t) for t in lg["topics"]], bytes(lg["data"]))
        if decoded is not None and decoded[0] == "JobPosted":
            return int(decoded[1]["jobId"])
    raise MarketError("the postJob receipt has no JobPosted event")


def cmd_ask(args: argparse.Namespace) -> int:
    m = Market(args)
    prompt = args.prompt.encode()
    temperature_milli = round(args.temperature * 1000)
    top_p_micro = round(args.top_p * 1_000_000)
    snapshot = m.call("activeSnapshot")
    head = m.g.w3.eth.block_number
    max_blocks = m.call("maxJobBlocks")
    deadline = head + min(args.deadline_blocks, int(max_blocks))
    receipt = m.send("postJob", snapshot, prompt, args.max_tokens, temperature_milli,
                     top_p_micro, args.seed, deadline, value=args.fee)
    job_id = _posted_id(receipt, m.c.address)
    print(f"job {job_id} posted in block {receipt['blockNumber']} (fee "
          f"{Web3.from_wei(args.fee, 'ether')} POAI, deadline #{deadline}); waiting for a "
          "worker...", file=sys.stderr, flush=True)
    started = time.monotonic()
    wanted = {"finalized", "fraud", "refunded"} if args.final else \
        {"committed", "finalized", "fraud", "refunded"}
    while True:
        job = m.job(job_id)
        if job is not None and job["status"] in wanted:
            break
        if job is not None and job["status"] in ("open", "claimed") and \
                m.g.w3.eth.block_number > job["deadline"]:
            raise MarketError(f"job {job_id}: no answer by its deadline (block "
                              f"{job['deadline']}); `refund` returns the fee")
        if time.monotonic() - started > args.timeout:
            raise MarketError(f"job {job_id}: no answer within {args.timeout:.0f} s "
                              f"(status {job['status'] if job else 'unknown'})")
        time.sleep(POLL_S)
    if args.json:
        print(json.dumps(job))
        return 0
    if job["status"] == "fraud":
        raise MarketError(f"job {job_id}: the worker's answer was proven wrong and slashed; "
                          "the fee is refunded to you")
    if job["status"] == "refunded":
        raise MarketError(f"job {job_id} was refunded")
    print(job["answer"])
    ends = job.get("challengeWindowEnds")
    note = "final" if job["status"] == "finalized" else f"final after block {ends} unless " \
        "a challenger proves it wrong"
    print(f"job {job_id}: {len(job['outputTokens'])} tokens by {job['worker']} in "
          f"{job['committedAt'] - (job['postedBlock'] or job['committedAt'])} blocks, "
          f"{time.monotonic() - started:.1f} s; {note}", file=sys.stderr)
    return 0


def _fmt(job: dict[str, Any]) -> str:
    answer = job.get("answer")
    text = (job.get("prompt") or "")[:40].replace("\n", " ")
    tail = "" if answer is None else " -> " + answer[:40].replace("\n", " ")
    return f"{job['id']:>5}  {job['status']:9}  {int(job['fee']) / 1e18:g} POAI  {text!r}{tail}"


def cmd_jobs(args: argparse.Namespace) -> int:
    m = Market(args)
    flt: dict[str, Any] = {"limit": args.limit}
    if args.status:
        flt["status"] = args.status
    reply = m.g.w3.provider.make_request(RPCEndpoint("poai_jobs"), [flt])
    if "error" in reply:
        raise MarketError(str(reply["error"].get("message")))
    rows = reply["result"]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(_fmt(row))
        if not rows:
            print("no jobs")
    return 0


def cmd_job(args: argparse.Namespace) -> int:
    m = Market(args)
    job = m.job(args.id)
    if job is None:
        raise MarketError(f"no job {args.id} on this chain")
    print(json.dumps(job, indent=None if args.json else 2))
    return 0


def cmd_refund(args: argparse.Namespace) -> int:
    m = Market(args)
    m.send("refund", args.id)
    print(f"job {args.id} refunded: the fee is credited to its buyer (`poai market withdraw`)")
    return 0


def cmd_withdraw(args: argparse.Namespace) -> int:
    m = Market(args)
    receipt = m.send("withdraw")
    (event,) = m.c.events.Withdrawn().process_receipt(receipt)
    print(f"withdrew {Web3.from_wei(event['args']['amount'], 'ether')} POAI")
    return 0


def _run(fn: Any) -> Any:
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return int(fn(args))
        except (MarketError, GovError, Web3Exception, OSError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    return wrapped


def _temperature(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 2.0:
        raise argparse.ArgumentTypeError(f"temperature must be in [0, 2]: {text!r}")
    return value


def _top_p(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"top-p must be in (0, 1]: {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not a non-negative integer: {text!r}")
    return value


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    market = subparsers.add_parser("market", help="buy inference: post a job, read answers")
    sub = market.add_subparsers(dest="market_command", required=True)
    ask = sub.add_parser("ask", help="post a prompt as a paid job, wait, print the answer",
                         description="Post PROMPT to InferenceMarket for the active model "
                         "snapshot (greedy by default), wait for a worker's committed answer "
                         "and print it.")
    ask.add_argument("prompt", help="the prompt (UTF-8; one byte = one token)")
    ask.add_argument("--fee", type=_ether, default=Web3.to_wei("0.01", "ether"),
                     help="fee in POAI (default 0.01)")
    ask.add_argument("--max-tokens", type=_count, default=32,
                     help="tokens to generate (default 32)")
    ask.add_argument("--temperature", type=_temperature, default=0.0,
                     help="0 = greedy (default), else sampling with --seed")
    ask.add_argument("--top-p", type=_top_p, default=1.0, help="nucleus sampling (default 1)")
    ask.add_argument("--seed", type=_count, default=0, help="sampling seed (uint64, default 0)")
    ask.add_argument("--deadline-blocks", type=_count, default=64,
                     help="blocks a worker has to answer (default 64)")
    ask.add_argument("--final", action="store_true",
                     help="wait until the challenge window has passed and the job is paid out")
    ask.add_argument("--timeout", type=float, default=600.0, help="seconds to wait (default 600)")
    _common(ask)
    ask.set_defaults(func=_run(cmd_ask))
    jobs = sub.add_parser("jobs", help="list the market's jobs")
    jobs.add_argument("--status", choices=("open", "claimed", "committed", "finalized",
                                           "refunded", "fraud"))
    jobs.add_argument("--limit", type=_count, default=100)
    _common(jobs)
    jobs.set_defaults(func=_run(cmd_jobs))
    one = sub.add_parser("job", help="one job: prompt, answer, worker, status")
    one.add_argument("id", type=_count, help="job id")
    _common(one)
    one.set_defaults(func=_run(cmd_job))
    refund = sub.add_parser("refund", help="refund a job nobody answered by its deadline")
    refund.add_argument("id", type=_count, help="job id")
    _common(refund)
    refund.set_defaults(func=_run(cmd_refund))
    withdraw = sub.add_parser("withdraw", help="withdraw what the market credited you (fees "
                              "back, payments, rewards)")
    _common(withdraw)
    withdraw.set_defaults(func=_run(cmd_withdraw))
