"""``poai chat`` and ``poai ask``: talk to a running node's OpenAI-compatible API."""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

DEFAULT_API = "http://127.0.0.1:8545/v1"
EXIT_ERROR = 2


class ApiClientError(Exception):
    """One line for the user: the node is unreachable or answered with an error."""


def _post(api: str, path: str, body: dict[str, Any], timeout: float) -> Any:
    req = urllib.request.Request(api.rstrip("/") + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        return urllib.request.urlopen(req, timeout=timeout)  # noqa: S310 - a user-given URL
    except urllib.error.HTTPError as exc:
        raise ApiClientError(_error_text(exc.read(), exc.code)) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ApiClientError(f"cannot reach the API at {api}: "
                             f"{getattr(exc, 'reason', exc)}") from None


def _error_text(raw: bytes, status: int) -> str:
    try:
        err = json.loads(raw)["error"]
        return f"{err['message']} (HTTP {status}, {err.get('code') or err.get('type')})"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}: {raw[:200]!r}"


def stream_chat(api: str, body: dict[str, Any], timeout: float) -> Iterator[dict[str, Any]]:
    """The chunks of a streamed chat completion (server-sent events)."""
    with _post(api, "/chat/completions", {**body, "stream": True}, timeout) as resp:
        for raw in resp:
            line = raw.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                return
            chunk = json.loads(data)
            if "error" in chunk:
                raise ApiClientError(chunk["error"].get("message", "generation failed"))
            yield chunk


def _body(args: argparse.Namespace, messages: list[dict[str, str]]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": args.model, "messages": messages}
    for name in ("max_tokens", "temperature", "top_p", "seed"):
        value = getattr(args, name)
        if value is not None:
            body[name] = value
    return body


def _reply(args: argparse.Namespace, messages: list[dict[str, str]]) -> str:
    parts = []
    for chunk in stream_chat(args.api, _body(args, messages), args.timeout):
        for choice in chunk.get("choices", []):
            text = (choice.get("delta") or {}).get("content") or ""
            if text:
                parts.append(text)
                sys.stdout.write(text)
                sys.stdout.flush()
    sys.stdout.write("\n")
    return "".join(parts)


def _start_messages(args: argparse.Namespace) -> list[dict[str, str]]:
    return [{"role": "system", "content": args.system}] if args.system else []


def cmd_ask(args: argparse.Namespace) -> int:
    messages = [*_start_messages(args), {"role": "user", "content": args.prompt}]
    try:
        if args.json:
            with _post(args.api, "/chat/completions", _body(args, messages),
                       args.timeout) as resp:
                print(json.dumps(json.loads(resp.read())))
        else:
            _reply(args, messages)
    except ApiClientError as exc:
        print(f"poai: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    messages = _start_messages(args)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"chatting with {args.model} at {args.api} (/exit to leave)", file=sys.stderr)
    while True:
        try:
            line = input("you> " if interactive else "")
        except EOFError:
            return 0
        except KeyboardInterrupt:
            print(file=sys.stderr)
            return 0
        text = line.strip()
        if text in ("/exit", "/quit"):
            return 0
        if not text:
            continue
        messages.append({"role": "user", "content": text})
        try:
            answer = _reply(args, messages)
        except ApiClientError as exc:
            print(f"poai: error: {exc}", file=sys.stderr)
            messages.pop()
            if not interactive:
                return EXIT_ERROR
            continue
        except KeyboardInterrupt:
            print(file=sys.stderr)
            messages.pop()
            continue
        messages.append({"role": "assistant", "content": answer})


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", default=DEFAULT_API, help=f"API base URL (default {DEFAULT_API})")
    p.add_argument("--model", default="poai", help="model name (default: poai, the active "
                   "snapshot; or a manifest hash)")
    p.add_argument("--system", help="a system message first")
    p.add_argument("--max-tokens", dest="max_tokens", type=int, help="longest reply in tokens")
    p.add_argument("--temperature", type=float, help="0 for greedy (default 1)")
    p.add_argument("--top-p", dest="top_p", type=float, help="nucleus sampling mass (default 1)")
    p.add_argument("--seed", type=int, help="sampling seed: the same seed gives the same reply")
    p.add_argument("--timeout", type=float, default=300, help="seconds per request")


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ask", help="ask a running node's model one question (streams the answer)")
    p.add_argument("prompt", help="the question")
    p.add_argument("--json", action="store_true", help="print the whole response as JSON")
    _common(p)
    p.set_defaults(func=cmd_ask)
    p = sub.add_parser("chat", help="chat with a running node's model (/exit to leave)")
    _common(p)
    p.set_defaults(func=cmd_chat)
