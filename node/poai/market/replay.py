"""The model work of the market services: an honest answer to a job, and the local check.

Both use the consensus module's own rule (`poai.consensus.inference_check`): the worker decodes
with `choose` (greedy, or the seeded `draw` in the rule's probability intervals) and counts
routed tokens with `routed_counts` over the same teacher-forced pass the precompile replays, so
its claim is exactly what the check recomputes; the challenger runs `check_claim` itself, the
function every validator runs inside the precompile, so it challenges only what the chain will
find to be a fraud.

The model is the job's snapshot as the node holds it for the quiz (its manifest and blobs), in
consensus mode; the registry's expert ids fill the (layer, expert) slots. Only the snapshot
active at the head is loaded (a job must name the active snapshot when it is posted; a job
whose snapshot has since been replaced is left alone and says so in the log).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import torch
from transformers import DynamicCache

from poai.consensus.inference_check import (
    Decoding,
    JobClaim,
    check_claim,
    choose,
    forward,
    gas_for,
    replay_ids,
    routed_counts,
)
from poai.governance.contracts import REGISTRY
from poai.interfaces import NodeLike
from poai.market.book import JobBook
from poai.market.contract import Job, MarketError
from poai.model.config import check_consensus_mode
from poai.model.snapshot import load_model
from poai.model.store import BlobStore
from poai.model.tokenizer import BOS_ID, EOS_ID

log = logging.getLogger(__name__)

CHALLENGE_GAS_MARGIN = 800_000  # the challenge's own work around the precompile's gas


def decoding_of(job: Job) -> Decoding:
    return Decoding(job.max_tokens, job.temperature_milli, job.top_p_micro, job.seed)


def generate(model: Any, prompt: bytes, decoding: Decoding) -> tuple[int, ...]:
    """The rule's tokens for ``prompt``: BOS first, a KV cache, until EOS or max_tokens."""
    tokens: list[int] = []
    with torch.inference_mode():
        cache = DynamicCache(config=model.config)
        ids = [BOS_ID, *prompt]
        for position in range(decoding.max_tokens):
            out = model(input_ids=torch.tensor([ids], dtype=torch.long), past_key_values=cache,
                        use_cache=True, logits_to_keep=1)
            token = choose(out.logits[0, -1].float(), decoding, position)
            tokens.append(token)
            if token == EOS_ID:
                break
            ids = [token]
    return tuple(tokens)


class Replayer:
    """The job's model, loaded once per snapshot, shared by the worker and the challenger (one
    forward pass at a time)."""

    def __init__(self, node: NodeLike, book: JobBook) -> None:
        self.node = node
        self.book = book
        self._lock = threading.Lock()
        self._loaded: tuple[int, str, Any, tuple[tuple[int, ...], ...]] | None = None

    def model_for(self, snapshot_id: int) -> tuple[Any, tuple[tuple[int, ...], ...]]:
        active = int(self.book.view("activeSnapshot"))
        if snapshot_id != active:
            raise MarketError(f"snapshot {snapshot_id} is no longer active ({active} is): this "
                              "node replays only the active snapshot")
        quiz = self.node.current_quiz()
        loaded = self._loaded
        if loaded is not None and loaded[:2] == (snapshot_id, quiz.manifest_hash):
            return loaded[2], loaded[3]
        model = load_model(BlobStore(quiz.blob_dir), quiz.manifest_hash)
        check_consensus_mode(model)
        registry = self.node.contracts[REGISTRY]
        ids = [int(e) for e in self.book.view("snapshotExperts", snapshot_id,
                                              contract=REGISTRY, address=registry)]
        per_layer = int(model.config.num_local_experts)
        slots = tuple(tuple(ids[i:i + per_layer]) for i in range(0, len(ids), per_layer))
        if len(slots) != int(model.config.num_hidden_layers):
            raise MarketError(f"snapshot {snapshot_id} names {len(ids)} experts, the model has "
                              f"{model.config.num_hidden_layers} x {per_layer} slots")
        self._loaded = (snapshot_id, quiz.manifest_hash, model, slots)
        log.info("market replays snapshot %d (manifest %s)", snapshot_id, quiz.manifest_hash)
        return model, slots

    def answer(self, job: Job) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(output tokens, expert ids, routed-token counts) the check accepts."""
        assert job.prompt is not None
        with self._lock:
            model, slots = self.model_for(job.snapshot_id)
            tokens = generate(model, job.prompt, decoding_of(job))
            _logits, router = forward(model, replay_ids(job.prompt, tokens))
            counts = routed_counts(router, int(model.config.num_experts_per_tok), slots)
        ids = tuple(sorted(counts))
        return tokens, ids, tuple(counts[i] for i in ids)

    def claim(self, job: Job) -> JobClaim:
        if job.prompt is None or job.output is None:
            raise MarketError(f"job {job.job_id}: prompt or output not found in the chain's logs")
        return JobClaim(job.snapshot_id, job.prompt, decoding_of(job), job.output,
                        job.expert_ids, job.counts)

    def check(self, job: Job) -> tuple[int, int]:
        """(fault, index) of the INFERENCE_CHECK on the job's committed result."""
        claim = self.claim(job)
        with self._lock:
            model, slots = self.model_for(job.snapshot_id)
            verdict = check_claim(model, slots, claim)
        return int(verdict.fault), int(verdict.index)

    def check_gas(self, job: Job) -> int:
        """Gas for the challenge transaction: the precompile's and the contract's own."""
        return gas_for(self.claim(job)) + CHALLENGE_GAS_MARGIN
