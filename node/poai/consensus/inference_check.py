"""INFERENCE_CHECK: does a worker's answer to a market job follow the job's decoding rule?

Consensus-critical (the precompile at ``INFERENCE_CHECK_ADDRESS`` runs it inside the EVM on
every validator): pure functions of (model weights, registry expert ids, claim), computed with
the quiz's numeric discipline (float32 model, eager attention and expert kernels, eval mode; the
caller pins one thread with ``poai.model.config.set_consensus_threads``).

The replay.  One teacher-forced forward pass over ``BOS ‖ prompt ‖ output[:-1]``: position
``len(prompt) + i`` yields the logits that chose output token ``i``.  Each claimed token is
checked against the job's rule with a tolerance, so honest nodes whose float results differ in
the last bits (thread counts, batch layouts, AVX-512 / AVX2 / plain kernels) always agree that
an honest answer holds, while a token the rule could not have picked fails everywhere:

- greedy (``temperature_milli == 0``): the claimed token's logit is within ``EPSILON_LOGIT`` of
  the largest allowed logit;
- seeded sampling: ``u = draw(seed, i)`` lies in the claimed token's probability interval
  (:func:`sampling_intervals`: temperature, top-p nucleus, intervals in token-id order), widened
  to every interval that logits moved by at most ``EPSILON_LOGIT`` each could give (exact bounds
  for a box perturbation, :func:`widened_interval`); a nucleus whose edge is that close is
  tried both ways.

Allowed tokens (the same mask as the engine): the 256 byte ids and EOS; PAD, BOS and ids an
imported model may have beyond the byte vocabulary are never chosen.

The end.  An output holds 1..max_tokens tokens; EOS may only be the last one (a stop).  An
output that does not end in EOS must have exactly max_tokens tokens.  Truncated or extended
outputs are ``WRONG_END``: an EOS the rule did not choose, a byte where the rule chose EOS,
tokens after an EOS or beyond max_tokens, or a short output without EOS.

What is counted (royalties).  The routed-token counts of a job are the routing selections of
every position the worker's model processes — BOS, every prompt byte, and every output token but
the last (the last is never fed back) — in every layer, top-k selections each: in total
``(len(prompt) + len(output)) * layers * top_k``, keyed by the registry expert id of the
(layer, expert) slot.  A selection whose k-th vs (k+1)-th router logit gap is under
``ROUTING_TAU`` is a near-tie that honest nodes may resolve differently, so the check accepts a
claimed count of expert e anywhere in [selections of e that hold whatever the near-ties do,
selections of e that some near-tie resolution gives], with the exact total.  When the claim
holds, the verdict echoes the claimed counts (identical on every node); otherwise it carries
this node's recomputation.

Tolerances.  EPSILON_LOGIT = 0.01 sits far above the honest logit divergence (≤ 2.6e-5 across
thread counts and instruction sets, bench/quiz_agreement.py) and far below the logit gap of a
token the rule would not pick (≥ 1.48 in bench/inference_check.py: 4,000 honest checks under
4 settings flagged none, 4,000 forged ones all caught); ROUTING_TAU = 1e-3 likewise above the
router-gap divergence the quiz measured (1.3e-5).  A claim sitting exactly on a tolerance edge
could be judged differently by two nodes (as a quiz value on a grid edge could); honest claims
sit at the centre (gap 0), forgeries far outside.

ABI (the precompile's calldata and return data) and gas: see :func:`encode_call`,
:func:`encode_verdict` and :func:`gas_for`; Solidity mirror in contracts/market/InferenceCheck.sol.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np
import torch
from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak

from poai.model.tokenizer import BOS_ID, BYTE_TOKENS, EOS_ID, VOCAB_SIZE

INFERENCE_CHECK_ADDRESS = bytes.fromhex("0000000000000000000000000000000000000f00")

# Limits: one job's replay is at most 1 + 256 + 255 = 512 positions, the genesis model's context.
MAX_PROMPT_BYTES = 256
MAX_OUTPUT_TOKENS = 255
MAX_TEMPERATURE_MILLI = 2_000
TOP_P_ONE = 1_000_000  # top_p_micro of top_p = 1
MAX_SEED = 2**64 - 1
MAX_CLAIMED_EXPERTS = 4_096  # claimed (expert id, count) pairs; more is malformed

EPSILON_LOGIT = 1e-2  # tolerance on each logit (logit units)
ROUTING_TAU = 1e-3  # router logit gap under which a routing decision is a near-tie

# Gas: G_BASE + G_PER_TOKEN * (len(prompt) + 1 + len(output)); sizing in poai.chain.inference.
G_BASE = 50_000
G_PER_TOKEN = 2_000

NO_INDEX = 2**256 - 1  # `index` in the ABI output when no position is at fault

CALL_TYPES = ("uint256", "bytes", "uint256", "uint256", "uint256", "uint256", "bytes",
              "uint256[]", "uint256[]")
VERDICT_TYPES = ("uint256", "uint256", "uint256[]", "uint256[]")


class MalformedCall(ValueError):
    """Precompile input that is not a well-formed job within the limits (one-line reason)."""


@dataclass(frozen=True)
class Decoding:
    max_tokens: int
    temperature_milli: int  # 0: greedy; else T * 1000
    top_p_micro: int  # top_p * 1e6, in 1..1_000_000
    seed: int  # uint64

    @property
    def temperature(self) -> float:
        return self.temperature_milli / 1000.0

    @property
    def top_p(self) -> float:
        return self.top_p_micro / 1e6

    @property
    def greedy(self) -> bool:
        return self.temperature_milli == 0


@dataclass(frozen=True)
class JobClaim:
    """Everything the check needs, as the contract passes it."""

    snapshot_id: int
    prompt: bytes
    decoding: Decoding
    output: tuple[int, ...]  # token ids (bytes, optional final EOS)
    expert_ids: tuple[int, ...]  # registry expert ids, strictly increasing
    counts: tuple[int, ...]  # routed-token counts claimed per expert id

    @property
    def replayed_tokens(self) -> int:
        """Tokens the gas formula charges: BOS + prompt + output."""
        return len(self.prompt) + 1 + len(self.output)


class Fault(IntEnum):
    NONE = 0
    WRONG_TOKEN = 1
    WRONG_END = 2
    WRONG_COUNT = 3


@dataclass(frozen=True)
class Verdict:
    fault: Fault
    index: int  # first bad output position, -1 when none (WRONG_COUNT, NONE)
    expert_ids: tuple[int, ...]  # routed registry expert ids, increasing
    counts: tuple[int, ...]  # aligned with expert_ids

    @property
    def holds(self) -> bool:
        return self.fault == Fault.NONE


# ---- ABI ------------------------------------------------------------------------------------


def check_decoding(d: Decoding) -> None:
    """Raise MalformedCall unless the decoding parameters are in range."""
    if not 1 <= d.max_tokens <= MAX_OUTPUT_TOKENS:
        raise MalformedCall(f"maxTokens {d.max_tokens} is outside 1..{MAX_OUTPUT_TOKENS}")
    if not 0 <= d.temperature_milli <= MAX_TEMPERATURE_MILLI:
        raise MalformedCall(
            f"temperatureMilli {d.temperature_milli} is outside 0..{MAX_TEMPERATURE_MILLI}")
    if not 1 <= d.top_p_micro <= TOP_P_ONE:
        raise MalformedCall(f"topPMicro {d.top_p_micro} is outside 1..{TOP_P_ONE}")
    if not 0 <= d.seed <= MAX_SEED:
        raise MalformedCall(f"seed {d.seed} is not a uint64")


def pack_tokens(tokens: Sequence[int]) -> bytes:
    """Output tokens as calldata: 2 bytes each, big-endian."""
    if any(not 0 <= t < 1 << 16 for t in tokens):
        raise ValueError("token ids must fit in 16 bits")
    return b"".join(int(t).to_bytes(2, "big") for t in tokens)


def unpack_tokens(data: bytes) -> tuple[int, ...]:
    if len(data) % 2:
        raise MalformedCall(f"outputTokens has {len(data)} bytes, not 2 per token")
    return tuple(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))


def encode_call(claim: JobClaim) -> bytes:
    """Precompile input: abi.encode(uint256 snapshotId, bytes prompt, uint256 maxTokens,
    uint256 temperatureMilli, uint256 topPMicro, uint256 seed, bytes outputTokens,
    uint256[] expertIds, uint256[] counts)."""
    d = claim.decoding
    return encode(list(CALL_TYPES), [
        claim.snapshot_id, claim.prompt, d.max_tokens, d.temperature_milli, d.top_p_micro,
        d.seed, pack_tokens(claim.output), list(claim.expert_ids), list(claim.counts)])


def decode_call(data: bytes) -> JobClaim:
    """The claim in precompile input; raises MalformedCall (non-canonical ABI, parameters out of
    range, a prompt or output over the limits).  What a claim says (tokens, end, counts) is not
    judged here but by :func:`check_claim`."""
    try:
        values: tuple[Any, ...] = decode(list(CALL_TYPES), bytes(data))
    except Exception as exc:  # noqa: BLE001 - eth_abi raises several decoding error types
        raise MalformedCall(f"input is not abi.encode of a job ({type(exc).__name__})") from exc
    (snapshot_id, prompt, max_tokens, temp, top_p, seed, out, ids, counts) = values
    if encode(list(CALL_TYPES), list(values)) != bytes(data):
        raise MalformedCall("input is not in canonical ABI encoding")
    if len(prompt) > MAX_PROMPT_BYTES:
        raise MalformedCall(f"prompt is {len(prompt)} bytes, the limit is {MAX_PROMPT_BYTES}")
    decoding = Decoding(int(max_tokens), int(temp), int(top_p), int(seed))
    check_decoding(decoding)
    output = unpack_tokens(out)
    if len(output) > MAX_OUTPUT_TOKENS:
        raise MalformedCall(
            f"output is {len(output)} tokens, the limit is {MAX_OUTPUT_TOKENS}")
    if len(ids) > MAX_CLAIMED_EXPERTS or len(counts) > MAX_CLAIMED_EXPERTS:
        raise MalformedCall(f"more than {MAX_CLAIMED_EXPERTS} claimed experts")
    return JobClaim(int(snapshot_id), bytes(prompt), decoding, output,
                    tuple(int(i) for i in ids), tuple(int(c) for c in counts))


def encode_verdict(v: Verdict) -> bytes:
    """Precompile output: abi.encode(uint256 fault, uint256 index, uint256[] expertIds,
    uint256[] counts); index NO_INDEX (type(uint256).max) when no position is at fault."""
    index = NO_INDEX if v.index < 0 else v.index
    return encode(list(VERDICT_TYPES), [int(v.fault), index, list(v.expert_ids), list(v.counts)])


def decode_verdict(data: bytes) -> Verdict:
    fault, index, ids, counts = decode(list(VERDICT_TYPES), bytes(data))
    return Verdict(Fault(fault), -1 if index == NO_INDEX else int(index),
                   tuple(int(i) for i in ids), tuple(int(c) for c in counts))


def gas_for(claim: JobClaim) -> int:
    """The precompile's gas: G_BASE + G_PER_TOKEN * (len(prompt) + 1 + len(output))."""
    return G_BASE + G_PER_TOKEN * claim.replayed_tokens


# ---- the decoding rule (shared with the inference engine) -----------------------------------


def draw(seed: int, position: int) -> float:
    """The seeded uniform in [0, 1) for output position ``position``: the top 53 bits of
    keccak256("poai.draw" ‖ seed (8 bytes) ‖ position (8 bytes)) over 2**53 (exact in a float)."""
    if not 0 <= seed <= MAX_SEED or not 0 <= position < 1 << 64:
        raise ValueError("seed and position must be uint64")
    h = keccak(b"poai.draw" + seed.to_bytes(8, "big") + position.to_bytes(8, "big"))
    return (int.from_bytes(h[:8], "big") >> 11) / float(1 << 53)


def allowed_mask(vocab: int) -> np.ndarray:
    """bool [vocab]: the tokens a decoding rule may choose (bytes and EOS)."""
    mask = np.zeros(vocab, dtype=bool)
    mask[:BYTE_TOKENS] = True
    mask[EOS_ID] = True
    return mask


def is_allowed(token: int) -> bool:
    return 0 <= token < BYTE_TOKENS or token == EOS_ID


def _as_array(logits: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(logits, torch.Tensor):
        logits = logits.detach().to(torch.float32).cpu().numpy()
    return np.asarray(logits, dtype=np.float32)


def greedy_choice(logits: torch.Tensor | np.ndarray) -> int:
    """argmax over the allowed tokens (the first on a tie)."""
    row = _as_array(logits)
    scores = np.where(allowed_mask(row.shape[0]), row, -np.inf)
    return int(np.argmax(scores))


def _probs(row: np.ndarray, temperature: float) -> np.ndarray:
    """float64 softmax of the allowed float32 logits / temperature (0 for the others)."""
    mask = allowed_mask(row.shape[0])
    z = row.astype(np.float64) / temperature
    z = np.where(mask, z, -np.inf)
    e = np.exp(z - z.max())
    result: np.ndarray = e / e.sum()
    return result


def _nucleus_befores(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tokens by decreasing probability (ties by id) and the mass before each."""
    order = np.argsort(-p, kind="stable")
    sp = p[order]
    before = np.cumsum(sp) - sp
    return order, before


def sampling_intervals(logits: torch.Tensor | np.ndarray, temperature: float, top_p: float,
                       nucleus: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The sampling rule's intervals: (A, B) float64 [vocab]; token t is chosen when
    A[t] <= u < B[t].  p = softmax(allowed logits / T); the nucleus is the smallest prefix of
    tokens by decreasing p (ties by id) whose mass reaches top_p (``nucleus``: its size, when
    forced); kept probabilities renormalised; intervals laid out in token-id order."""
    p = _probs(_as_array(logits), temperature)
    if top_p < 1.0 or nucleus is not None:
        order, before = _nucleus_befores(p)
        n = max(1, int(np.count_nonzero(before < top_p))) if nucleus is None else nucleus
        kept = np.zeros_like(p)
        kept[order[:n]] = p[order[:n]]
        p = kept / kept.sum()
    b = np.cumsum(p)
    a = b - p
    return a, b


def sample_choice(logits: torch.Tensor | np.ndarray, temperature: float, top_p: float,
                  u: float) -> int:
    """The token the sampling rule picks for the draw ``u``."""
    a, b = sampling_intervals(logits, temperature, top_p)
    hits = np.nonzero((a <= u) & (u < b) & (b > a))[0]
    if hits.size:
        return int(hits[0])
    return int(np.nonzero(b > a)[0][-1])  # u beyond the rounded total: the last kept token


def choose(logits: torch.Tensor | np.ndarray, decoding: Decoding, position: int) -> int:
    """The rule's choice at output ``position`` (what an honest worker emits)."""
    if decoding.greedy:
        return greedy_choice(logits)
    return sample_choice(logits, decoding.temperature, decoding.top_p,
                         draw(decoding.seed, position))


def widened_interval(a: float, b: float, eta: float) -> tuple[float, float]:
    """The widest [A', B') when every scaled logit moves by at most ``eta``: the mass below the
    token shrinks at most to A/(A + (1-A)e^{2η}), the mass up to it grows at most to
    B/(B + (1-B)e^{-2η})."""
    grow = math.exp(2 * eta)
    lo = a / (a + (1 - a) * grow) if a > 0 else 0.0
    hi = b / (b + (1 - b) / grow) if b < 1 else 1.0
    return lo, hi


def _nucleus_sizes(p: np.ndarray, top_p: float, eta: float) -> range:
    """Nucleus sizes some ε-perturbation of the logits gives (usually one)."""
    _, before = _nucleus_befores(p)
    grow = math.exp(2 * eta)
    b = np.clip(before, 0.0, 1.0)
    hi_b = b / (b + (1 - b) / grow)  # the largest `before` a perturbation can give
    lo_b = b / (b + (1 - b) * grow)
    sure = max(1, int(np.count_nonzero(hi_b < top_p)))
    maybe = max(1, int(np.count_nonzero(lo_b < top_p)))
    return range(sure, max(sure, maybe) + 1)


def token_holds(logits: torch.Tensor | np.ndarray, decoding: Decoding, position: int,
                token: int, epsilon: float = EPSILON_LOGIT) -> bool:
    """Could the rule have chosen ``token`` from logits within ``epsilon`` of these?"""
    row = _as_array(logits)
    if not is_allowed(token) or token >= row.shape[0]:
        return False
    if decoding.greedy:
        scores = np.where(allowed_mask(row.shape[0]), row, -np.inf)
        return bool(row[token] >= scores.max() - epsilon)
    t = decoding.temperature
    u = draw(decoding.seed, position)
    eta = epsilon / t
    sizes = [None] if decoding.top_p_micro == TOP_P_ONE else \
        list(_nucleus_sizes(_probs(row, t), decoding.top_p, eta))
    for n in sizes:
        a, b = sampling_intervals(row, t, decoding.top_p, nucleus=n)
        if b[token] <= a[token]:
            continue  # outside this nucleus
        lo, hi = widened_interval(float(a[token]), float(b[token]), eta)
        if lo <= u < hi:
            return True
    return False


# ---- the replay -----------------------------------------------------------------------------


def replay_ids(prompt: bytes, output: Sequence[int]) -> list[int]:
    """The positions the worker's model processed: BOS, the prompt, the output but its last."""
    return [BOS_ID, *prompt, *output[:-1]]


def forward(model: Any, ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass: logits float32 [T, V] and router logits float32 [layers, T, experts]."""
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([list(ids)], dtype=torch.long), use_cache=False,
                    output_router_logits=True)
        logits = out.logits[0].float()
        layers = getattr(out, "router_logits", None) or ()
        t = len(ids)
        router = torch.stack([r.float().reshape(t, -1) for r in layers])
    return logits, router


def routed_counts(router_logits: torch.Tensor, top_k: int,
                  expert_ids_by_slot: Sequence[Sequence[int]]) -> dict[int, int]:
    """Registry expert id -> selections: top-k of each position's router logits, every layer."""
    counts: dict[int, int] = {}
    top = torch.topk(router_logits, top_k, dim=-1).indices  # [layers, T, k]
    for layer in range(router_logits.shape[0]):
        per = torch.bincount(top[layer].reshape(-1), minlength=router_logits.shape[-1])
        for e, c in enumerate(per.tolist()):
            if c:
                eid = int(expert_ids_by_slot[layer][e])
                counts[eid] = counts.get(eid, 0) + int(c)
    return counts


def count_bounds(router_logits: torch.Tensor, top_k: int,
                 expert_ids_by_slot: Sequence[Sequence[int]],
                 tau: float = ROUTING_TAU) -> tuple[dict[int, int], dict[int, int]]:
    """(lo, hi) per registry expert id: selections that hold whatever the near-ties do, and
    selections some near-tie resolution gives (see the module docstring)."""
    values = torch.topk(router_logits, top_k + 1, dim=-1).values
    kth = values[..., top_k - 1:top_k]
    next_ = values[..., top_k:top_k + 1]
    sure = router_logits > next_ + tau  # above every unchosen expert by tau
    maybe = router_logits >= kth - tau  # within tau of the k-th chosen
    lo: dict[int, int] = {}
    hi: dict[int, int] = {}
    for layer in range(router_logits.shape[0]):
        s = sure[layer].sum(dim=0).tolist()
        m = maybe[layer].sum(dim=0).tolist()
        for e in range(router_logits.shape[-1]):
            eid = int(expert_ids_by_slot[layer][e])
            lo[eid] = lo.get(eid, 0) + int(s[e])
            hi[eid] = hi.get(eid, 0) + int(m[e])
    return lo, hi


def _end_fault(claim: JobClaim) -> tuple[Fault, int] | None:
    """The first structural fault of the output: a token the rule can never choose, tokens after
    an EOS or beyond max_tokens, an empty output, a short output without EOS."""
    out = claim.output
    limit = claim.decoding.max_tokens
    if not out:
        return Fault.WRONG_END, 0
    for i, t in enumerate(out):
        if i >= limit:
            return Fault.WRONG_END, i
        if not is_allowed(t):
            return Fault.WRONG_TOKEN, i
        if t == EOS_ID and i < len(out) - 1:
            return Fault.WRONG_END, i + 1
    if out[-1] != EOS_ID and len(out) < limit:
        return Fault.WRONG_END, len(out)
    return None


def check_claim(model: Any, expert_ids_by_slot: Sequence[Sequence[int]],
                claim: JobClaim) -> Verdict:
    """The verdict on ``claim`` under ``model`` (the job's snapshot, in consensus mode) whose
    (layer, expert) slot s holds registry expert ``expert_ids_by_slot[layer][expert]``."""
    structural = _end_fault(claim)
    # Positions the rule is checked at: those before any structural fault.
    checked = len(claim.output) if structural is None else min(structural[1], len(claim.output))
    # Feed only ids the model can embed (a structural fault stops at the first that is not).
    fed = claim.output[:checked] if structural is not None else claim.output
    ids = replay_ids(claim.prompt, fed if structural is None else (*fed, EOS_ID))
    logits, router = forward(model, ids)
    top_k = int(model.config.num_experts_per_tok)
    recomputed = routed_counts(router, top_k, expert_ids_by_slot)
    rec_ids = tuple(sorted(recomputed))
    rec_counts = tuple(recomputed[i] for i in rec_ids)
    p = len(claim.prompt)
    for i in range(checked):
        token = claim.output[i]
        if not token_holds(logits[p + i], claim.decoding, i, token):
            rule = choose(logits[p + i], claim.decoding, i)
            fault = Fault.WRONG_END if EOS_ID in (token, rule) else Fault.WRONG_TOKEN
            return Verdict(fault, i, rec_ids, rec_counts)
    if structural is not None:
        return Verdict(structural[0], structural[1], rec_ids, rec_counts)
    if _counts_hold(claim, router, top_k, expert_ids_by_slot):
        return Verdict(Fault.NONE, -1, claim.expert_ids, claim.counts)
    return Verdict(Fault.WRONG_COUNT, -1, rec_ids, rec_counts)


def _counts_hold(claim: JobClaim, router: torch.Tensor, top_k: int,
                 expert_ids_by_slot: Sequence[Sequence[int]]) -> bool:
    ids, counts = claim.expert_ids, claim.counts
    if len(ids) != len(counts) or any(b <= a for a, b in zip(ids, ids[1:], strict=False)):
        return False
    if any(c <= 0 for c in counts):
        return False  # zero counts are left out of a claim
    lo, hi = count_bounds(router, top_k, expert_ids_by_slot)
    claimed = dict(zip(ids, counts, strict=True))
    if any(i not in hi for i in claimed):
        return False  # an expert outside the snapshot
    if sum(counts) != router.shape[0] * router.shape[1] * top_k:
        return False
    return all(lo[e] <= claimed.get(e, 0) <= hi[e] for e in hi)


__all__ = [
    "EPSILON_LOGIT",
    "G_BASE",
    "G_PER_TOKEN",
    "INFERENCE_CHECK_ADDRESS",
    "MAX_OUTPUT_TOKENS",
    "MAX_PROMPT_BYTES",
    "NO_INDEX",
    "ROUTING_TAU",
    "VOCAB_SIZE",
    "Decoding",
    "Fault",
    "JobClaim",
    "MalformedCall",
    "Verdict",
    "check_claim",
    "check_decoding",
    "choose",
    "count_bounds",
    "decode_call",
    "decode_verdict",
    "draw",
    "encode_call",
    "encode_verdict",
    "gas_for",
    "routed_counts",
    "sampling_intervals",
    "token_holds",
]
