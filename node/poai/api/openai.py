"""OpenAI-compatible HTTP routes: GET /v1/models, POST /v1/chat/completions, POST /v1/completions.

Served by the node (on the JSON-RPC port, or its own ``--api-port``). Request shapes, the
``stream: true`` server-sent events and the error body ``{"error": {"message", "type", "param",
"code"}}`` follow OpenAI's API, so the official clients work unmodified. The model names are
``poai`` (whatever snapshot governance has active) and the active snapshot's manifest hash
(pins the weights: a request naming a snapshot no longer active gets 404).

Decoding runs in worker threads (``max_concurrent`` of them: one more request gets 429); the
event loop only parses requests and writes bytes, so JSON-RPC stays responsive meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from poai.api.options import ApiLimits
from poai.inference.chat import CHAT_STOP, ChatFormatError, chat_prompt
from poai.inference.engine import (
    Generation,
    InferenceEngine,
    InferenceError,
    LoadedSnapshot,
    ModelUnavailable,
    PromptTooLong,
)
from poai.inference.sampling import MAX_STOP_SEQUENCES, SamplingError, SamplingParams

log = logging.getLogger(__name__)

MODEL_ALIAS = "poai"
OWNER = "poai-governance"


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str = "invalid_request_error",
                 param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status, message, type_, param, code)

    def response(self) -> web.Response:
        return error_response(self.status, self.message, self.type, self.param, self.code)


def error_response(status: int, message: str, type_: str = "invalid_request_error",
                   param: str | None = None, code: str | None = None) -> web.Response:
    return web.json_response({"error": {"message": message, "type": type_, "param": param,
                                        "code": code}}, status=status)


def _bad(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def _number(body: dict[str, Any], name: str, default: float) -> float:
    v = body.get(name, default)
    if v is None:
        return default
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _bad(f"{name} must be a number", name)
    return float(v)


def _int(body: dict[str, Any], name: str) -> int | None:
    v = body.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise _bad(f"{name} must be an integer", name)
    return v


class OpenAIApi:
    """The routes and their limits (the engine's ``on_finished`` sees every served request)."""

    def __init__(self, engine: InferenceEngine, limits: ApiLimits | None = None) -> None:
        self.engine = engine
        self.limits = limits = limits or ApiLimits()
        self._executor = ThreadPoolExecutor(max_workers=limits.max_concurrent,
                                            thread_name_prefix="inference")
        # Resolving and loading the snapshot never waits behind running generations.
        self._control = ThreadPoolExecutor(max_workers=2, thread_name_prefix="inference-ctl")
        self._slots = 0
        self._slots_lock = threading.Lock()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("GET", "/v1/models", self.models)
        app.router.add_route("GET", "/v1/models/{model}", self.model)
        app.router.add_route("POST", "/v1/chat/completions", self.chat_completions)
        app.router.add_route("POST", "/v1/completions", self.completions)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._control.shutdown(wait=False, cancel_futures=True)

    @property
    def active_requests(self) -> int:
        with self._slots_lock:
            return self._slots

    # ----------------------------------------------------------- models
    async def _snapshot(self) -> LoadedSnapshot:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._control, self.engine.active)
        except ModelUnavailable as exc:
            raise ApiError(503, str(exc), "server_error", code="model_unavailable") from exc

    def _model_cards(self, snap: LoadedSnapshot) -> list[dict[str, Any]]:
        ref = snap.ref
        spec = snap.spec
        common = {"object": "model", "created": 0, "owned_by": OWNER,
                  "manifest": ref.manifest_hash, "epoch": ref.epoch,
                  "context_length": spec.max_position_embeddings,
                  "experts": {"layers": spec.num_hidden_layers,
                              "per_layer": spec.num_local_experts,
                              "per_token": spec.num_experts_per_tok}}
        return [{"id": MODEL_ALIAS, **common}, {"id": ref.manifest_hash, **common}]

    async def models(self, request: web.Request) -> web.Response:
        try:
            snap = await self._snapshot()
        except ApiError as err:
            return err.response()
        return web.json_response({"object": "list", "data": self._model_cards(snap)})

    async def model(self, request: web.Request) -> web.Response:
        try:
            snap = await self._snapshot()
        except ApiError as err:
            return err.response()
        for card in self._model_cards(snap):
            if card["id"] == request.match_info["model"]:
                return web.json_response(card)
        return error_response(404, f"The model '{request.match_info['model']}' does not exist",
                              param="model", code="model_not_found")

    # ----------------------------------------------------------- requests
    async def _body(self, request: web.Request) -> dict[str, Any]:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge as exc:
            raise ApiError(413, f"request body too large: {exc.text}") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _bad(f"request body is not valid UTF-8 (byte {exc.start})") from exc
        try:
            body = json.loads(text)
        except ValueError as exc:
            raise _bad(f"could not parse the JSON body of your request: {exc}") from exc
        if not isinstance(body, dict):
            raise _bad("the request body must be a JSON object")
        return body

    def _sampling(self, body: dict[str, Any], extra_stop: tuple[bytes, ...]) -> SamplingParams:
        n = _int(body, "n")
        if n is not None and n != 1:
            raise _bad("only n=1 is supported", "n")
        max_tokens = _int(body, "max_completion_tokens")
        param = "max_completion_tokens"
        if max_tokens is None:
            max_tokens, param = _int(body, "max_tokens"), "max_tokens"
        if max_tokens is None:
            max_tokens = self.limits.max_tokens
        if not 1 <= max_tokens <= self.limits.max_tokens:
            raise _bad(f"{param} must be in [1, {self.limits.max_tokens}], got {max_tokens}",
                       param, "invalid_value")
        stop = body.get("stop")
        if stop is None:
            stops: list[str] = []
        elif isinstance(stop, str):
            stops = [stop]
        elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
            stops = stop
        else:
            raise _bad("stop must be a string or an array of strings", "stop")
        if len(stops) > MAX_STOP_SEQUENCES:
            raise _bad(f"stop: at most {MAX_STOP_SEQUENCES} sequences", "stop")
        try:
            stop_bytes = tuple(s.encode("utf-8") for s in stops if s)
        except UnicodeEncodeError:
            raise _bad("stop: not valid Unicode", "stop") from None
        seed = _int(body, "seed")
        if seed is None:
            seed = secrets.randbits(63)
        try:
            return SamplingParams(max_tokens=max_tokens,
                                  temperature=_number(body, "temperature", 1.0),
                                  top_p=_number(body, "top_p", 1.0), seed=seed,
                                  stop=stop_bytes + extra_stop)
        except SamplingError as exc:
            raise _bad(str(exc), exc.param, "invalid_value") from exc

    def _check_model(self, body: dict[str, Any], snap: LoadedSnapshot) -> str:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _bad("you must provide a model parameter", "model")
        if model not in (MODEL_ALIAS, snap.ref.manifest_hash):
            raise ApiError(404, f"The model '{model}' does not exist (served: '{MODEL_ALIAS}' "
                                f"or '{snap.ref.manifest_hash}')", param="model",
                           code="model_not_found")
        return model

    def _acquire(self) -> None:
        with self._slots_lock:
            if self._slots >= self.limits.max_concurrent:
                raise ApiError(429, f"too many concurrent requests (limit "
                                    f"{self.limits.max_concurrent}); retry later",
                               "rate_limit_exceeded", code="rate_limit_exceeded")
            self._slots += 1

    def _release(self) -> None:
        with self._slots_lock:
            self._slots -= 1

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=False)

    async def _serve(self, request: web.Request, chat: bool) -> web.StreamResponse:
        try:
            body = await self._body(request)
            if chat:
                try:
                    prompt = chat_prompt(body.get("messages"))
                except ChatFormatError as exc:
                    raise _bad(str(exc), "messages") from exc
                extra: tuple[bytes, ...] = (CHAT_STOP,)
            else:
                prompt = _completion_prompt(body.get("prompt"))
                extra = ()
            params = self._sampling(body, extra)
            stream = body.get("stream", False)
            if not isinstance(stream, bool):
                raise _bad("stream must be a boolean", "stream")
            self._acquire()
        except ApiError as err:
            return err.response()
        handed_over = False
        try:
            g, model = await self._start(body, prompt, params)
            handed_over = True
            if stream:
                return await self._stream(request, g, model, chat, body)
            return await self._complete(g, model, chat)
        except ApiError as err:
            return err.response()
        finally:
            if not handed_over:
                self._release()

    async def _start(self, body: dict[str, Any], prompt: bytes, params: SamplingParams
                     ) -> tuple[Generation, str]:
        loop = asyncio.get_running_loop()
        snap = await self._snapshot()
        model = self._check_model(body, snap)
        try:
            g = await loop.run_in_executor(
                self._control, lambda: self.engine.start(
                    prompt, params, max_prompt=self.limits.max_prompt_tokens, snapshot=snap))
        except PromptTooLong as exc:
            raise _bad(str(exc), exc.param, "context_length_exceeded") from exc
        return g, model

    def _run(self, g: Generation, on_delta: Callable[[str], None] | None) -> str:
        """Decode in a worker thread; frees the request's slot when done (also on cancel)."""
        try:
            parts = []
            for delta in g:
                parts.append(delta)
                if on_delta is not None:
                    on_delta(delta)
            if g.finish_reason != "cancelled":
                self.engine.finished(g)
            return "".join(parts)
        finally:
            self._release()

    async def _complete(self, g: Generation, model: str, chat: bool) -> web.Response:
        loop = asyncio.get_running_loop()
        try:
            text = await loop.run_in_executor(self._executor, self._run, g, None)
        except InferenceError as exc:
            raise _server_error(exc) from exc
        choice: dict[str, Any] = {"index": 0, "finish_reason": g.finish_reason, "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": text, "refusal": None}
        else:
            choice["text"] = text
        return web.json_response({
            **_envelope(g, model, chat, stream=False), "choices": [choice], "usage": _usage(g),
            "poai": _poai_fields(g)})

    async def _stream(self, request: web.Request, g: Generation, model: str, chat: bool,
                      body: dict[str, Any]) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def put(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is closing: the node is shutting down
                g.cancel.set()

        def work() -> None:
            try:
                self._run(g, lambda d: put(("delta", d)))
                put(("done", None))
            except Exception as exc:  # noqa: BLE001 - reported to the client as an SSE error
                put(("error", exc))

        future = loop.run_in_executor(self._executor, work)
        envelope = _envelope(g, model, chat, stream=True)
        opts = body.get("stream_options")
        include_usage = isinstance(opts, dict) and opts.get("include_usage") is True
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-cache"})
        try:
            await resp.prepare(request)
            if chat:
                await _sse(resp, {**envelope, "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": ""},
                     "finish_reason": None, "logprobs": None}]})
            while True:
                kind, value = await queue.get()
                if kind == "delta":
                    delta = {"content": value} if chat else None
                    choice = ({"index": 0, "delta": delta, "finish_reason": None,
                               "logprobs": None} if chat else
                              {"index": 0, "text": value, "finish_reason": None,
                               "logprobs": None})
                    await _sse(resp, {**envelope, "choices": [choice]})
                elif kind == "error":
                    err = _server_error(value) if isinstance(value, InferenceError) else \
                        ApiError(500, f"internal error: {value}", "server_error")
                    await _sse(resp, {"error": {"message": err.message, "type": err.type,
                                                "param": err.param, "code": err.code}})
                    break
                else:
                    last = ({"index": 0, "delta": {}, "finish_reason": g.finish_reason,
                             "logprobs": None} if chat else
                            {"index": 0, "text": "", "finish_reason": g.finish_reason,
                             "logprobs": None})
                    await _sse(resp, {**envelope, "choices": [last], "usage": _usage(g),
                                      "poai": _poai_fields(g)})
                    if include_usage:
                        await _sse(resp, {**envelope, "choices": [], "usage": _usage(g)})
                    await resp.write(b"data: [DONE]\n\n")
                    break
        except ConnectionError:
            log.debug("client left mid-stream: generation cancelled")
        finally:
            g.cancel.set()  # no-op after a normal end; stops decoding after a disconnect
        del future  # it frees the slot itself when decoding stops
        return resp


def _completion_prompt(prompt: Any) -> bytes:
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise _bad("prompt must be a string (or an array of one string)", "prompt")
    if not prompt:
        raise _bad("prompt must not be empty", "prompt")
    try:
        return prompt.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad("prompt is not valid Unicode", "prompt") from None


def _server_error(exc: Exception) -> ApiError:
    if isinstance(exc, ModelUnavailable):
        return ApiError(503, str(exc), "server_error", code="model_unavailable")
    return ApiError(500, f"generation failed: {exc}", "server_error")


def _envelope(g: Generation, model: str, chat: bool, stream: bool) -> dict[str, Any]:
    obj = ("chat.completion.chunk" if stream else "chat.completion") if chat else \
        "text_completion"
    prefix = "chatcmpl-" if chat else "cmpl-"
    key = "_poai_id"
    ident = getattr(g, key, None)
    if ident is None:
        ident = prefix + secrets.token_hex(12)
        setattr(g, key, ident)
    return {"id": ident, "object": obj, "created": int(time.time()), "model": model,
            "system_fingerprint": "poai-" + g.manifest_hash[:16]}


def _usage(g: Generation) -> dict[str, int]:
    return {"prompt_tokens": g.prompt_tokens, "completion_tokens": g.completion_tokens,
            "total_tokens": g.prompt_tokens + g.completion_tokens}


def _poai_fields(g: Generation) -> dict[str, Any]:
    """Beyond OpenAI's schema: what pins the answer (snapshot, seed) and the experts it used."""
    return {"manifest": g.manifest_hash, "seed": g.params.seed,
            "expertTokens": g.expert_counts.tolist()}


async def _sse(resp: web.StreamResponse, obj: dict[str, Any]) -> None:
    await resp.write(b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n")
