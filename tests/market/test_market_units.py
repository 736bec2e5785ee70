"""The market package without a node: refusals in words, token packing, event decoding, the
JSON-RPC filter's checks and the CLI's argument errors (one line each, exit code 2)."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from poai.cli import main
from poai.market import contract
from poai.market.contract import (
    Job,
    Status,
    decode_event,
    decode_revert,
    pack_tokens,
    tokens_text,
    unpack_tokens,
)
from poai.market.options import parse_key
from poai.market.rpc import MarketRpc, _jobs_filter
from poai.rpc.errors import InvalidParams


def _error(signature: str, types: list[str], args: list[object]) -> bytes:
    return keccak(text=signature)[:4] + encode(types, args)


@pytest.mark.parametrize(("data", "words"), [
    (_error("ChallengeWindowOpen(uint256)", ["uint256"], [19]),
     "challenge window still open (until block 19) (ChallengeWindowOpen)"),
    (_error("ChallengeWindowClosed(uint256)", ["uint256"], [7]),
     "the challenge window closed at block 7 (ChallengeWindowClosed)"),
    (_error("AlreadyChallenged(address)", ["address"], ["0x" + "ab" * 20]),
     "the job was already challenged (by 0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB) "
     "(AlreadyChallenged)"),
    (_error("PromptTooLong(uint256,uint256)", ["uint256", "uint256"], [300, 256]),
     "the prompt is 300 bytes, the limit is 256 (PromptTooLong)"),
    (_error("SnapshotNotActive(uint256,uint256)", ["uint256", "uint256"], [1, 2]),
     "snapshot 1 is not the active model snapshot (active: 2) (SnapshotNotActive)"),
    (_error("TokenOutsideVocabulary(uint256,uint256)", ["uint256", "uint256"], [3, 300]),
     "output token 3 is 300, outside the vocabulary (TokenOutsideVocabulary)"),
    (_error("ExpertNotInSnapshot(uint256)", ["uint256"], [40]),
     "expert 40 is not in the job's snapshot (ExpertNotInSnapshot)"),
    (_error("WrongStatus(uint8)", ["uint8"], [4]), "the job is finalized (WrongStatus)"),
    (_error("InferenceCheckFailed()", [], []),
     "the inference check failed (a malformed job, or its snapshot is not available to the "
     "chain) (InferenceCheckFailed)"),
    (_error("Error(string)", ["string"], ["nope"]), "reverted: nope"),
    (b"", "reverted without a reason"),
    (b"\x12\x34\x56\x78", "reverted with unknown error 0x12345678"),
])
def test_refusals_in_words(data: bytes, words: str) -> None:
    assert decode_revert(data) == words


def test_tokens_pack_and_text() -> None:
    tokens = (72, 105, 258)
    assert pack_tokens(tokens) == bytes.fromhex("004800690102")
    assert unpack_tokens(pack_tokens(tokens)) == tokens
    assert tokens_text(tokens) == "Hi"
    with pytest.raises(ValueError, match="odd"):
        unpack_tokens(b"\x00")


def test_events_decode_and_unknown_logs_are_skipped() -> None:
    name, entry = next(v for v in contract.event_topics().values() if v[0] == "JobPosted")
    topic0 = keccak(text="JobPosted(uint256,address,uint256,uint256,uint256,bytes,uint256,"
                    "uint256,uint256,uint256)")
    data = encode(["uint256", "uint256", "bytes", "uint256", "uint256", "uint256", "uint256"],
                  [10, 99, b"hello", 8, 0, 1_000_000, 5])
    topics = [topic0, (7).to_bytes(32, "big"), b"\x00" * 12 + b"\x11" * 20, (2).to_bytes(32, "big")]
    decoded = decode_event(topics, data)
    assert decoded is not None and decoded[0] == name == "JobPosted"
    assert decoded[1]["jobId"] == 7 and decoded[1]["prompt"] == b"hello"
    assert decoded[1]["seed"] == 5 and decoded[1]["snapshotId"] == 2
    assert decode_event([keccak(text="Other()")], b"") is None
    assert decode_event([], b"") is None


def test_job_json() -> None:
    z = "0x" + "00" * 20
    record = ("0x" + "11" * 20, "0x" + "22" * 20, z, 3, 8, 0, 1_000_000, 0, 1, b"\x01" * 32,
              10**16, 60, keccak(pack_tokens((72, 258))), 9, 10**20, (1, 5), (3, 4))
    job = Job.from_view(4, record)
    job.prompt, job.output, job.posted_block = b"Hello", (72, 258), 5
    out = job.to_json(12)
    assert job.status == Status.COMMITTED and job.output_ok
    assert out["status"] == "committed" and out["answer"] == "H" and out["finishReason"] == "stop"
    assert out["challengeWindowEnds"] == 21 and "challenger" not in out
    assert out["prompt"] == "Hello" and out["fee"] == str(10**16)


@pytest.mark.parametrize(("value", "message"), [
    ("open", "expected an object"),
    ({"status": "done"}, "status"),
    ({"colour": 1}, "unknown field"),
    ({"buyer": "0x12"}, "buyer"),
    ({"limit": 0}, "limit"),
    ({"limit": 5000}, "limit"),
    ({"fromId": "x"}, "fromId"),
])
def test_jobs_filter_refused(value: object, message: str) -> None:
    with pytest.raises(InvalidParams, match=message):
        _jobs_filter(value, "filter")


def test_rpc_methods_are_declared() -> None:
    rpc = MarketRpc.__new__(MarketRpc)
    assert set(rpc.methods()) == set(MarketRpc.params()) == {"poai_job", "poai_jobs"}


def test_keys(tmp_path: Path) -> None:
    key = "0x" + "ab" * 32
    assert parse_key(key) == bytes.fromhex("ab" * 32)
    f = tmp_path / "k"
    f.write_text(key + "\n")
    assert parse_key(str(f)) == bytes.fromhex("ab" * 32)
    for bad in ("0x1234", "zz" * 32):
        with pytest.raises(Exception, match="key"):
            parse_key(bad)


@pytest.mark.parametrize("args", [
    ["market", "ask", "hi", "--temperature", "3"],
    ["market", "ask", "hi", "--top-p", "0"],
    ["market", "ask", "hi", "--max-tokens", "-1"],
    ["market", "ask", "hi", "--fee", "lots"],
    ["market", "job", "x"],
    ["market", "jobs", "--status", "done"],
    ["node", "--market-worker-key", "0x12"],
    ["node", "--market-min-fee", "-5"],
])
def test_cli_argument_errors_are_one_line(args: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err


def test_cli_without_a_node_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["market", "jobs", "--rpc", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no node at") and len(err.strip().splitlines()) == 1, err
