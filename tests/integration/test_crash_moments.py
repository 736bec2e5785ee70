"""SIGKILL a real node at random moments of a reorg and of a sync from a peer (issue 20).

Both situations are built once, in this process, from real sealed blocks on the small quiz
assets: a peer chain of 14 blocks of transfers, and a node whose own 8-block branch (its
transactions partly the peer's, partly its own) leaves the peer's at block 3.
- sync: a node with an empty data dir syncs the peer's 14 blocks;
- reorg: the 8-block node syncs, stores the peer's blocks 4-8 as a side chain and switches to it
  at block 9 (5 blocks out, 6 in, its own transactions back to the pool), then follows to 14 (both
under 16 blocks, so the seals are checked in the node's process, not in a verifier pool that
takes seconds to start).
A never-killed node runs each first (its time bounds the kill delays, its state is the
reference); then `POAI_CRASH_KILLS` (default 20) forked real nodes are SIGKILLed at random
moments, each data dir checked by tests/support/crashkit.py.  See crashkit for the checks.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from poai.chain.config import dump_genesis_config
from poai.chain.devaccounts import dev_accounts
from poai.node import Node
from poai.txpool.pool import decode_transaction
from support.crashkit import (
    Checker,
    Reference,
    kill_rounds,
    kills_per_case,
    node_argv,
    reference_run,
    start_peer,
    sync_to,
)
from support.disk import fill, mount_tmpfs, remount, unmount
from support.forkserver import ForkServer
from support.p2p_chainmaker import make_template, seal_template
from support.poai_tiny import signed_transfers, tiny_config

COMMON, OURS, THEIRS = 3, 8, 14  # heads: shared prefix, the node's branch, the peer's branch
RECIPIENTS = [bytes([0xA0 + i]) * 20 for i in range(4)]


def _txs(node: Node, raws: list[bytes]) -> list[Any]:
    builder = node.chain.get_vm_class(node.head()).get_transaction_builder()
    return [decode_transaction(builder, r) for r in raws]


def _mine(node: Node, raws: list[bytes], coinbase: bytes) -> Any:
    block = seal_template(node, make_template(node, _txs(node, raws), coinbase=coinbase))
    node.import_block(block)
    return block


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    base = tmp_path_factory.mktemp("crash")
    config = tiny_config(base / "assets", target_block_time=1)
    genesis = base / "genesis.json"
    genesis.write_text(json.dumps(dump_genesis_config(config)))
    t0 = time.monotonic()
    fs = ForkServer()
    keys = [a.private_key for a in dev_accounts()[:6]]
    nonces = [0] * len(keys)

    def transfers(who: int, count: int, to: bytes) -> list[bytes]:
        out = signed_transfers(config.chain_id, keys[who], to, count, start_nonce=nonces[who])
        nonces[who] += count
        return out

    empty = Node(base / "genesis-only", config)
    empty.start()
    empty.stop()
    peer = Node(base / "peer", config)
    ours = Node(base / "ours", config)
    peer.start()
    ours.start()
    raws: list[bytes] = []
    try:
        for n in range(1, COMMON + 1):
            txs = transfers(n % 3, 3, RECIPIENTS[0])
            raws += txs
            ours.import_block(_mine(peer, txs, b"\x01" * 20))
        fork_nonces = list(nonces)
        for n in range(COMMON + 1, THEIRS + 1):
            txs = transfers(0, 2, RECIPIENTS[1]) + transfers(3 + n % 3, 2, RECIPIENTS[2])
            raws += txs
            _mine(peer, txs, b"\x02" * 20)
        # Our branch: account 0's same nonces (other transfers), accounts 1-2 only here.
        nonces[:] = fork_nonces
        for _ in range(COMMON + 1, OURS + 1):
            txs = transfers(0, 2, RECIPIENTS[3]) + transfers(1, 2, RECIPIENTS[3])
            raws += txs
            _mine(ours, txs, b"\x03" * 20)
        assert ours.head().block_number == OURS and peer.head().block_number == THEIRS
        target = "0x" + peer.head().hash.hex()
    finally:
        peer.stop()
        ours.stop()
    addresses = [a.address for a in dev_accounts()[:6]] + RECIPIENTS + [
        b"\x01" * 20, b"\x02" * 20, b"\x03" * 20]
    t_built = time.monotonic() - t0
    fs.ready()
    pid, addr = start_peer(fs, base / "peer", genesis, base / "peer.log")
    print(json.dumps({"forkserver_import_s": round(fs.import_s, 1),
                      "scene_built_s": round(t_built, 1)}))
    refs: dict[str, tuple[Reference, Node]] = {}
    try:
        yield {"base": base, "config": config, "genesis": genesis, "fs": fs, "peer": addr,
               "target": target, "raws": raws, "addresses": addresses, "refs": refs,
               "genesis_only": base / "genesis-only",
               "templates": {"sync": None, "reorg": base / "ours"}}
    finally:
        for _, node in refs.values():
            node.stop()
        fs.close()


def scene_reference(scene: dict[str, Any], case: str) -> tuple[Reference, Node]:
    """The never-killed node of a case (run once per module): its timing and its chain, open."""
    refs = scene["refs"]
    if case not in refs:
        work = scene["base"] / case
        work.mkdir(exist_ok=True)
        ref = reference_run(scene["fs"], scene["templates"][case], work / "reference",
                            scene["genesis"], scene["peer"], scene["target"],
                            work / "reference.log")
        node = Node(ref.datadir, scene["config"])
        node.start()
        refs[case] = (ref, node)
    return refs[case]  # type: ignore[no-any-return]


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("case", ["sync", "reorg"])
def test_sigkill_at_random_moments(scene: dict[str, Any], case: str) -> None:
    started = time.monotonic()
    work = scene["base"] / case
    template = scene["templates"][case]
    ref, reference = scene_reference(scene, case)
    if case == "reorg":
        log = (work / "reference.log").read_text()
        assert f"reorg: {OURS - COMMON} blocks removed, {OURS - COMMON + 1} added" in log, log
    checker = Checker(scene["config"], reference, scene["raws"], scene["addresses"])
    rng = random.Random()
    kills = kills_per_case()
    delays = kill_rounds(scene["fs"], template=template, work=work, genesis=scene["genesis"],
                         peer=scene["peer"], ref=ref, checker=checker, kills=kills, rng=rng)
    assert len(checker.heads) == kills
    # Where the kills landed (the head each restart found), for the record.
    print(json.dumps({"case": case, "kills": kills, "seconds": round(time.monotonic() - started, 1),
                      "reference_sync_s": round(ref.synced_s, 2),
                      "heads_after_restart": checker.heads,
                      "delays": [round(d, 2) for d in delays]}))


def _exit_line(fs: ForkServer, pid: int, log: Path, timeout: float = 60) -> str:
    """Wait for the node to stop by itself; its `poai: error:` line (exit status 2)."""
    deadline = time.monotonic() + timeout
    while not log.exists() or "poai: error:" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    status = fs.wait(pid)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 2, (status, log.read_text())
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]
    errors = [line for line in text.splitlines() if line.startswith("poai: error:")]
    assert len(errors) == 1, text[-3000:]
    return errors[0]


@pytest.mark.integration
def test_full_and_read_only_data_dir(scene: dict[str, Any]) -> None:
    """A data dir on a full disk: the failing block write stops the node with one line and
    the database keeps its last good block (a restart on room to spare finds it and syncs on);
    a read-only data dir: one line at start."""
    base: Path = scene["base"] / "disk"
    disk = base / "tmpfs"
    if not mount_tmpfs(disk, "4m"):
        pytest.skip("needs root to mount a small tmpfs")
    fs, genesis, peer = scene["fs"], scene["genesis"], scene["peer"]
    try:
        datadir = disk / "data"
        shutil.copytree(scene["genesis_only"], datadir)
        fill(disk, 48 * 1024)
        log = base / "full.log"
        pid = fs.spawn(node_argv(datadir, genesis, peer=peer), log)
        line = _exit_line(fs, pid, log)
        assert f"cannot write the chain database {datadir / 'chaindata'}" in line, line
        assert "No space left on device" in line, line
        # Room again (as an operator frees space): the same data dir, the last good head.
        (disk / "filler").unlink()
        _, reference = scene_reference(scene, "sync")
        checker = Checker(scene["config"], reference, scene["raws"], scene["addresses"])
        head = checker.check(datadir)
        assert 0 < head < THEIRS, head  # some blocks were stored, then the disk was full
        sync_to(fs, datadir, genesis, peer, scene["target"], base / "resumed.log")

        # Read-only: one line at start, nothing written.
        remount(disk, "ro")
        pid = fs.spawn(node_argv(datadir, genesis, peer=peer), base / "ro.log")
        line = _exit_line(fs, pid, base / "ro.log")
        assert f"data dir {datadir}" in line and "Read-only file system" in line, line
        remount(disk, "rw")
        assert checker.check(datadir) == THEIRS
    finally:
        unmount(disk)
