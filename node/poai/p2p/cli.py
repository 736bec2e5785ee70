"""The P2P part of the `poai` command: `poai node` flags and `poai devnet` (wired in poai.cli)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from poai.interfaces import Network, NetworkFactory

log = logging.getLogger(__name__)

DEFAULT_P2P_PORT = 30303


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return value


def _multiaddr(text: str) -> str:
    if "/p2p/" not in text or not text.startswith("/"):
        raise argparse.ArgumentTypeError(
            f"not a peer multiaddr like /ip4/127.0.0.1/tcp/30303/p2p/<peer id>: {text!r}")
    return text


def add_p2p_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("p2p")
    g.add_argument("--p2p-port", type=_port, default=None,
                   help=f"libp2p TCP port on --p2p-addr (default {DEFAULT_P2P_PORT}, 0 = free; "
                        "with --dev, P2P runs only when this, --peer or --mdns is given)")
    g.add_argument("--p2p-addr", default="127.0.0.1", help="libp2p listen address")
    g.add_argument("--peer", action="append", type=_multiaddr, default=[], metavar="MULTIADDR",
                   help="static peer, redialled when lost (repeatable)")
    g.add_argument("--mdns", action="store_true", help="discover peers on the LAN by mDNS")
    g.add_argument("--no-p2p", action="store_true", help="run without networking")


def p2p_network(args: argparse.Namespace) -> NetworkFactory | None:
    """What builds the node's P2P service from the `poai node` flags (None with --no-p2p, and
    with --dev unless --p2p-port, --peer or --mdns asks for networking, as anvil and
    `hardhat node` run alone); the Node starts and stops it with itself."""
    if not p2p_enabled(args):
        return None
    # deferred: libp2p and trio load only when networking runs
    from poai.p2p.host import HostConfig
    from poai.p2p.service import P2PService

    cfg = HostConfig(datadir=Path(args.datadir), listen_host=args.p2p_addr, port=p2p_port(args),
                     static_peers=list(args.peer), mdns=args.mdns)

    return lambda node: P2PService(node, cfg)


def p2p_enabled(args: argparse.Namespace) -> bool:
    if args.no_p2p:
        return False
    asked = args.p2p_port is not None or bool(args.peer) or args.mdns
    return asked or not getattr(args, "dev", False)


def p2p_port(args: argparse.Namespace) -> int:
    return DEFAULT_P2P_PORT if args.p2p_port is None else int(args.p2p_port)


def print_listen_addrs(network: Network | None) -> None:
    """The addresses peers dial (tools such as bench/sync.py read these lines)."""
    for addr in network.listen_addrs() if network is not None else []:
        print(f"P2P listening on {addr}", flush=True)


def add_devnet_command(sub: Any) -> None:
    p = sub.add_parser("devnet", help="run N nodes on loopback (own processes and data dirs)")
    p.add_argument("--nodes", type=int, default=3, help="number of nodes (default 3)")
    p.add_argument("--miners", type=int, default=2, help="how many of them mine (default 2)")
    p.add_argument("--base-dir", default=str(Path.home() / ".poai" / "devnet-multi"),
                   help="parent of the nodes' data dirs")
    p.add_argument("--rpc-port", type=_port, default=8545, help="RPC port of node 0 (+i)")
    p.add_argument("--p2p-port", type=_port, default=DEFAULT_P2P_PORT,
                   help="P2P port of node 0 (+i)")
    p.add_argument("--genesis", help="genesis config (default: the bundled devnet)")
    p.set_defaults(func=cmd_devnet)


def cmd_devnet(args: argparse.Namespace) -> int:
    # deferred: libp2p loads only for this command
    from poai.p2p.devnet import run_devnet

    node_args = ["--dev"] + (["--genesis", args.genesis] if args.genesis else [])
    return run_devnet(args.nodes, args.miners, Path(args.base_dir), args.rpc_port,
                      args.p2p_port, node_args)
