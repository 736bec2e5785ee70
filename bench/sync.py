"""Sync benchmark: blocks/s imported by a fresh node from a peer, with full verification.

A chain of --blocks sealed blocks is built (the bundled devnet genesis model, its difficulty
lowered to 1 and block timestamps spaced by the target time so it stays there) and served by a
real `poai node` process (its own interpreter, as a peer is); a fresh node in this process then
range-syncs it over libp2p on loopback, verifying every seal (ParallelVerifier,
one worker per core, a few seals per forward pass) and every state transition. The
seal-verification limit is cores / (time of ONE verification, one seal per pass); the goal is a
ratio >= 0.8. This machine's speed drifts by up to ~1.6x within seconds (a shared host), so each
of --rounds fresh nodes syncs the chain with one verification timed just before and just after
its sync, and the median round is reported. To explain the figure it also prints the per-seal
time of the batched passes the workers run and the import time per block with the seal already
checked. Prints one JSON object.

    ETH_HASH_BACKEND=pysha3 .venv/bin/python bench/sync.py --blocks 200 --rounds 3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from poai.chain.builder import BlockTemplate, build_block
from poai.chain.config import load_genesis_config
from poai.db.buffer import WriteBuffer
from poai.quiz.context import load_runner
from poai.quiz.reduce import claimable_values, find_ticket


def bench_config(difficulty: int = 1) -> Any:
    cfg = load_genesis_config(None)
    return dataclasses.replace(cfg, initial_difficulty=difficulty, min_difficulty=1)


def bench_genesis_file(path: Path) -> Path:
    """The bundled devnet genesis with difficulty 1 and absolute asset paths, for the serving
    `poai node` process (bench_config() is the same chain)."""
    from poai.chain.config import DEFAULT_CONFIG

    data = json.loads(DEFAULT_CONFIG.read_text())
    base = DEFAULT_CONFIG.parent
    data["initialDifficulty"] = data["minDifficulty"] = 1
    data["modelDir"] = str((base / data.get("modelDir", "model")).resolve())
    data["dataset"]["path"] = str((base / data["dataset"]["path"]).resolve())
    if "genesisContracts" in data:
        data["genesisContracts"] = str((base / data["genesisContracts"]).resolve())
    path.write_text(json.dumps(data))
    return path


class ServingPeer:
    """`poai node` (no mining, no RPC clients) serving a copy of a data dir over libp2p."""

    def __init__(self, datadir: Path, genesis: Path, log_path: Path) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            rpc_port = sock.getsockname()[1]
        self.log = open(log_path, "w")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "poai.cli", "node", "--datadir", str(datadir), "--genesis",
             str(genesis), "--rpc-port", str(rpc_port), "--p2p-port", "0"],
            stdout=subprocess.PIPE, stderr=self.log, text=True,
            env={**os.environ, "ETH_HASH_BACKEND": "pysha3"})
        self.addrs: list[str] = []
        deadline = time.monotonic() + 180
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("P2P listening on "):
                self.addrs.append(line.split(" on ", 1)[1].strip())
            if line.startswith("Listening on ") and self.addrs:
                break
            if time.monotonic() > deadline:
                break
        if not self.addrs:
            self.stop()
            raise RuntimeError(f"the serving node did not start: see {log_path}")

    def cpu_seconds(self) -> float:
        return _proc_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_template(node: Any, parent: Any = None) -> BlockTemplate:
    with node.lock:
        parent = parent or node.head()
        tchain = node.chain_class(WriteBuffer(node.importer.buffer))  # throwaway overlay
        return build_block(tchain, parent, b"\x01" * 20, [],
                           timestamp=parent.timestamp + node.config.target_block_time)


def seal(node: Any, t: BlockTemplate) -> Any:
    with node.lock:
        ctx = node.quiz_context(t.header)
    runner = load_runner(ctx)
    for nonce in range(1_000_000):
        losses = runner.losses(ctx.epoch_key, t.seal_hash, nonce)
        mix = find_ticket(t.seal_hash, nonce,
                          [claimable_values(v, ctx.params.grid_bits, 1 / 64) for v in losses],
                          t.header.difficulty)
        if mix is not None:
            return t.seal(nonce, mix)
    raise RuntimeError("no seal")


def extend(node: Any, count: int) -> None:
    for _ in range(count):
        node.import_block(seal(node, make_template(node)))


def verification_times(node: Any, samples: int = 20) -> list[float]:
    """Wall times of verify_seal on this chain's blocks (model already loaded)."""
    from poai.consensus.seal_hash import seal_hash
    from poai.quiz.seal import verify_seal

    times = []
    with node.lock:
        headers = [node.chain.get_canonical_block_header_by_number(n)
                   for n in range(1, min(samples, node.head().block_number) + 1)]
        ctxs = [node.quiz_context(h) for h in headers]
    verify_seal(ctxs[0], seal_hash(headers[0]), int.from_bytes(headers[0].nonce, "big"),
                headers[0].mix_hash, headers[0].difficulty)  # warm-up
    for h, ctx in zip(headers, ctxs, strict=True):
        t0 = time.perf_counter()
        verify_seal(ctx, seal_hash(h), int.from_bytes(h.nonce, "big"), h.mix_hash, h.difficulty)
        times.append(time.perf_counter() - t0)
    return times


def batched_verification_seconds(node: Any, chunk: int, samples: int = 40) -> float:
    """Median wall time per seal of verify_seals over chunks of `chunk` seals (one forward pass
    per chunk, as the sync's verifier workers do it), in this process (1 thread)."""
    from poai.consensus.seal_hash import seal_hash
    from poai.quiz.seal import verify_seals

    with node.lock:
        headers = [node.chain.get_canonical_block_header_by_number(n)
                   for n in range(1, min(samples, node.head().block_number) + 1)]
        ctx = node.quiz_context(headers[0])
    seals = [(seal_hash(h), int.from_bytes(h.nonce, "big"), bytes(h.mix_hash), h.difficulty)
             for h in headers if node.quiz_context(h) == ctx]
    verify_seals(ctx, seals[:chunk])  # warm-up
    times = []
    for i in range(0, len(seals) - chunk + 1, chunk):
        t0 = time.perf_counter()
        results = verify_seals(ctx, seals[i : i + chunk])
        times.append((time.perf_counter() - t0) / chunk)
        assert results == [None] * chunk
    return statistics.median(times) if times else float("nan")


def import_seconds_per_block(node: Any, fresh: Any, count: int = 100) -> float:
    """Node.import_block per block with the seal already verified (what the sync's import
    thread does once the workers have checked the seal): state transition and storage."""
    with node.lock:
        blocks = [node.chain.get_canonical_block_by_number(n)
                  for n in range(1, min(count, node.head().block_number) + 1)]
    cc = fresh.chain.consensus_context
    for b in blocks:
        cc.remember(b.hash, ())
    warm = min(5, len(blocks) - 1)
    for b in blocks[:warm]:
        fresh.import_block(b)
    t0 = time.perf_counter()
    for b in blocks[warm:]:
        fresh.import_block(b)
    return (time.perf_counter() - t0) / max(1, len(blocks) - warm)


def worker_cpu_seconds(verifier: Any) -> float:
    """CPU time (user + system) used so far by the verifier's worker processes (Linux)."""
    pool = getattr(verifier, "_pool", None)
    return sum(_proc_cpu_seconds(pid) for pid in list(getattr(pool, "_processes", {}) or {}))


def sync_once(a: Any, peer: ServingPeer, verifier: Any, cfg: Any, datadir: Path, blocks: int,
              workers: int) -> dict[str, Any]:
    """A fresh node syncs `a`'s chain from `peer`; one verification is timed around it."""
    from poai.node import Node
    from poai.p2p.host import HostConfig
    from poai.p2p.service import P2PService

    before = verification_times(a, 12)
    b = Node(datadir, cfg)
    b.start()
    sb = P2PService(b, HostConfig(datadir=datadir, static_peers=peer.addrs), verifier=verifier)
    main0, workers0 = time.process_time(), worker_cpu_seconds(verifier)
    peer0 = peer.cpu_seconds()
    t0 = time.monotonic()
    sb.start()
    deadline = t0 + 1800
    while b.head().block_number < blocks and time.monotonic() < deadline:
        time.sleep(0.005)
    done = time.monotonic()
    main_cpu_s = time.process_time() - main0
    workers_cpu_s = worker_cpu_seconds(verifier) - workers0
    peer_cpu_s = peer.cpu_seconds() - peer0
    cpu_s = main_cpu_s + workers_cpu_s + peer_cpu_s
    wall_s = done - t0
    started = sb.syncer.sync_started
    # The sync's own time: from the sync's start (common-ancestor search, downloads,
    # verification, import) to the last block; the libp2p start, dial and status handshake
    # before it are reported apart (wall_seconds_from_service_start).
    sync_s = done - started if started is not None else wall_s
    synced = b.head().block_number
    timings = dict(sb.syncer.timings)
    ok = b.head().hash == a.head().hash
    sb.stop()
    b.stop()
    after = verification_times(a, 12)
    verify_s = statistics.median(before + after)
    rate = synced / sync_s
    limit = workers / verify_s
    n = max(synced, 1)
    return {
        "blocks": synced,
        "same_head": ok,
        "sync_seconds": round(sync_s, 3),
        "wall_seconds_from_service_start": round(wall_s, 3),
        "blocks_per_s": round(rate, 2),
        "one_verification_ms": round(verify_s * 1000, 2),
        "one_verification_ms_before_after": [round(statistics.median(v) * 1000, 2)
                                             for v in (before, after)],
        # The sync thread's time per block: Node.import_block (state transition, storage),
        # epochs' quiz contexts (governance reads, once per epoch), waiting for seal results.
        "sync_thread_ms_per_block": {k: round(v * 1000 / n, 2) for k, v in timings.items()},
        # All CPU of the sync per block (the syncing node, its verifier workers and the serving
        # peer, all on this machine's cores), and the rate it allows with every core busy.
        "cpu_ms_per_block": round(cpu_s * 1000 / n, 2),
        "cpu_ms_per_block_in_workers": round(workers_cpu_s * 1000 / n, 2),
        "cpu_ms_per_block_serving_peer": round(peer_cpu_s * 1000 / n, 2),
        "cpu_bound_blocks_per_s": round((os.cpu_count() or 1) * n / cpu_s, 1),
        "seal_verification_limit_blocks_per_s": round(limit, 2),
        "ratio_to_limit": round(rate / limit, 3),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--blocks", type=int, default=200)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--rounds", type=int, default=3, help="fresh-node syncs, median reported")
    args = p.parse_args()
    if args.blocks < 1 or args.blocks > 5000:
        p.error("--blocks must be in 1..5000")
    if not 1 <= args.rounds <= 10:
        p.error("--rounds must be in 1..10")
    logging.basicConfig(level=logging.WARNING)
    from poai.node import Node
    from poai.quiz.verifier import ParallelVerifier

    with tempfile.TemporaryDirectory() as tmp:
        genesis = bench_genesis_file(Path(tmp) / "genesis.json")
        cfg = load_genesis_config(genesis)
        a = Node(Path(tmp) / "a", cfg)
        a.start()
        t0 = time.monotonic()
        extend(a, args.blocks)
        build_s = time.monotonic() - t0
        a.stop()  # the serving peer gets a copy of the chain (LevelDB: one process per dir)
        shutil.copytree(Path(tmp) / "a", Path(tmp) / "peer", ignore=shutil.ignore_patterns("LOCK"))
        a.start()
        peer = ServingPeer(Path(tmp) / "peer", genesis, Path(tmp) / "peer.log")
        verifier = ParallelVerifier(args.workers)
        batched_s = batched_verification_seconds(a, verifier.chunk)
        # Its own config object: a Node registers its governance state source per config
        # object, and stopping this one must not unregister b's.
        c = Node(Path(tmp) / "c", dataclasses.replace(cfg))
        c.start()
        import_s = import_seconds_per_block(a, c)
        c.stop()
        with a.lock:  # start the workers and load the model in them before timing
            ctx = a.quiz_context(a.chain.get_canonical_block_header_by_number(1))
        verifier.warm_up(ctx)
        try:
            rounds = [sync_once(a, peer, verifier, cfg, Path(tmp) / f"b{r}", args.blocks,
                                args.workers) for r in range(args.rounds)]
        finally:
            peer.stop()
            verifier.close()
            a.stop()
    median = sorted(rounds, key=lambda r: r["ratio_to_limit"])[len(rounds) // 2]
    ok = all(r["same_head"] for r in rounds)
    print(json.dumps({
        "bench": "sync",
        **median,
        "same_head": ok,
        "rounds": len(rounds),
        "ratio_to_limit_each_round": [r["ratio_to_limit"] for r in rounds],
        "blocks_per_s_each_round": [r["blocks_per_s"] for r in rounds],
        "batched_verification_ms_per_seal": round(batched_s * 1000, 2),
        "seals_per_forward_pass": verifier.chunk,
        "import_ms_per_block": round(import_s * 1000, 2),
        "verifier_workers": args.workers,
        "goal_ratio": 0.8,
        "chain_build_seconds": round(build_s, 2),
        "model": "bundled devnet genesis (difficulty 1)",
    }))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
