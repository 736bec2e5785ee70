"""INFERENCE_CHECK's ABI, limits and seeded draw (no model needed)."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode
from eth_utils.crypto import keccak
from poai.consensus import inference_check as ic
from poai.consensus.inference_check import (
    Decoding,
    Fault,
    JobClaim,
    MalformedCall,
    Verdict,
    decode_call,
    decode_verdict,
    draw,
    encode_call,
    encode_verdict,
)

CLAIM = JobClaim(snapshot_id=1, prompt=b"Hello", decoding=Decoding(8, 700, 900_000, 42),
                 output=(104, 105, 258), expert_ids=(1, 5, 9), counts=(3, 2, 1))


def test_call_round_trip_and_layout() -> None:
    data = encode_call(CLAIM)
    assert decode_call(data) == CLAIM
    # The exact abi.encode the contract sends (outputTokens: 2 bytes per token, big-endian).
    assert data == encode(
        ["uint256", "bytes", "uint256", "uint256", "uint256", "uint256", "bytes", "uint256[]",
         "uint256[]"],
        [1, b"Hello", 8, 700, 900_000, 42, bytes.fromhex("006800690102"), [1, 5, 9], [3, 2, 1]])


def test_verdict_round_trip() -> None:
    for v in (Verdict(Fault.NONE, -1, (1, 2), (4, 4)), Verdict(Fault.WRONG_TOKEN, 3, (), ())):
        assert decode_verdict(encode_verdict(v)) == v
    assert encode_verdict(Verdict(Fault.WRONG_COUNT, -1, (), ()))[32:64] == b"\xff" * 32


def test_gas_formula() -> None:
    assert ic.gas_for(CLAIM) == ic.G_BASE + ic.G_PER_TOKEN * (5 + 1 + 3)


@pytest.mark.parametrize("data, reason", [
    (b"", "not abi.encode"),
    (b"\x00" * 31, "not abi.encode"),
    (encode_call(CLAIM)[:-32], "not abi.encode"),
    (encode_call(CLAIM) + b"\x00" * 32, "canonical"),
    (encode_call(JobClaim(1, b"x" * (ic.MAX_PROMPT_BYTES + 1), CLAIM.decoding, (1,), (), ())),
     "prompt is 257 bytes"),
    (encode_call(JobClaim(1, b"", Decoding(0, 0, 1, 0), (1,), (), ())), "maxTokens 0"),
    (encode_call(JobClaim(1, b"", Decoding(ic.MAX_OUTPUT_TOKENS + 1, 0, 1, 0), (1,), (), ())),
     "maxTokens 256"),
    (encode_call(JobClaim(1, b"", Decoding(4, 2001, 1, 0), (1,), (), ())), "temperatureMilli"),
    (encode_call(JobClaim(1, b"", Decoding(4, 0, 0, 0), (1,), (), ())), "topPMicro 0"),
    (encode_call(JobClaim(1, b"", Decoding(4, 0, 1_000_001, 0), (1,), (), ())), "topPMicro"),
    (encode_call(JobClaim(1, b"", Decoding(4, 0, 1, 2**64), (1,), (), ())), "seed"),
    (encode_call(JobClaim(1, b"", Decoding(4, 0, 1, 0), (1,) * 256, (), ())),
     "output is 256 tokens"),
])
def test_malformed_calls(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedCall, match=reason):
        decode_call(data)


def test_odd_output_bytes_are_malformed() -> None:
    d = CLAIM.decoding
    data = encode(list(ic.CALL_TYPES), [1, b"", d.max_tokens, 0, 1, 0, b"\x00\x01\x02", [], []])
    with pytest.raises(MalformedCall, match="2 per token"):
        decode_call(data)


def test_draw_is_keccak_based_and_uniform() -> None:
    h = keccak(b"poai.draw" + (7).to_bytes(8, "big") + (3).to_bytes(8, "big"))
    assert draw(7, 3) == (int.from_bytes(h[:8], "big") >> 11) / 2**53
    values = [draw(s, i) for s in range(20) for i in range(50)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert len(set(values)) == len(values)
    assert 0.45 < sum(values) / len(values) < 0.55
    with pytest.raises(ValueError):
        draw(-1, 0)


def test_widened_interval_contains_the_exact_one() -> None:
    for a, b in ((0.0, 0.3), (0.2, 0.5), (0.9, 1.0), (0.5, 0.5000001)):
        lo, hi = ic.widened_interval(a, b, 0.01)
        assert lo <= a and b <= hi and 0.0 <= lo and hi <= 1.0
        lo0, hi0 = ic.widened_interval(a, b, 0.0)
        assert lo0 == pytest.approx(a) and hi0 == pytest.approx(b)


def test_sampling_intervals_follow_the_rule() -> None:
    import numpy as np
    logits = np.full(ic.VOCAB_SIZE, -5.0, dtype=np.float32)
    logits[65], logits[66], logits[ic.EOS_ID] = 3.0, 2.0, 2.5
    logits[256] = logits[257] = 50.0  # PAD and BOS: never chosen
    a, b = ic.sampling_intervals(logits, 1.0, 1.0)
    assert b[256] == a[256] and b[257] == a[257]
    assert b[-1] == pytest.approx(1.0)
    # top_p 0.4 keeps only the top token (p = 0.49): every draw picks it.
    assert {ic.sample_choice(logits, 1.0, 0.4, u) for u in (0.0, 0.3, 0.99)} == {65}
    assert ic.greedy_choice(logits) == 65


def test_solidity_library_mirrors_the_module() -> None:
    import re
    from pathlib import Path
    sol = (Path(__file__).resolve().parents[2] / "contracts/market/InferenceCheck.sol").read_text()
    consts = {m[1]: int(m[2].replace("_", "")) for m in
              re.finditer(r"uint256 internal constant (\w+) = ([0-9_]+);", sol)}
    assert consts == {
        "MAX_PROMPT_BYTES": ic.MAX_PROMPT_BYTES, "MAX_OUTPUT_TOKENS": ic.MAX_OUTPUT_TOKENS,
        "MAX_TEMPERATURE_MILLI": ic.MAX_TEMPERATURE_MILLI, "TOP_P_ONE": ic.TOP_P_ONE,
        "G_BASE": ic.G_BASE, "G_PER_TOKEN": ic.G_PER_TOKEN,
        **{f"FAULT_{f.name}": int(f) for f in Fault}}
    assert "address(0x0f00)" in sol and ic.INFERENCE_CHECK_ADDRESS == (0xF00).to_bytes(20, "big")
