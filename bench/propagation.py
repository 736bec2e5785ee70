"""Block propagation latency across three nodes on loopback (libp2p gossip, full verification).

Three nodes in a line A - B - C (C hears A's blocks only through B's forwarding). A appends
--blocks sealed blocks one at a time (bundled devnet genesis model at difficulty 1); for each we
time from A's announcement to the block becoming the head of B (one hop) and of C (two hops).
Each hop includes the receiver's seal verification (one forward pass) and state transition.
All three nodes run in this process. Prints one JSON object.

    ETH_HASH_BACKEND=pysha3 .venv/bin/python bench/propagation.py --blocks 30
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sync import bench_config, make_template, seal  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blocks", type=int, default=30)
    args = p.parse_args()
    if not 1 <= args.blocks <= 1000:
        p.error("--blocks must be in 1..1000")
    logging.basicConfig(level=logging.WARNING)
    from poai.node import Node
    from poai.p2p.host import HostConfig
    from poai.p2p.service import P2PService

    cfg = bench_config()
    seen: dict[str, dict[bytes, float]] = {"a": {}, "b": {}, "c": {}}
    arrived = threading.Condition()

    def recorder(name: str) -> Any:
        def on_event(ev: Any) -> None:
            block = getattr(ev, "block", None)
            if block is not None:
                with arrived:
                    seen[name].setdefault(bytes(block.hash), time.perf_counter())
                    arrived.notify_all()
        return on_event

    with tempfile.TemporaryDirectory() as tmp:
        nodes: dict[str, tuple[Any, Any]] = {}
        peers: list[str] = []
        for name in ("a", "b", "c"):
            d = Path(tmp) / name
            node = Node(d, cfg)
            node.start()
            node.add_listener(recorder(name))
            svc = P2PService(node, HostConfig(datadir=d, static_peers=peers[-1:]))
            svc.start()
            peers = svc.host.full_addrs()
            nodes[name] = (node, svc)
        a = nodes["a"][0]
        deadline = time.monotonic() + 30
        while not (len(nodes["b"][1].host.peers()) == 2 and nodes["c"][1].host.peers()):
            if time.monotonic() > deadline:
                raise SystemExit("nodes did not connect")
            time.sleep(0.1)
        time.sleep(2.0)  # two gossipsub heartbeats: meshes formed
        hop1: list[float] = []
        hop2: list[float] = []
        lost = 0
        for _ in range(args.blocks):
            block = seal(a, make_template(a))
            a.import_block(block)  # A announces it from its NewHead listener
            h = bytes(block.hash)
            with arrived:
                ok = arrived.wait_for(lambda: h in seen["c"] and h in seen["b"], timeout=30)  # noqa: B023
            if not ok:
                lost += 1
                continue
            hop1.append(seen["b"][h] - seen["a"][h])
            hop2.append(seen["c"][h] - seen["a"][h])
        for node, svc in nodes.values():
            svc.stop()
            node.stop()
    ms = 1000.0
    print(json.dumps({
        "bench": "propagation",
        "topology": "A-B-C line, in one process, loopback",
        "blocks": args.blocks,
        "lost": lost,
        "one_hop_ms": {"median": round(statistics.median(hop1) * ms, 1),
                       "p95": round(pct(hop1, 0.95) * ms, 1), "max": round(max(hop1) * ms, 1)},
        "two_hops_ms": {"median": round(statistics.median(hop2) * ms, 1),
                        "p95": round(pct(hop2, 0.95) * ms, 1), "max": round(max(hop2) * ms, 1)},
        "includes": "gossip + seal verification + state transition at each hop",
    }))
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
