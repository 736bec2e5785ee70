"""InferenceMarket as the node sees it: its ABI (from the genesis contracts asset), the job
record, the events a job's data lives in, calldata for its functions and its errors in words.

A job's prompt and its output tokens are only in calldata and events (storage keeps their
hashes), so the full job is the `job(id)` view joined with its `JobPosted` and
`ResultCommitted` logs; `JobBook` (book.py) does the joining.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from eth_abi.abi import decode, encode
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from poai.bindings import decode_revert as _shared_decode_revert
from poai.bindings.errors import format_value
from poai.governance.contracts import load_genesis_contracts
from poai.model.tokenizer import EOS_ID, VOCAB_SIZE

MARKET = "InferenceMarket"
STAKED = "StakedPOAI"
ZERO_ADDRESS = b"\x00" * 20


class Status(IntEnum):
    NONE = 0
    OPEN = 1
    CLAIMED = 2
    COMMITTED = 3
    FINALIZED = 4
    REFUNDED = 5
    FRAUD = 6


class Fault(IntEnum):  # the INFERENCE_CHECK verdict, as ChallengeSettled logs it
    NONE = 0
    WRONG_TOKEN = 1
    WRONG_END = 2
    WRONG_COUNT = 3


class MarketError(Exception):
    """A market call that cannot be made or was refused, in words (one line)."""


@functools.cache
def abi(contract: str = MARKET) -> list[dict[str, Any]]:
    return list(load_genesis_contracts().abis[contract])


def _by_name(contract: str, kind: str) -> dict[str, dict[str, Any]]:
    return {str(e["name"]): e for e in abi(contract) if e.get("type") == kind}


def _signature(entry: dict[str, Any]) -> str:
    return f"{entry['name']}({','.join(get_abi_input_types(entry))})"  # type: ignore[arg-type]


def calldata(fn: str, *args: Any, contract: str = MARKET) -> bytes:
    """ABI-encoded call of ``contract.fn(*args)``."""
    entry = _by_name(contract, "function")[fn]
    types = get_abi_input_types(entry)  # type: ignore[arg-type]
    return function_abi_to_4byte_selector(entry) + encode(types, list(args))  # type: ignore[arg-type]


@functools.cache
def event_topics() -> dict[bytes, tuple[str, dict[str, Any]]]:
    """topic0 -> (event name, ABI entry) of the market's events."""
    return {keccak(text=_signature(e)): (name, e) for name, e in _by_name(MARKET, "event").items()}


def decode_event(topics: list[bytes], data: bytes) -> tuple[str, dict[str, Any]] | None:
    """(name, arguments) of a market log, or None when it is not one of the market's events."""
    known = event_topics().get(bytes(topics[0])) if topics else None
    if known is None:
        return None
    name, entry = known
    indexed = [i for i in entry["inputs"] if i["indexed"]]
    plain = [i for i in entry["inputs"] if not i["indexed"]]
    args: dict[str, Any] = {}
    for inp, topic in zip(indexed, topics[1:], strict=False):
        args[inp["name"]] = decode([inp["type"]], bytes(topic))[0]
    values = decode([i["type"] for i in plain], bytes(data))
    for inp, value in zip(plain, values, strict=True):
        args[inp["name"]] = value
    return name, args


STATUS_WORDS = {s: s.name.lower() for s in Status}

# What each refusal means for the person who sent the transaction.
ERROR_WORDS: dict[str, str] = {
    "ZeroFee": "the job needs a fee (--fee > 0)",
    "SnapshotNotActive": "snapshot {0} is not the active model snapshot (active: {1})",
    "EmptyPrompt": "the prompt is empty",
    "PromptTooLong": "the prompt is {0} bytes, the limit is {1}",
    "MaxTokensOutOfRange": "max tokens {0} is out of range (1..{1})",
    "TemperatureOutOfRange": "temperature {0}/1000 is out of range (0..{1}/1000)",
    "TopPOutOfRange": "top-p {0}/1e6 is out of range (1..{1}/1e6)",
    "SeedOutOfRange": "seed {0} does not fit in 64 bits",
    "BadDeadline": "the deadline must be a future block within the market's limit",
    "UnknownJob": "no job {0} on this chain",
    "WrongStatus": "the job is {0}",
    "NotBuyer": "only the buyer may do that",
    "NotWorker": "only the job's worker may do that",
    "DeadlinePassed": "the job's deadline has passed",
    "DeadlineNotPassed": "the job's deadline has not passed yet",
    "BadOutputLength": "output of {0} bytes is not 1..{1} two-byte tokens",
    "TokenOutsideVocabulary": "output token {0} is {1}, outside the vocabulary",
    "BadExperts": "expert ids must be strictly increasing with counts > 0 (at most 64)",
    "ExpertNotInSnapshot": "expert {0} is not in the job's snapshot",
    "WrongBond": "the challenge bond is exactly {0} wei",
    "ChallengeWindowClosed": "the challenge window closed at block {0}",
    "ChallengeWindowOpen": "challenge window still open (until block {0})",
    "AlreadyChallenged": "the job was already challenged (by {0})",
    "SelfChallenge": "a worker cannot challenge its own result",
    "PromptMismatch": "the prompt given does not hash to the job's prompt",
    "OutputMismatch": "the output given does not hash to the job's committed output",
    "CheckGasTooLow": "the inference check needs {0} gas, only {1} was left: raise the gas",
    "InferenceCheckFailed": "the inference check failed (a malformed job, or its snapshot is "
    "not available to the chain)",
    "NothingToWithdraw": "nothing to withdraw",
    "UnexpectedPayment": "the market accepts no plain transfers",
    "WorkerBanned": "this worker is banned (slashed for fraud)",
    "NotRegistered": "not a registered worker",
    "AlreadyRegistered": "already a registered worker",
    "InsufficientStake": "unlocked stake {0} wei is below the {1} wei a worker needs",
    "HasOpenJobs": "the worker still has open jobs",
    "InsufficientUnlocked": "unlocked stake {0} wei is below the {1} wei needed",
}


def decode_revert(data: bytes) -> str:
    """A revert's return data in words: the shared decoder (poai.bindings: every PoAI
    contract's custom errors, ``Error(string)``, ``Panic(uint256)``), then the market's own
    words for its refusals (a job status by name)."""
    decoded = _shared_decode_revert(data)
    if decoded.kind != "custom" or decoded.args.get("<undecodable>"):
        return str(decoded)
    args = [format_value(v) for v in decoded.args.values()]
    if decoded.name == "WrongStatus" and args:
        args[0] = STATUS_WORDS.get(Status(int(next(iter(decoded.args.values())))), args[0])
    words = ERROR_WORDS.get(decoded.name)
    if words is None:
        return str(decoded)
    return f"{words.format(*args)} ({decoded.name})"


def pack_tokens(tokens: list[int] | tuple[int, ...]) -> bytes:
    """Output tokens as the contract takes them: 2 bytes each, big-endian."""
    return b"".join(int(t).to_bytes(2, "big") for t in tokens)


def unpack_tokens(data: bytes) -> tuple[int, ...]:
    if len(data) % 2:
        raise ValueError("packed tokens have an odd length")
    return tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))


def tokens_text(tokens: tuple[int, ...]) -> str:
    """The answer's text: byte tokens decoded as UTF-8 (a final EOS dropped)."""
    return bytes(t for t in tokens if t < 256).decode("utf-8", errors="replace")


@dataclass
class Job:
    """One job: the contract's record joined with the data of its events."""

    job_id: int
    buyer: bytes
    worker: bytes
    challenger: bytes
    status: Status
    max_tokens: int
    temperature_milli: int
    top_p_micro: int
    seed: int
    snapshot_id: int
    prompt_hash: bytes
    fee: int
    deadline: int
    output_hash: bytes
    committed_at: int
    stake_locked: int
    expert_ids: tuple[int, ...]
    counts: tuple[int, ...]
    prompt: bytes | None = None  # from JobPosted (None: its log not found on this chain)
    output: tuple[int, ...] | None = None  # from ResultCommitted
    posted_block: int | None = None
    verdict: tuple[int, int] | None = None  # (fault, index) from ChallengeSettled
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_view(cls, job_id: int, record: tuple[Any, ...]) -> Job:
        (buyer, worker, challenger, status, max_tokens, temp, top_p, seed, snapshot_id,
         prompt_hash, fee, deadline, output_hash, committed_at, stake, expert_ids, counts) = record
        return cls(job_id, bytes.fromhex(buyer[2:]), bytes.fromhex(worker[2:]),
                   bytes.fromhex(challenger[2:]), Status(int(status)), int(max_tokens),
                   int(temp), int(top_p), int(seed), int(snapshot_id), bytes(prompt_hash),
                   int(fee), int(deadline), bytes(output_hash), int(committed_at), int(stake),
                   tuple(int(e) for e in expert_ids), tuple(int(c) for c in counts))

    @property
    def output_ok(self) -> bool:
        return self.output is not None and keccak(pack_tokens(self.output)) == self.output_hash

    def to_json(self, challenge_window: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.job_id, "status": STATUS_WORDS[self.status],
            "buyer": to_checksum_address(self.buyer),
            "worker": to_checksum_address(self.worker) if self.worker != ZERO_ADDRESS else None,
            "snapshotId": self.snapshot_id, "fee": str(self.fee), "deadline": self.deadline,
            "maxTokens": self.max_tokens, "temperatureMilli": self.temperature_milli,
            "topPMicro": self.top_p_micro, "seed": str(self.seed),
            "promptHash": "0x" + self.prompt_hash.hex(),
            "prompt": None if self.prompt is None else self.prompt.decode("utf-8", "replace"),
            "postedBlock": self.posted_block,
        }
        if self.status >= Status.COMMITTED or self.output is not None:
            out.update({
                "committedAt": self.committed_at or None,
                "outputTokens": None if self.output is None else list(self.output),
                "answer": None if self.output is None else tokens_text(self.output),
                "finishReason": None if self.output is None else
                ("stop" if self.output and self.output[-1] == EOS_ID else "length"),
                "expertIds": list(self.expert_ids), "counts": list(self.counts),
            })
            if challenge_window is not None and self.committed_at:
                out["challengeWindowEnds"] = self.committed_at + challenge_window
        if self.challenger != ZERO_ADDRESS:
            out["challenger"] = to_checksum_address(self.challenger)
        if self.verdict is not None:
            out["verdict"] = {"fault": Fault(self.verdict[0]).name.lower()
                              if self.verdict[0] in Fault._value2member_map_ else self.verdict[0],
                              "index": self.verdict[1]}
        return out


def valid_output(tokens: tuple[int, ...]) -> bool:
    return all(0 <= t < VOCAB_SIZE for t in tokens)
