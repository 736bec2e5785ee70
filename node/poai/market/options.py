"""The ``poai node`` flags of the market services (no heavy imports: the CLI builds its parser
from this module)."""

from __future__ import annotations

import argparse
from pathlib import Path


def parse_key(text: str) -> bytes:
    """A 32-byte private key: hex, or the path of a file holding it."""
    body = text
    path = Path(text)
    if path.is_file():
        try:
            body = path.read_text().strip()
        except OSError as exc:
            raise argparse.ArgumentTypeError(f"cannot read key file {text}: {exc}") from None
    try:
        key = bytes.fromhex(body.removeprefix("0x"))
    except ValueError:
        raise argparse.ArgumentTypeError("a key is 64 hex digits (or a file holding them)"
                                         ) from None
    if len(key) != 32:
        raise argparse.ArgumentTypeError(f"a key is 32 bytes, got {len(key)}")
    return key


def _wei(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"not an amount of wei: {text!r}")
    return value


def add_market_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("inference market (InferenceMarket jobs; see `poai market`)")
    g.add_argument("--market-worker", action="store_true",
                   help="serve market jobs: stake, claim, answer with the node's model, "
                        "commit, finalize, withdraw")
    g.add_argument("--market-challenger", action="store_true",
                   help="check every committed market result and challenge a fraud")
    g.add_argument("--market-worker-key", type=parse_key, metavar="KEY",
                   help="the worker's private key (hex or a file); default with --dev: dev "
                        "account 1")
    g.add_argument("--market-challenger-key", type=parse_key, metavar="KEY",
                   help="the challenger's private key (hex or a file); default with --dev: "
                        "dev account 2")
    g.add_argument("--market-min-fee", type=_wei, default=1, metavar="WEI",
                   help="the worker leaves jobs paying less to others (default 1 wei)")
