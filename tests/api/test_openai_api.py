"""The OpenAI-compatible API of a real node process, through the official `openai` client
(unmodified) and raw HTTP for the bad-input cases."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import openai
import pytest
from support.nodeproc import NodeProcess, fast_genesis, free_port

pytestmark = pytest.mark.integration

API_FLAGS = ("--p2p-port", "0", "--api-max-concurrent", "1", "--api-max-prompt", "200",
             "--api-max-tokens", "400")
CHAT = [{"role": "user", "content": "Write a docstring."}]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    base = tmp_path_factory.mktemp("api")
    proc = NodeProcess(base / "datadir", fast_genesis(base / "genesis.json"), mine=False,
                       extra_args=API_FLAGS)
    proc.genesis = base / "genesis.json"  # type: ignore[attr-defined]
    proc.datadir = base / "datadir"  # type: ignore[attr-defined]
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def client(node: NodeProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=node.url + "/v1", api_key="unused", max_retries=0,
                         timeout=120)


def _post(node: NodeProcess, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(node.url + path, data=body,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _assert_error(status: int, body: dict[str, Any], want_status: int,
                  param: str | None = None) -> None:
    assert status == want_status, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}
    assert err["message"]
    if param is not None:
        assert err["param"] == param


def test_list_models(client: openai.OpenAI, node: NodeProcess) -> None:
    models = client.models.list().data
    ids = [m.id for m in models]
    manifest = node.call("poai_modelManifest")["manifest"]
    assert ids == ["poai", manifest]
    assert models[0].model_extra["manifest"] == manifest


def test_chat_completion_reproducible_with_seed(client: openai.OpenAI) -> None:
    a = client.chat.completions.create(model="poai", messages=CHAT, max_tokens=24, seed=11,
                                       temperature=0.8)
    b = client.chat.completions.create(model="poai", messages=CHAT, max_tokens=24, seed=11,
                                       temperature=0.8)
    assert a.choices[0].message.role == "assistant"
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.choices[0].finish_reason in ("stop", "length")
    assert a.usage is not None and a.usage.prompt_tokens > 0
    assert a.usage.total_tokens == a.usage.prompt_tokens + a.usage.completion_tokens
    assert 1 <= a.usage.completion_tokens <= 24


def test_streamed_equals_unstreamed(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="poai", messages=CHAT, max_tokens=30, seed=5)
    chunks = list(client.chat.completions.create(
        model="poai", messages=CHAT, max_tokens=30, seed=5, stream=True,
        stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore


def test_completions_endpoint(client: openai.OpenAI) -> None:
    out = client.completions.create(model="poai", prompt="def main():\n", max_tokens=8,
                                    temperature=0, seed=0)
    again = client.completions.create(model="poai", prompt="def main():\n", max_tokens=8,
                                      temperature=0, seed=99)
    assert out.choices[0].text == again.choices[0].text  # greedy ignores the seed
    assert out.usage is not None and out.usage.completion_tokens <= 8


def test_api_answer_passes_inference_check_by_eth_call(client: openai.OpenAI,
                                                       node: NodeProcess) -> None:
    """A seeded-sampling completion is the answer a market worker commits: the node's own
    INFERENCE_CHECK precompile (eth_call to 0x…0f00) holds it; forged ones and malformed input
    are refused."""
    from poai.consensus import inference_check as ic

    prompt = "The chain "
    out = client.completions.create(model="poai", prompt=prompt, max_tokens=12,
                                    temperature=0.8, top_p=0.95, seed=2024)
    choice = out.choices[0]
    tokens = list(choice.text.encode("utf-8")) + ([ic.EOS_ID] if choice.finish_reason == "stop"
                                                  else [])
    per_slot = out.model_extra["poai"]["expertTokens"]  # type: ignore[index]
    ids = [1 + layer * len(row) + e for layer, row in enumerate(per_slot)
           for e, c in enumerate(row) if c]
    counts = [c for row in per_slot for c in row if c]
    claim = ic.JobClaim(1, prompt.encode(), ic.Decoding(12, 800, 950_000, 2024), tuple(tokens),
                        tuple(ids), tuple(counts))

    def eth_call(data: bytes) -> ic.Verdict:
        to = "0x" + ic.INFERENCE_CHECK_ADDRESS.hex()
        raw = node.call("eth_call", {"to": to, "data": "0x" + data.hex()}, "latest")
        return ic.decode_verdict(bytes.fromhex(raw[2:]))

    assert eth_call(ic.encode_call(claim)) == ic.Verdict(ic.Fault.NONE, -1, claim.expert_ids,
                                                         claim.counts)
    forged = tuple(min(range(256), key=lambda t: abs(t - 0x7F)) if i == 1 else t
                   for i, t in enumerate(tokens))
    if forged != tuple(tokens):
        assert eth_call(ic.encode_call(replace(claim, output=forged))).fault != ic.Fault.NONE
    inflated = (claim.counts[0] + 5, *claim.counts[1:])
    assert eth_call(ic.encode_call(replace(claim, counts=inflated))).fault == ic.Fault.WRONG_COUNT
    with pytest.raises(RuntimeError, match="INFERENCE_CHECK: input is not abi.encode"):
        eth_call(b"\x01\x02\x03")
    gas = node.call("eth_estimateGas", {"to": "0x" + ic.INFERENCE_CHECK_ADDRESS.hex(),
                                        "data": "0x" + ic.encode_call(claim).hex()})
    assert int(gas, 16) >= ic.gas_for(claim)

def test_client_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as nf:
        client.chat.completions.create(model="gpt-4", messages=CHAT)
    assert nf.value.code == "model_not_found"
    for kwargs in ({"max_tokens": -1}, {"max_tokens": 10**9}, {"temperature": 3.0},
                   {"top_p": 0}):
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(model="poai", messages=CHAT, **kwargs)
    with pytest.raises(openai.BadRequestError) as empty:
        client.chat.completions.create(model="poai", messages=[])
    assert empty.value.param == "messages"  # type: ignore[attr-defined]


@pytest.mark.parametrize("body, param", [
    (b'{"model": "poai", "messages": [', None),  # malformed JSON
    (b'[1, 2]', None),
    (b'{"model": "poai", "messages": [{"role": "user", "content": "\xff\xfe"}]}', None),
    (b'{"model": "poai", "messages": [{"role": "wizard", "content": "x"}]}', "messages"),
    (b'{"model": "poai", "messages": [{"role": "user", "content": 5}]}', "messages"),
    (b'{"model": "poai", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}',
     "max_tokens"),
    (b'{"model": "poai", "messages": [{"role": "user", "content": "x"}], "temperature": -1}',
     "temperature"),
    (b'{"model": "poai", "messages": [{"role": "user", "content": "x"}], "n": 2}', "n"),
    (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
])
def test_bad_requests(node: NodeProcess, body: bytes, param: str | None) -> None:
    status, reply = _post(node, "/v1/chat/completions", body)
    _assert_error(status, reply, 400, param)


def test_unknown_model_and_prompt_over_limit(node: NodeProcess) -> None:
    status, reply = _post(node, "/v1/completions", json.dumps(
        {"model": "nope", "prompt": "x"}).encode())
    _assert_error(status, reply, 404, "model")
    status, reply = _post(node, "/v1/completions", json.dumps(
        {"model": "poai", "prompt": "x" * 500}).encode())
    _assert_error(status, reply, 400)
    assert reply["error"]["code"] == "context_length_exceeded"
    assert node.call("eth_blockNumber")  # the node keeps serving


def _open_stream(node: NodeProcess, max_tokens: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=60)
    conn.request("POST", "/v1/chat/completions", json.dumps(
        {"model": "poai", "messages": CHAT, "max_tokens": max_tokens, "stream": True,
         "temperature": 1.0, "seed": 1}), {"Content-Type": "application/json"})
    return conn


def test_concurrency_limit_and_disconnect_frees_slot(node: NodeProcess) -> None:
    before = node.call("poai_expertStats")["requests"]
    conn = _open_stream(node, 400)
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.readline().startswith(b"data: ")  # decoding has begun
    # The one slot is taken: a second request is refused with 429 in OpenAI's shape.
    status, reply = _post(node, "/v1/chat/completions", json.dumps(
        {"model": "poai", "messages": CHAT, "max_tokens": 1}).encode())
    _assert_error(status, reply, 429)
    conn.sock.close()  # type: ignore[union-attr]  # the client goes away mid-stream
    conn.close()
    deadline = time.monotonic() + 60
    while True:
        status, reply = _post(node, "/v1/chat/completions", json.dumps(
            {"model": "poai", "messages": CHAT, "max_tokens": 1}).encode())
        if status == 200:
            break
        assert status == 429 and time.monotonic() < deadline, reply
        time.sleep(0.1)
    # The abandoned generation was stopped, not finished: only the 1-token request counted.
    assert node.call("poai_expertStats")["requests"] == before + 1


def test_cli_ask_and_chat(node: NodeProcess) -> None:
    api = node.url + "/v1"
    cmd = [sys.executable, "-m", "poai.cli"]
    out = subprocess.run([*cmd, "ask", "--api", api, "--json", "--max-tokens", "6",
                          "--seed", "2", "hello"], capture_output=True, text=True,
                         timeout=120, check=True)
    reply = json.loads(out.stdout)
    assert reply["object"] == "chat.completion" and reply["usage"]["completion_tokens"] <= 6
    streamed = subprocess.run([*cmd, "ask", "--api", api, "--max-tokens", "6", "--seed", "2",
                               "hello"], capture_output=True, text=True, timeout=120,
                              check=True)
    assert streamed.stdout == reply["choices"][0]["message"]["content"] + "\n"
    served = node.call("poai_expertStats")["requests"]
    chat = subprocess.run([*cmd, "chat", "--api", api, "--max-tokens", "4"],
                          input="hi\nhow are you\n/exit\nnever sent\n", capture_output=True,
                          text=True, timeout=120, check=True)
    assert chat.stdout.endswith("\n")
    assert node.call("poai_expertStats")["requests"] == served + 2  # nothing after /exit
    bad = subprocess.run([*cmd, "ask", "--api", "http://127.0.0.1:1/v1", "x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.startswith("poai: error: cannot reach the API")
    assert bad.stderr.count("\n") == 1
    bad = subprocess.run([*cmd, "ask", "--api", api, "--max-tokens", "0", "x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "max_tokens" in bad.stderr


def test_expert_stats_rpc_and_persistence(node: NodeProcess) -> None:
    status, _ = _post(node, "/v1/chat/completions", json.dumps(
        {"model": "poai", "messages": CHAT, "max_tokens": 3}).encode())
    assert status == 200
    stats = node.call("poai_expertStats")
    spec = node.call("poai_modelManifest")
    assert stats["manifest"] == spec["manifest"]
    experts = stats["experts"]
    assert len(experts) == 32
    assert {"id", "name", "layer", "contributor", "routedTokens", "requests",
            "lastUsed"} <= set(experts[0])
    assert sum(e["routedTokens"] for e in experts) > 0
    assert all(e["contributor"].startswith("0x") for e in experts)  # from ModelRegistry
    assert stats["expertCache"]["misses"] > 0
    top = node.call("poai_topExperts", 3)
    assert len(top) == 3
    assert top[0]["routedTokens"] == max(e["routedTokens"] for e in experts)
    with pytest.raises(RuntimeError, match="n must be"):
        node.call("poai_topExperts", 0)
    # Restart on the same data dir: the counts are still there.
    node.stop()
    again = NodeProcess(node.datadir, node.genesis, mine=False,  # type: ignore[attr-defined]
                        extra_args=API_FLAGS)
    try:
        after = again.call("poai_expertStats")
        assert [e["routedTokens"] for e in after["experts"]] == \
            [e["routedTokens"] for e in experts]
        assert after["requests"] == stats["requests"]
    finally:
        again.stop()


def test_missing_or_corrupt_blob_while_mining(tmp_path: Path) -> None:
    """A blob of the model broken on disk: the request fails with a clear error, the node keeps
    serving and mining, and the API works again once the blob is restored."""
    genesis = fast_genesis(tmp_path / "genesis.json")
    data = json.loads(genesis.read_text())
    model_dir = tmp_path / "model"
    shutil.copytree(data["modelDir"], model_dir)
    data["modelDir"] = str(model_dir)
    genesis.write_text(json.dumps(data))
    manifest = json.loads((model_dir / data["modelManifest"]).read_text())
    node = NodeProcess(tmp_path / "datadir", genesis, mine=True,
                       extra_args=("--p2p-port", "0", "--api-expert-cache", "2"))
    try:
        node.wait_block(1, timeout=300)  # the miner loaded the model
        victims = [model_dir / h for row in manifest["experts"] for h in row]
        saved = {p: p.read_bytes() for p in victims}
        for p in victims[: len(victims) // 2]:
            p.unlink()
        for p in victims[len(victims) // 2:]:
            p.write_bytes(saved[p][:-1] + bytes([saved[p][-1] ^ 1]))
        body = json.dumps({"model": "poai", "messages": CHAT, "max_tokens": 4}).encode()
        status, reply = _post(node, "/v1/chat/completions", body)
        _assert_error(status, reply, 503)
        assert "blob" in reply["error"]["message"]
        assert reply["error"]["code"] == "model_unavailable"
        client = openai.OpenAI(base_url=node.url + "/v1", api_key="unused", max_retries=0)
        with pytest.raises(openai.APIError, match="blob"):  # streamed: an SSE error event
            list(client.chat.completions.create(model="poai", messages=CHAT, max_tokens=4,
                                                stream=True))
        height = int(node.call("eth_blockNumber"), 16)
        node.wait_block(height + 1, timeout=120)  # still mining
        for p, raw in saved.items():
            p.write_bytes(raw)
        status, reply = _post(node, "/v1/chat/completions", body)
        assert status == 200, reply
    finally:
        node.stop()


def test_chain_on_imported_checkpoint(tmp_path: Path) -> None:
    """`poai model import` + a genesis config naming the store and manifest: a chain starts on
    the imported model and the API serves it (here on its own --api-port)."""
    from transformers import MixtralConfig, MixtralForCausalLM

    cfg = MixtralConfig(vocab_size=300, hidden_size=32, intermediate_size=24,
                        num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                        num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=128,
                        sliding_window=None)
    MixtralForCausalLM(cfg).save_pretrained(tmp_path / "hf")
    res = subprocess.run([sys.executable, "-m", "poai.cli", "model", "import",
                          str(tmp_path / "hf"), "--store", str(tmp_path / "blobs")],
                         capture_output=True, text=True, timeout=300, check=True)
    manifest = json.loads(res.stdout)["manifest"]
    genesis = fast_genesis(tmp_path / "genesis.json")
    data = json.loads(genesis.read_text())
    data.update(modelDir=str(tmp_path / "blobs"), modelManifest=manifest,
                genesisContracts=None)
    genesis.write_text(json.dumps(data))
    api_port = free_port()
    node = NodeProcess(tmp_path / "datadir", genesis, mine=False,
                       extra_args=("--p2p-port", "0", "--api-port", str(api_port)))
    try:
        deadline = time.monotonic() + 120  # RPC answers before the API's own port is bound
        while f"OpenAI API on http://127.0.0.1:{api_port}/v1" not in node.text():
            assert time.monotonic() < deadline, node.text()[-2000:]
            time.sleep(0.3)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{api_port}/v1", api_key="unused",
                               max_retries=0)
        assert [m.id for m in client.models.list().data] == ["poai", manifest]
        reply = client.chat.completions.create(model=manifest, messages=CHAT, max_tokens=5,
                                               seed=1)
        assert reply.usage is not None and reply.usage.completion_tokens >= 1
        assert len(node.call("poai_expertStats")["experts"]) == 8  # 2 layers x 4 experts
    finally:
        node.stop()


def test_api_port_in_use_one_line_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        res = subprocess.run(
            [sys.executable, "-m", "poai.cli", "node", "--datadir", str(tmp_path / "dd"),
             "--genesis", str(fast_genesis(tmp_path / "genesis.json")), "--rpc-port",
             str(free_port()), "--p2p-port", "0", "--api-port", str(port)],
            capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert res.stderr.startswith(f"poai: error: cannot listen on 127.0.0.1:{port}")
    assert res.stderr.count("\n") == 1
