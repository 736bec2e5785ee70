"""The inference API's limits and the ``poai node`` flags that set them (no heavy imports: the
CLI builds its parser from this module)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

DEFAULT_EXPERT_CACHE = 64  # (layer, expert) slots kept loaded; the genesis model has 32


@dataclass(frozen=True)
class ApiLimits:
    max_prompt_tokens: int = 384
    max_tokens: int = 256  # per request (and the default when a request names none)
    max_concurrent: int = 4


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return value


def add_api_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("inference API (OpenAI-compatible, /v1/...)")
    g.add_argument("--no-api", action="store_true", help="do not serve the inference API")
    g.add_argument("--api-addr", default="127.0.0.1", help="API listen address (with --api-port)")
    g.add_argument("--api-port", type=int, default=None, metavar="PORT",
                   help="serve the API on its own port (default: on the RPC port)")
    g.add_argument("--api-max-prompt", type=_positive, default=ApiLimits.max_prompt_tokens,
                   metavar="N", help="longest prompt in tokens (bytes + 1); longer: 400")
    g.add_argument("--api-max-tokens", type=_positive, default=ApiLimits.max_tokens,
                   metavar="N", help="largest max_tokens per request (and the default)")
    g.add_argument("--api-max-concurrent", type=_positive, default=ApiLimits.max_concurrent,
                   metavar="N", help="requests decoding at once; one more gets 429")
    g.add_argument("--api-expert-cache", type=_positive, default=DEFAULT_EXPERT_CACHE,
                   metavar="N", help="experts kept loaded (LRU over layer x expert slots)")


