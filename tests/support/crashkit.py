"""SIGKILL a real node at random moments of a situation prepared once, and check its data dir.

The situation is a data dir (the template, copied per kill) and a serving peer: each round
forks a real `poai node` (tests/support/forkserver.py) on a fresh copy of the template, which
dials the peer and syncs from it (importing side blocks, reorganising, crossing an epoch), and
SIGKILLs it after a random delay within the time a never-killed run took.  After each kill the
data dir is opened again (a restart) and must hold: a head that is a stored, whole block, a
canonical chain that walks back to genesis, a valid quiz seal on every block, the same state at
that head as the never-killed node has at the same block, and a pool that never holds a
transaction twice (nor one already in the chain) when every transaction of the scenario is sent
to it again, as wallets re-send.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.forkserver import ForkServer
from support.nodeproc import free_port, rpc_call

LISTEN = re.compile(r"P2P listening on (/ip4/127\.0\.0\.1/\S+)")
SYNCING = re.compile(r"sync: from peer")
SYNCED = re.compile(r"sync: imported #(\d+) of #\1 ")


def kills_per_case() -> int:
    """20 in `make test` (CI=true and by default); POAI_CRASH_KILLS=100 for the soak form."""
    return int(os.environ.get("POAI_CRASH_KILLS", "20"))


def wait_for_log(log: Path, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = pattern.search(log.read_text()) if log.exists() else None
        if found:
            return found
        assert time.monotonic() < deadline, f"{pattern.pattern!r} not in {log}:\n" + (
            log.read_text()[-3000:] if log.exists() else "(no log)")
        time.sleep(0.05)


def node_argv(datadir: Path, genesis: Path, *, rpc_port: int = 0,
              peer: str | None = None) -> list[str]:
    argv = ["node", "--datadir", str(datadir), "--genesis", str(genesis), "--rpc-port",
            str(rpc_port), "--p2p-port", "0", "--no-api", "--log-level", "info"]
    return argv + (["--peer", peer] if peer else [])


def start_peer(fs: ForkServer, datadir: Path, genesis: Path, log: Path) -> tuple[int, str]:
    """A non-mining node serving `datadir` to its peers: (pid, its multiaddr)."""
    pid = fs.spawn(node_argv(datadir, genesis), log)
    return pid, wait_for_log(log, LISTEN, 120).group(1)


@dataclass
class Reference:
    """The never-killed run: its data dir (closed) and its timing."""

    datadir: Path
    syncing_s: float  # fork -> the sync from the peer begins
    synced_s: float  # fork -> the last block of the sync imported


def reference_run(fs: ForkServer, template: Path | None, datadir: Path, genesis: Path,
                  peer: str, target_hash: str, log: Path) -> Reference:
    """Sync a copy of `template` from `peer` to `target_hash` without a kill, then stop it
    (SIGTERM: a clean shutdown)."""
    copy_template(template, datadir)
    syncing, synced = sync_to(fs, datadir, genesis, peer, target_hash, log)
    return Reference(datadir, syncing or synced / 2, synced)


def sync_to(fs: ForkServer, datadir: Path, genesis: Path, peer: str, target_hash: str,
            log: Path, timeout: float = 180) -> tuple[float, float]:
    """Run a node on `datadir` until it has synced `target_hash` from `peer`, then stop it
    cleanly; (seconds until the sync began, seconds until it logged the last import)."""
    port = free_port()
    t0 = time.monotonic()
    pid = fs.spawn(node_argv(datadir, genesis, rpc_port=port, peer=peer), log)
    syncing = synced = 0.0
    while True:
        elapsed = time.monotonic() - t0
        assert elapsed < timeout, "reference sync too slow:\n" + log.read_text()[-3000:]
        text = log.read_text() if log.exists() else ""
        if not syncing and SYNCING.search(text):
            syncing = elapsed
        if not synced and SYNCED.search(text):
            synced = elapsed
        try:
            head = rpc_call(f"http://127.0.0.1:{port}", "eth_getBlockByNumber", "latest", False)
        except OSError:
            head = None
        if head is not None and head["hash"] == target_hash:
            break
        time.sleep(0.05)
    synced = synced or time.monotonic() - t0
    status = fs.kill(pid, 15)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, log.read_text()[-3000:]
    return syncing, synced


def copy_template(template: Path | None, datadir: Path) -> None:
    if datadir.exists():
        shutil.rmtree(datadir)
    if template is None:
        datadir.mkdir(parents=True)
    else:
        shutil.copytree(template, datadir)


@dataclass
class Checker:
    """Checks a killed node's data dir against the never-killed node (opened in this process)."""

    config: Any
    reference: Any  # poai.node.Node on the reference data dir, started
    raws: list[bytes]  # every transaction of the scenario (raw), re-sent after each restart
    addresses: list[bytes]  # accounts whose state is compared
    storage: dict[bytes, list[int]] = field(default_factory=dict)  # contract -> slots compared
    verified: set[bytes] = field(default_factory=set)  # blocks whose seal verified already
    heads: list[int] = field(default_factory=list)

    def check(self, datadir: Path) -> int:
        from poai.consensus.seal_hash import seal_hash
        from poai.node import Node
        from poai.quiz.seal import verify_seal
        from poai.txpool.pool import TxPoolError, sender_of

        node = Node(datadir, self.config)
        node.start()  # the restart: opens the database as `poai node` does
        try:
            chain = node.chain
            head = node.head()
            block = chain.get_block_by_header(head)  # the body is stored whole
            assert block.hash == head.hash
            h = head
            while True:
                assert chain.get_canonical_block_hash(h.block_number) == h.hash
                if h.block_number == 0:
                    break
                if h.hash not in self.verified:
                    verify_seal(node.quiz_context(h), seal_hash(h),
                                int.from_bytes(h.nonce, "big"), h.mix_hash, h.difficulty)
                    self.verified.add(h.hash)
                h = chain.get_block_header_by_hash(h.parent_hash)
            assert h == self.reference.chain.get_canonical_block_header_by_number(0)
            # State reads at the head match the never-killed node's at the same block.
            ref_header = self.reference.chain.get_block_header_by_hash(head.hash)
            assert ref_header.state_root == head.state_root
            mine, theirs = chain.get_vm(head).state, self.reference.chain.get_vm(ref_header).state
            for addr in self.addresses:
                assert mine.get_balance(addr) == theirs.get_balance(addr), addr.hex()
                assert mine.get_nonce(addr) == theirs.get_nonce(addr), addr.hex()
                assert mine.get_code(addr) == theirs.get_code(addr), addr.hex()
            for addr, slots in self.storage.items():
                for slot in slots:
                    assert mine.get_storage(addr, slot) == theirs.get_storage(addr, slot)
            # Wallets re-send everything: the pool takes each at most once and none that the
            # chain already holds.
            for raw in self.raws:
                try:
                    node.submit_raw_transaction(raw)
                except (TxPoolError, ValueError):
                    pass
            pending = node.txpool.pending_transactions()
            hashes = [tx.hash for tx in pending]
            assert len(hashes) == len(set(hashes)), "a transaction twice in the pool"
            slots_taken = [(sender_of(tx), tx.nonce) for tx in pending]
            assert len(slots_taken) == len(set(slots_taken)), "two transactions, one nonce"
            for tx in pending:
                assert tx.nonce >= mine.get_nonce(sender_of(tx)), "an included tx in the pool"
            self.heads.append(int(head.block_number))
            return int(head.block_number)
        finally:
            node.stop()


def kill_rounds(fs: ForkServer, *, template: Path | None, work: Path, genesis: Path, peer: str,
                ref: Reference, checker: Checker, kills: int, rng: random.Random) -> list[float]:
    """`kills` rounds of copy, start, random SIGKILL, restart check; the kill delays."""
    delays = []
    for i in range(kills):
        datadir = work / "victim"
        copy_template(template, datadir)
        log = work / f"victim-{i}.log"
        # Mostly while it syncs, sometimes during start-up (opening the db, dialling).
        lo = ref.syncing_s if i % 4 else 0.0
        delay = rng.uniform(lo, ref.synced_s)
        pid = fs.spawn(node_argv(datadir, genesis, peer=peer), log)
        time.sleep(delay)
        status = fs.kill(pid)
        assert os.WIFSIGNALED(status) or os.WEXITSTATUS(status) == 0, log.read_text()[-3000:]
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
        checker.check(datadir)
        delays.append(delay)
    return delays


def transactions_of(blocks: Iterable[Any]) -> list[bytes]:
    return [bytes(tx.encode()) for b in blocks for tx in b.transactions]


def snapshot_datadir(pid: int, datadir: Path, dest: Path) -> None:
    """Copy a running node's data dir while it is stopped (SIGSTOP): the files a SIGKILL at
    that moment would leave."""
    os.kill(pid, signal.SIGSTOP)
    try:
        shutil.copytree(datadir, dest)
    finally:
        os.kill(pid, signal.SIGCONT)
    shutil.rmtree(dest / "p2p", ignore_errors=True)  # each copy makes its own node key


def kill_across_the_boundary(fs: ForkServer, template: Path, served: Path, genesis: Path,
                             addresses: list[str]) -> dict[str, Any]:
    """SIGKILL nodes syncing from `template` (a copy taken a few blocks before the epoch that
    activates a new snapshot) to the `served` chain (past it) at random moments, with the
    checks of `Checker` after each kill (kills_per_case(), default 20).  `addresses`: accounts
    and contracts whose state is compared with a node never killed."""
    from poai.chain.config import load_genesis_config
    from poai.node import Node

    t0 = time.monotonic()
    work = served.parent / "crash"
    work.mkdir()
    config = load_genesis_config(genesis)
    head = Node(served, config)
    head.start()
    try:
        target = "0x" + head.head().hash.hex()
        chain = head.chain
        blocks = [chain.get_canonical_block_by_number(n)
                  for n in range(1, head.head().block_number + 1)]
    finally:
        head.stop()
    _, peer = start_peer(fs, served, genesis, work / "peer.log")
    ref = reference_run(fs, template, work / "reference", genesis, peer, target,
                        work / "reference.log")
    reference = Node(ref.datadir, config)
    reference.start()
    raw = [bytes.fromhex(a[2:]) for a in addresses]
    coinbases = {bytes(b.header.coinbase) for b in blocks}
    checker = Checker(config, reference, transactions_of(blocks), raw + sorted(coinbases),
                      storage={a: list(range(8)) for a in raw})
    kills = kills_per_case()
    try:
        kill_rounds(fs, template=template, work=work, genesis=genesis, peer=peer, ref=ref,
                    checker=checker, kills=kills, rng=random.Random())
    finally:
        reference.stop()
    return {"crash_kills": kills, "crash_heads": checker.heads,
            "crash_reference_sync_s": round(ref.synced_s, 2),
            "crash_s": round(time.monotonic() - t0, 1)}
