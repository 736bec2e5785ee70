"""One epoch's quiz: its parameters and assets (QuizContext), and the loaded runner that turns a
(sealHash, nonce) attempt into a batch and per-sample losses.

QuizContext is small and picklable, so it can be sent to miner and verifier worker processes;
each process loads the model and dataset it names once and caches them (by blob store and
manifest hash, and by dataset path and key), because an epoch's attempts all use the same assets.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

import torch

from poai.quiz.loss import build_batch, sample_losses
from poai.quiz.params import QuizParams
from poai.quiz.salt import salt_tokens
from poai.quiz.select import attempt_seed, record_indices

# The byte-level tokenizer's salt range: token ids [SALT_FIRST, SALT_FIRST + SALT_COUNT).
SALT_FIRST = 0
SALT_COUNT = 256


@dataclass(frozen=True)
class QuizContext:
    """Everything one epoch's quiz needs; small and picklable."""

    params: QuizParams
    epoch_key: bytes  # 32 bytes
    manifest_hash: str  # hex sha256 of the model snapshot manifest
    blob_dir: str  # blob store directory holding the manifest and its blobs
    dataset_path: str  # encrypted dataset file
    dataset_key: bytes  # 32-byte dataset key

    def __post_init__(self) -> None:
        if not isinstance(self.params, QuizParams):
            raise TypeError("QuizContext.params must be a QuizParams")
        if not isinstance(self.epoch_key, bytes) or len(self.epoch_key) != 32:
            raise ValueError("QuizContext.epoch_key must be 32 bytes")
        if not isinstance(self.dataset_key, bytes) or len(self.dataset_key) != 32:
            raise ValueError("QuizContext.dataset_key must be 32 bytes")
        h = self.manifest_hash
        if not isinstance(h, str) or len(h) != 64 or any(c not in "0123456789abcdef" for c in h):
            raise ValueError("QuizContext.manifest_hash must be 64 lowercase hex characters")


class RecordSource(Protocol):
    """What the quiz reads from a dataset (poai.model.dataset.EncryptedDataset satisfies it)."""

    def __len__(self) -> int: ...

    def record_tokens(self, index: int) -> Sequence[int]: ...


@dataclass(frozen=True)
class Attempt:
    """The inputs of one attempt: chosen records, salts and the (K, S+L) batch."""

    seed: bytes
    indices: tuple[int, ...]
    salts: tuple[tuple[int, ...], ...]
    batch: torch.Tensor


class QuizRunner:
    """A loaded model and dataset for one set of quiz parameters.

    The epoch key is passed per call, so one runner serves every epoch that uses the same model
    snapshot and dataset.  Not thread-safe by itself (torch modules are shared state): callers
    that share a runner across threads hold a lock.
    """

    def __init__(
        self, params: QuizParams, model: torch.nn.Module, dataset: RecordSource,
        record_cache: int = 1 << 16,
    ) -> None:
        self.params = params
        self.model = model
        self.dataset = dataset
        self.n_records = len(dataset)
        if self.n_records < 1:
            raise ValueError("dataset has no records")
        self._records: OrderedDict[int, tuple[int, ...]] = OrderedDict()
        self._record_cache = record_cache

    def record(self, index: int) -> tuple[int, ...]:
        """The data tokens of record `index`: its first sample_len tokens (decrypted and checked
        by the dataset on first use, then cached)."""
        cached = self._records.get(index)
        if cached is not None:
            self._records.move_to_end(index)
            return cached
        tokens = tuple(int(t) for t in self.dataset.record_tokens(index))
        need = self.params.sample_len
        if len(tokens) < need:
            raise ValueError(
                f"record {index} has {len(tokens)} tokens, fewer than sample_len={need}"
            )
        data = tokens[:need]
        self._records[index] = data
        if len(self._records) > self._record_cache:
            self._records.popitem(last=False)
        return data

    def attempt(self, epoch_key: bytes, seal_hash: bytes, nonce: int) -> Attempt:
        p = self.params
        seed = attempt_seed(seal_hash, nonce)
        indices = record_indices(seed, epoch_key, p.k, self.n_records)
        salts = tuple(
            salt_tokens(seed, epoch_key, j, p.salt_len, SALT_FIRST, SALT_COUNT) for j in range(p.k)
        )
        batch = build_batch(salts, [self.record(i) for i in indices])
        return Attempt(seed, indices, salts, batch)

    def losses(self, epoch_key: bytes, seal_hash: bytes, nonce: int) -> list[float]:
        """The K·G committed losses of an attempt: one batched forward pass."""
        a = self.attempt(epoch_key, seal_hash, nonce)
        return sample_losses(self.model, a.batch, self.params.salt_len, self.params.segments)

    def losses_many(
        self, epoch_key: bytes, attempts: Sequence[tuple[bytes, int]]
    ) -> list[list[float]]:
        """The K·G losses of several attempts (seal_hash, nonce) in ONE forward pass of n*K rows.

        A verifier's speed-up only (~25% per seal at 2-8 seals): the values may differ from
        `losses` in the last float bits, because the matmul kernels block a taller batch
        differently.  Every row has the same length and no padding or mask, attention is per
        row, and Mixtral's token-choice routing has no expert capacity, so a row's result does
        not depend on the other rows beyond that rounding (see seal.verify_seals for why it
        is consensus-safe).
        """
        if not attempts:
            return []
        k = self.params.values
        batch = torch.cat([self.attempt(epoch_key, sh, n).batch for sh, n in attempts])
        flat = sample_losses(self.model, batch, self.params.salt_len, self.params.segments)
        return [flat[i * k : (i + 1) * k] for i in range(len(attempts))]


_K = TypeVar("_K")
_V = TypeVar("_V")
_CACHE_LOCK = threading.Lock()
_MODELS: OrderedDict[tuple[str, str], torch.nn.Module] = OrderedDict()
_DATASETS: OrderedDict[tuple[str, bytes], RecordSource] = OrderedDict()
_RUNNERS: OrderedDict[tuple[str, str, str, bytes, QuizParams], QuizRunner] = OrderedDict()
_CACHE_SIZE = 2  # an epoch boundary may need the old and the new assets at once


def load_runner(ctx: QuizContext) -> QuizRunner:
    """The cached runner for a context's model, dataset and parameters (loaded on first use)."""
    # deferred: transformers (~1-2 s to import) loads on the first quiz, not with the chain
    from poai.model.config import consensus_mode, set_consensus_threads
    from poai.model.dataset import EncryptedDataset
    from poai.model.snapshot import load_model
    from poai.model.store import BlobStore

    key = (ctx.blob_dir, ctx.manifest_hash, ctx.dataset_path, ctx.dataset_key, ctx.params)
    with _CACHE_LOCK:
        runner = _RUNNERS.get(key)
        if runner is not None:
            _RUNNERS.move_to_end(key)
            return runner
        set_consensus_threads()
        mkey = (ctx.blob_dir, ctx.manifest_hash)
        model = _MODELS.get(mkey)
        if model is None:
            model = consensus_mode(load_model(BlobStore(ctx.blob_dir), ctx.manifest_hash))
            _put(_MODELS, mkey, model)
        dkey = (ctx.dataset_path, ctx.dataset_key)
        dataset = _DATASETS.get(dkey)
        if dataset is None:
            dataset = EncryptedDataset.open(ctx.dataset_path, ctx.dataset_key)
            _put(_DATASETS, dkey, dataset)
        runner = QuizRunner(ctx.params, model, dataset)
        _put(_RUNNERS, key, runner)
        return runner


def _put(cache: OrderedDict[_K, _V], key: _K, value: _V) -> None:
    cache[key] = value
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)


_RUN_LOCK = threading.Lock()


def losses_for(ctx: QuizContext, seal_hash: bytes, nonce: int) -> list[float]:
    """The K·G committed losses of one attempt under `ctx` (loads and caches the assets on first
    use).
    Thread-safe: forward passes in one process are serialised (one thread is the consensus
    setting anyway; parallelism comes from worker processes)."""
    runner = load_runner(ctx)
    with _RUN_LOCK:
        return runner.losses(ctx.epoch_key, seal_hash, nonce)


def losses_many_for(
    ctx: QuizContext, attempts: Sequence[tuple[bytes, int]]
) -> list[list[float]]:
    """losses_for of several (seal_hash, nonce) attempts under one context, in one forward pass
    (QuizRunner.losses_many); thread-safe like losses_for."""
    runner = load_runner(ctx)
    with _RUN_LOCK:
        return runner.losses_many(ctx.epoch_key, attempts)


__all__ = ["Attempt", "QuizContext", "QuizRunner", "RecordSource", "load_runner", "losses_for",
           "losses_many_for"]
