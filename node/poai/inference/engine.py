"""The inference engine: the active snapshot's model, loaded selectively, generating text.

The snapshot is resolved per request (``SnapshotResolver``: the node's current epoch), so a new
snapshot at an epoch boundary is served from the next request on without a restart; requests
already running finish on the snapshot they started with. Experts come from the blob store
through :class:`poai.model.selective.SelectiveModel` with a bounded expert cache.

Concurrency: generations run in worker threads (never on an event loop). One snapshot's model is
shared, so its forward passes are serialised by a lock, one step (one token) at a time: several
requests interleave token by token, each with its own KV cache. The process's
torch thread settings are left as they are (the node's quiz verifier pins them).

Reproducibility: a request's tokens depend only on the prompt, the sampling settings, the seed
and the snapshot's weights: the same on the same machine whatever else runs meanwhile.
"""

from __future__ import annotations

import codecs
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from transformers import DynamicCache

from poai.inference.sampling import SamplingParams, next_token
from poai.model.blobs import expert_name
from poai.model.selective import SelectiveModel
from poai.model.snapshot import ManifestError
from poai.model.store import BlobError, BlobStore
from poai.model.tokenizer import BOS_ID, EOS_ID

log = logging.getLogger(__name__)


class InferenceError(Exception):
    """A request the engine cannot serve."""


class ModelUnavailable(InferenceError):
    """The active snapshot cannot be loaded or run: a blob missing or corrupted, or the epoch's
    snapshot not resolvable. The node keeps serving; the request fails with this message."""


class PromptTooLong(InferenceError):
    def __init__(self, message: str, param: str = "messages") -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class SnapshotRef:
    manifest_hash: str
    blob_dir: str
    epoch: int | None = None


SnapshotResolver = Callable[[], SnapshotRef]


class LoadedSnapshot:
    """One snapshot's selectively loaded model, its step lock and its routing counter hooks."""

    def __init__(self, ref: SnapshotRef, expert_cache: int | None) -> None:
        self.ref = ref
        self.selective = SelectiveModel(BlobStore(ref.blob_dir), ref.manifest_hash,
                                        max_experts=expert_cache)
        self.spec = self.selective.manifest.spec
        self.model = self.selective.model
        self.lock = threading.Lock()
        self._counts: torch.Tensor | None = None  # the running step's [layer, expert] counter
        for i, layer in enumerate(self.model.model.layers):
            layer.mlp.experts.register_forward_pre_hook(self._count_hook(i), with_kwargs=True)

    def _count_hook(self, layer: int) -> Any:
        def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            counts = self._counts
            if counts is not None:
                top_k_index = args[1] if len(args) > 1 else kwargs["top_k_index"]
                counts[layer] += torch.bincount(top_k_index.reshape(-1),
                                                minlength=self.spec.num_local_experts)

        return hook

    @property
    def context_length(self) -> int:
        return self.spec.max_position_embeddings

    def step(self, ids: list[int], cache: DynamicCache, counts: torch.Tensor) -> torch.Tensor:
        """Logits [V] after feeding ``ids`` on top of ``cache`` (updated in place)."""
        with self.lock:
            self._counts = counts
            try:
                with torch.inference_mode():
                    out = self.model(input_ids=torch.tensor([ids], dtype=torch.long),
                                     past_key_values=cache, use_cache=True, logits_to_keep=1)
            except BlobError as exc:
                raise ModelUnavailable(f"model snapshot {self.ref.manifest_hash}: {exc}") from exc
            finally:
                self._counts = None
        logits: torch.Tensor = out.logits[0, -1]
        return logits

    def cache_stats(self) -> dict[str, Any]:
        s = self.selective
        return {"capacity": s.max_experts, "loaded": len(s.loaded_experts()), "hits": s.hits,
                "misses": s.misses, "evictions": s.evictions, "bytesLoaded": s.bytes_loaded,
                "bytesTotal": s.total_bytes}


@dataclass
class Generation:
    """One request's decoding; iterate it for text deltas. After iteration: ``finish_reason``
    ("stop", "length" or "cancelled"), ``tokens``, ``expert_counts`` [layer][expert]."""

    snapshot: LoadedSnapshot
    prompt: list[int]
    params: SamplingParams
    cancel: threading.Event = field(default_factory=threading.Event)
    tokens: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    first_token_s: float | None = None  # seconds from start to the first token
    expert_counts: torch.Tensor = field(init=False)

    def __post_init__(self) -> None:
        spec = self.snapshot.spec
        self.expert_counts = torch.zeros(spec.num_hidden_layers, spec.num_local_experts,
                                         dtype=torch.long)

    @property
    def manifest_hash(self) -> str:
        return self.snapshot.ref.manifest_hash

    @property
    def prompt_tokens(self) -> int:
        return len(self.prompt)

    @property
    def completion_tokens(self) -> int:
        return len(self.tokens)

    def __iter__(self) -> Iterator[str]:
        started = time.monotonic()
        p = self.params
        cache = DynamicCache(config=self.snapshot.model.config)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        out = bytearray()
        emitted = 0
        hold_max = max((len(s) for s in p.stop), default=1) - 1
        logits = self.snapshot.step(self.prompt, cache, self.expert_counts)
        while True:
            if self.cancel.is_set():
                self.finish_reason = "cancelled"
                break
            token = next_token(logits, p, len(self.tokens))
            self.tokens.append(token)
            if self.first_token_s is None:
                self.first_token_s = time.monotonic() - started
            if token == EOS_ID:
                self.finish_reason = "stop"
                break
            out.append(token)
            stop = next((s for s in p.stop if out.endswith(s)), None)
            if stop is not None:
                del out[len(out) - len(stop):]
                self.finish_reason = "stop"
                break
            # Hold back bytes that may begin a stop sequence.
            hold = next((k for k in range(min(hold_max, len(out)), 0, -1)
                         if any(s.startswith(out[len(out) - k:]) for s in p.stop)), 0)
            safe = len(out) - hold
            if safe > emitted:
                text = decoder.decode(bytes(out[emitted:safe]))
                emitted = safe
                if text:
                    yield text
            if len(self.tokens) >= p.max_tokens:
                self.finish_reason = "length"
                break
            logits = self.snapshot.step([token], cache, self.expert_counts)
        tail = decoder.decode(bytes(out[emitted:]), final=True)
        if tail:
            yield tail

    def text(self) -> str:
        return "".join(self)


class InferenceEngine:
    """Generations on the active snapshot; ``on_finished`` sees every finished generation (the
    node's expert-use statistics)."""

    def __init__(self, resolve: SnapshotResolver, *, expert_cache: int | None = None,
                 on_finished: Callable[[Generation], None] | None = None) -> None:
        self._resolve = resolve
        self.expert_cache = expert_cache
        self.on_finished = on_finished
        self._current: LoadedSnapshot | None = None
        self._load_lock = threading.Lock()

    def active(self) -> LoadedSnapshot:
        """The active snapshot, loaded (trunk only) on first use; raises ModelUnavailable."""
        try:
            ref = self._resolve()
        except InferenceError:
            raise
        except Exception as exc:  # noqa: BLE001 - governance/blob errors of the epoch's reading
            raise ModelUnavailable(f"the active model snapshot is not available: {exc}") from exc
        current = self._current
        if current is not None and current.ref.manifest_hash == ref.manifest_hash \
                and current.ref.blob_dir == ref.blob_dir:
            return current
        with self._load_lock:
            current = self._current
            if current is None or current.ref.manifest_hash != ref.manifest_hash \
                    or current.ref.blob_dir != ref.blob_dir:
                try:
                    current = LoadedSnapshot(ref, self.expert_cache)
                except (BlobError, ManifestError, OSError) as exc:
                    raise ModelUnavailable(
                        f"model snapshot {ref.manifest_hash}: {exc}") from exc
                log.info("inference on snapshot %s (epoch %s)", ref.manifest_hash, ref.epoch)
                self._current = current
            return current

    def start(self, prompt: bytes, params: SamplingParams, *, max_prompt: int | None = None,
              snapshot: LoadedSnapshot | None = None) -> Generation:
        """A generation for ``prompt`` (BOS is prepended), checked against the context length.
        Iterate the result (in a worker thread) to decode."""
        snap = snapshot or self.active()
        ids = [BOS_ID, *prompt]
        limit = snap.context_length if max_prompt is None else min(max_prompt, snap.context_length)
        if len(ids) > limit:
            raise PromptTooLong(f"prompt is {len(ids)} tokens, the limit is {limit}")
        if len(ids) + params.max_tokens > snap.context_length:
            raise PromptTooLong(
                f"prompt ({len(ids)} tokens) + max_tokens ({params.max_tokens}) exceed the "
                f"model's context of {snap.context_length} tokens", param="max_tokens")
        return Generation(snap, ids, params)

    def finished(self, g: Generation) -> None:
        if self.on_finished is not None:
            try:
                self.on_finished(g)
            except Exception:
                log.exception("expert statistics update failed")


def expert_names(layers: int, experts: int) -> list[str]:
    return [expert_name(lay, e) for lay in range(layers) for e in range(experts)]
