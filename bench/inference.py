"""Inference through the node's OpenAI-compatible API against a bare transformers loop.

Prints one JSON object. Starts a real node as a user runs it (`poai node --dev --mine`, default
flags, the bundled devnet genesis, a fresh data dir, a free loopback port), then in the same run
and on the same weights (the genesis snapshot):

- api vs bare: decode tokens/s and time to first token of streamed chat completions (greedy,
  fixed length, a different prompt each request so nothing is cached), with 1 and with 4
  concurrent streams, against `transformers` `generate` on the fully loaded model in this
  process while the node mines (one torch thread, as the node runs after its first seal check;
  4 streams = 4 threads), API and bare rounds alternated so the host's load drift hits both;
- selective loading: bytes and experts read from the blob store per generated token, with the
  default expert cache (every expert kept) and a bounded one, against loading the whole model;
- eth_blockNumber latency p50/p99 with no chat and during 4 streaming chats.

Usage: ETH_HASH_BACKEND=pysha3 nice .venv/bin/python bench/inference.py [--tokens N] [--requests N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import torch
from poai.chain.config import load_genesis_config
from poai.inference.engine import InferenceEngine, SnapshotRef
from poai.inference.sampling import SamplingParams
from poai.model.genesis import VALIDATION_TEXT
from poai.model.snapshot import load_model
from poai.model.store import BlobStore
from poai.model.tokenizer import BOS_ID, PAD_ID


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rpc(port: int, method: str) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": []}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())["result"]


def prompts(n: int, offset: int) -> list[str]:
    text = VALIDATION_TEXT.read_text(errors="replace")
    return [text[(offset + i) * 97 % (len(text) - 80):][:60] for i in range(n)]


def stream_chat(port: int, prompt: str, tokens: int) -> dict[str, float]:
    """One streamed greedy chat: TTFT and decode rate as the client sees them."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    body = {"model": "poai", "messages": [{"role": "user", "content": prompt}],
            "max_tokens": tokens, "temperature": 0, "stream": True}
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", json.dumps(body),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    first = last = None
    completion = 0
    for raw in resp:
        line = raw.strip()
        if not line.startswith(b"data: ") or line == b"data: [DONE]":
            continue
        chunk = json.loads(line[6:])
        if chunk.get("usage"):
            completion = chunk["usage"]["completion_tokens"]
        if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
            last = time.perf_counter()
            first = first or last
    conn.close()
    assert first is not None and last is not None
    return {"ttft": first - t0, "tokens": completion, "decode_s": last - first,
            "total_s": last - t0}


def bare_generate(model: Any, prompt: str, tokens: int) -> dict[str, float]:
    chat = f"<|user|>\n{prompt}\n<|assistant|>\n".encode()
    ids = torch.tensor([[BOS_ID, *chat]])
    kw: dict[str, Any] = {"do_sample": False, "use_cache": True, "pad_token_id": PAD_ID,
                          "eos_token_id": None}
    with torch.inference_mode():
        t0 = time.perf_counter()
        model.generate(ids, max_new_tokens=1, min_new_tokens=1, **kw)
        ttft = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.generate(ids, max_new_tokens=tokens, min_new_tokens=tokens, **kw)
        total = time.perf_counter() - t0
    return {"ttft": ttft, "tokens": tokens, "decode_s": max(1e-9, total - ttft), "total_s": total}


def run_round(fn: Any, streams: int, offset: int) -> tuple[list[dict[str, float]], float]:
    """``streams`` requests at once (one per thread); their results and the wall time."""
    results: list[dict[str, float]] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        r = fn(prompts(1, offset + 100 * k)[0])
        with lock:
            results.append(r)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(k,)) for k in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results, time.perf_counter() - t0


def summary(streams: int, results: list[dict[str, float]], wall: float) -> dict[str, float]:
    ttfts = sorted(r["ttft"] for r in results)
    per_stream = [(r["tokens"] - 1) / r["decode_s"] for r in results if r["tokens"] > 1]
    return {"streams": streams, "requests": len(results),
            "tokens_per_s_total": round(sum(r["tokens"] for r in results) / wall, 1),
            "decode_tokens_per_s_per_stream": round(statistics.median(per_stream), 1),
            "ttft_ms_p50": round(1000 * statistics.median(ttfts), 1),
            "ttft_ms_max": round(1000 * ttfts[-1], 1)}


def ab(api: Any, bare: Any, streams: int, rounds: int, offset: int
       ) -> tuple[dict[str, float], dict[str, float]]:
    """API and bare rounds alternated (A B A B ...), so the host's load drift hits both."""
    got: dict[str, tuple[list[dict[str, float]], list[float]]] = {
        "api": ([], []), "bare": ([], [])}
    for i in range(rounds):
        for name, fn in (("api", api), ("bare", bare)):
            results, wall = run_round(fn, streams, offset + i)
            got[name][0].extend(results)
            got[name][1].append(wall)
    return (summary(streams, got["api"][0], sum(got["api"][1])),
            summary(streams, got["bare"][0], sum(got["bare"][1])))


def run_streams(fn: Any, streams: int, rounds: int, offset: int) -> dict[str, float]:
    results: list[dict[str, float]] = []
    wall = 0.0
    for i in range(rounds):
        r, w = run_round(fn, streams, offset + i)
        results.extend(r)
        wall += w
    return summary(streams, results, wall)


def latency(port: int, calls: int) -> dict[str, float]:
    samples = []
    for _ in range(calls):
        t0 = time.perf_counter()
        rpc(port, "eth_blockNumber")
        samples.append(1000 * (time.perf_counter() - t0))
        time.sleep(0.01)
    samples.sort()
    return {"calls": calls, "p50_ms": round(samples[len(samples) // 2], 2),
            "p99_ms": round(samples[min(len(samples) - 1, int(len(samples) * 0.99))], 2)}


def selective(tokens: int, cache: int | None) -> dict[str, Any]:
    config = load_genesis_config(None)
    engine = InferenceEngine(lambda: SnapshotRef(config.model_manifest, str(config.model_dir)),
                             expert_cache=cache)
    snap = engine.active()
    start_bytes = snap.selective.bytes_loaded
    generated = 0
    for i, p in enumerate(prompts(4, 500)):
        g = engine.start(p.encode(), SamplingParams(max_tokens=tokens, temperature=0.8, seed=i))
        g.text()
        generated += g.completion_tokens
    st = snap.cache_stats()
    return {"expert_cache": cache or "all", "generated_tokens": generated,
            "expert_bytes_per_token": round((st["bytesLoaded"] - start_bytes) / generated),
            "experts_loaded_per_token": round(st["misses"] / generated, 3),
            "hits": st["hits"], "misses": st["misses"], "bytes_loaded_total": st["bytesLoaded"],
            "whole_model_bytes": st["bytesTotal"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=64, help="tokens per request")
    ap.add_argument("--requests", type=int, default=3, help="rounds of each kind")
    ap.add_argument("--latency-calls", type=int, default=200)
    args = ap.parse_args()
    torch.set_num_threads(1)  # the node's process runs one thread (the quiz setting)

    out: dict[str, Any] = {"tokens_per_request": args.tokens,
                           "requests_per_stream": args.requests}
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = open(Path(tmp) / "node.log", "w")  # noqa: SIM115
        node = subprocess.Popen(
            [sys.executable, "-m", "poai.cli", "node", "--dev", "--mine", "--datadir",
             str(Path(tmp) / "dd"), "--rpc-port", str(port), "--p2p-port", "0"],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    rpc(port, "eth_chainId")
                    break
                except OSError:
                    assert node.poll() is None and time.monotonic() < deadline, "node failed"
                    time.sleep(0.5)
            stream_chat(port, "warm up", 4)  # the API loads the trunk
            out["eth_blockNumber_idle"] = latency(port, args.latency_calls)
            config = load_genesis_config(None)
            model = load_model(BlobStore(config.model_dir), config.model_manifest)
            bare_generate(model, "warm up", 4)
            api: dict[str, Any] = {}
            bare: dict[str, Any] = {}
            for streams in (1, 4):
                api[f"{streams}_streams"], bare[f"{streams}_streams"] = ab(
                    lambda p: stream_chat(port, p, args.tokens),
                    lambda p: bare_generate(model, p, args.tokens), streams, args.requests,
                    offset=streams)
            out["api"], out["bare_transformers"] = api, bare
            # eth_blockNumber while 4 chats stream (the load runs in threads meanwhile).
            busy: dict[str, Any] = {}
            load = threading.Thread(target=lambda: busy.update(run_streams(
                lambda p: stream_chat(port, p, args.tokens), 4, args.requests, offset=9)))
            load.start()
            time.sleep(1.0)
            out["eth_blockNumber_4_chats"] = latency(port, args.latency_calls // 2)
            load.join()
            out["head_block"] = int(rpc(port, "eth_blockNumber"), 16)
        finally:
            node.send_signal(signal.SIGTERM)
            try:
                node.wait(60)
            except subprocess.TimeoutExpired:
                node.kill()
            log.close()

    bare = out["bare_transformers"]
    out["api_over_bare_decode"] = {
        k: round(out["api"][k]["decode_tokens_per_s_per_stream"]
                 / bare[k]["decode_tokens_per_s_per_stream"], 2) for k in bare}
    out["api_over_bare_total"] = {
        k: round(out["api"][k]["tokens_per_s_total"] / bare[k]["tokens_per_s_total"], 2)
        for k in bare}
    out["selective_loading"] = [selective(args.tokens, None), selective(args.tokens, 8)]
    print(json.dumps(out))


if __name__ == "__main__":
    main()
