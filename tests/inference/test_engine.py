from __future__ import annotations

from pathlib import Path

import pytest
import torch
from poai.inference.engine import (
    InferenceEngine,
    ModelUnavailable,
    PromptTooLong,
    SnapshotRef,
)
from poai.inference.sampling import SamplingError, SamplingParams, next_token
from poai.model.snapshot import read_manifest, save_model
from poai.model.store import BlobStore
from poai.model.tokenizer import BOS_ID, EOS_ID, PAD_ID
from support.tinymodel import TINY_SPEC, tiny_model
from transformers import MixtralForCausalLM

PROMPT = b"def add(a, b):\n"


def _engine(store: BlobStore, digest: str, cache: int | None = None) -> InferenceEngine:
    return InferenceEngine(lambda: SnapshotRef(digest, str(store.root)), expert_cache=cache)


def _run(engine: InferenceEngine, params: SamplingParams, prompt: bytes = PROMPT
         ) -> tuple[str, list[int], str | None]:
    g = engine.start(prompt, params)
    text = g.text()
    return text, g.tokens, g.finish_reason


def _greedy_full_recompute(model: MixtralForCausalLM, ids: list[int], n: int) -> list[int]:
    """Greedy decoding without a KV cache: the whole sequence through the full model."""
    out: list[int] = []
    params = SamplingParams(max_tokens=1, temperature=0.0)
    for _ in range(n):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids + out])).logits[0, -1]
        tok = next_token(logits, params, len(out))
        out.append(tok)
        if tok == EOS_ID:
            break
    return out


def test_greedy_with_kv_cache_equals_full_recompute(tiny_store: tuple) -> None:
    store, digest, model = tiny_store
    _, tokens, reason = _run(_engine(store, digest), SamplingParams(max_tokens=24,
                                                                     temperature=0.0))
    assert tokens == _greedy_full_recompute(model, [BOS_ID, *PROMPT], len(tokens))
    assert reason in ("length", "stop")


def test_same_seed_same_tokens_other_seed_differs(tiny_store: tuple) -> None:
    store, digest, _ = tiny_store
    a = _run(_engine(store, digest), SamplingParams(max_tokens=40, temperature=1.0, seed=7))
    b = _run(_engine(store, digest), SamplingParams(max_tokens=40, temperature=1.0, seed=7))
    c = _run(_engine(store, digest), SamplingParams(max_tokens=40, temperature=1.0, seed=8))
    assert a == b
    assert a[1] != c[1]
    top_p = _run(_engine(store, digest), SamplingParams(max_tokens=40, temperature=1.0,
                                                        top_p=0.5, seed=7))
    assert top_p == _run(_engine(store, digest), SamplingParams(max_tokens=40, temperature=1.0,
                                                                top_p=0.5, seed=7))


def test_max_tokens_and_stop_sequence(tiny_store: tuple) -> None:
    store, digest, _ = tiny_store
    engine = _engine(store, digest)
    text, tokens, reason = _run(engine, SamplingParams(max_tokens=30, temperature=0.0))
    if reason == "length":
        assert len(tokens) == 30
    raw = bytes(t for t in tokens if t < 256)
    assert len(raw) >= 8, "the tiny model should produce bytes"
    stop = raw[4:7]
    first = raw.find(stop)
    text2, _, reason2 = _run(engine, SamplingParams(max_tokens=30, temperature=0.0,
                                                    stop=(stop,)))
    assert reason2 == "stop"
    assert text2.encode() == raw[:first] or text2 == raw[:first].decode("utf-8", "replace")


def test_bounded_expert_cache_same_tokens_and_counted(tiny_store: tuple) -> None:
    store, digest, _ = tiny_store
    params = SamplingParams(max_tokens=30, temperature=0.9, seed=3)
    unbounded = _engine(store, digest)
    bounded = _engine(store, digest, cache=2)
    assert _run(unbounded, params) == _run(bounded, params)
    stats = bounded.active().cache_stats()
    assert stats["capacity"] == 2
    assert stats["misses"] > TINY_SPEC.num_local_experts  # experts were evicted and reloaded
    assert stats["evictions"] > 0
    assert stats["loaded"] <= TINY_SPEC.num_local_experts  # at most one layer's call over
    full = unbounded.active().cache_stats()
    assert full["evictions"] == 0 and full["hits"] > 0
    assert full["misses"] <= TINY_SPEC.num_local_experts * TINY_SPEC.num_hidden_layers


def test_expert_counts_per_request(tiny_store: tuple) -> None:
    store, digest, _ = tiny_store
    g = _engine(store, digest).start(PROMPT, SamplingParams(max_tokens=10, temperature=0.0))
    g.text()
    forwarded = g.prompt_tokens + g.completion_tokens - 1  # the last token is not fed back
    counts = g.expert_counts
    assert counts.shape == (TINY_SPEC.num_hidden_layers, TINY_SPEC.num_local_experts)
    for row in counts.tolist():
        assert sum(row) == forwarded * TINY_SPEC.num_experts_per_tok


def test_snapshot_switch_without_restart(tiny_store: tuple, tmp_path: Path) -> None:
    store, first, _ = tiny_store
    second = save_model(store, tiny_model(99))
    active = {"ref": SnapshotRef(first, str(store.root), 0)}
    engine = InferenceEngine(lambda: active["ref"])
    params = SamplingParams(max_tokens=12, temperature=0.0)
    g1 = engine.start(PROMPT, params)
    a = g1.text()
    active["ref"] = SnapshotRef(second, str(store.root), 1)  # the next epoch's snapshot
    g2 = engine.start(PROMPT, params)
    b = g2.text()
    assert (g1.manifest_hash, g2.manifest_hash) == (first, second)
    assert g1.tokens != g2.tokens or a != b


def test_missing_and_corrupt_blob_clear_error_then_recovers(tiny_store: tuple) -> None:
    store, digest, _ = tiny_store
    manifest = read_manifest(store, digest)
    victims = [h for row in manifest.experts for h in row]
    saved = {h: store.path(h).read_bytes() for h in victims}
    for h in victims:
        store.path(h).unlink()
    engine = _engine(store, digest)
    with pytest.raises(ModelUnavailable, match="missing from store"):
        engine.start(PROMPT, SamplingParams(max_tokens=4, temperature=0.0)).text()
    for h, data in saved.items():  # now corrupted instead of missing
        store.path(h).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    with pytest.raises(ModelUnavailable, match="blob"):
        engine.start(PROMPT, SamplingParams(max_tokens=4, temperature=0.0)).text()
    for h, data in saved.items():
        store.path(h).write_bytes(data)
    assert engine.start(PROMPT, SamplingParams(max_tokens=4, temperature=0.0)).text() is not None
    store.path(manifest.trunk).unlink()
    with pytest.raises(ModelUnavailable, match="missing"):
        _engine(store, digest).active()


def test_prompt_limits(tiny_store: tuple) -> None:
    store, digest, _ = tiny_store
    engine = _engine(store, digest)
    with pytest.raises(PromptTooLong):
        engine.start(b"x" * 50, SamplingParams(max_tokens=1), max_prompt=20)
    with pytest.raises(PromptTooLong, match="context"):
        engine.start(b"x" * 100, SamplingParams(max_tokens=100))


@pytest.mark.parametrize("kwargs, param", [
    ({"max_tokens": 0}, "max_tokens"), ({"max_tokens": 1, "temperature": -0.1}, "temperature"),
    ({"max_tokens": 1, "temperature": 2.5}, "temperature"), ({"max_tokens": 1, "top_p": 0.0},
                                                            "top_p"),
    ({"max_tokens": 1, "seed": -1}, "seed"), ({"max_tokens": 1, "stop": (b"",)}, "stop"),
])
def test_sampling_params_rejected(kwargs: dict, param: str) -> None:
    with pytest.raises(SamplingError) as info:
        SamplingParams(**kwargs)
    assert info.value.param == param


def test_specials_never_sampled() -> None:
    logits = torch.full((259,), -10.0)
    logits[PAD_ID] = logits[BOS_ID] = 50.0
    logits[65] = 1.0
    assert next_token(logits, SamplingParams(max_tokens=1, temperature=0.0), 0) \
        == 65
