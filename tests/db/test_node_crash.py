"""Kill -9 a mining node at random moments; after each kill the stored chain must be whole.

A real node process (`python -m poai.node --mine`) mines at difficulty 1 on small quiz assets,
logging "mined block #N 0xHASH" after each block's write batch is committed.  It is SIGKILLed
at random moments; then the data dir is opened again and must hold: a head at least as high as
the last reported block (the same block when at the same height), a chain that walks back to
genesis, a valid quiz seal on every block, a readable state at the head (the coinbase holds
exactly the subsidies of its blocks).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from poai.chain.config import dump_genesis_config
from poai.consensus.seal_hash import seal_hash
from poai.node import Node
from poai.quiz.seal import verify_seal
from support.poai_tiny import tiny_config

MINED = re.compile(r"mined block #(\d+) 0x([0-9a-f]{64})")
COINBASE = bytes.fromhex("c0ffee" + "00" * 17)
KILLS = 6 if os.environ.get("CI") == "true" else 12
ROUND_TIMEOUT_S = 60.0


def _launch(datadir: Path, cfg_path: Path, log_path: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, ETH_HASH_BACKEND="pysha3")
    return subprocess.Popen(
        [sys.executable, "-m", "poai.node", "--datadir", str(datadir), "--config",
         str(cfg_path), "--mine", "--miner-workers", "1", "--coinbase", "0x" + COINBASE.hex()],
        stdout=subprocess.DEVNULL, stderr=log_path.open("wb"), env=env,
    )


def _reported(log_path: Path) -> list[tuple[int, str]]:
    return [(int(m.group(1)), m.group(2)) for m in MINED.finditer(log_path.read_text())]


@pytest.mark.slow
def test_sigkill_at_random_moments_keeps_the_chain_whole(tmp_path: Path) -> None:
    # Target = 1 s: with the node waiting for the clock, blocks come every second and the
    # difficulty stays at 1 (one forward pass per block).
    config = tiny_config(tmp_path / "assets", target_block_time=1)
    cfg_path = tmp_path / "genesis.json"
    cfg_path.write_text(json.dumps(dump_genesis_config(config)))
    datadir = tmp_path / "data"
    rng = random.Random(int(time.time()))
    last: tuple[int, str] = (0, "")
    verified_up_to = 0
    results = []
    for round_no in range(KILLS):
        log_path = tmp_path / f"node-{round_no}.log"
        proc = _launch(datadir, cfg_path, log_path)
        try:
            if round_no % 3 == 2:
                # Every third kill lands anywhere in start-up (opening the db, first template).
                time.sleep(rng.uniform(0.0, 4.0))
            else:
                # Otherwise let it mine at least one block, then kill at a random moment.
                deadline = time.monotonic() + ROUND_TIMEOUT_S
                while not _reported(log_path) and time.monotonic() < deadline:
                    assert proc.poll() is None, log_path.read_text()[-3000:]
                    time.sleep(0.1)
                assert _reported(log_path), f"round {round_no}: no block mined in time"
                time.sleep(rng.uniform(0.0, 2.5))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        reported = _reported(log_path)
        if reported:
            last = reported[-1]

        node = Node(datadir, config)
        node.start()
        try:
            head = node.head()
            assert head.block_number >= last[0], (round_no, head.block_number, last)
            if head.block_number == last[0]:
                assert head.hash.hex() == last[1]
            else:
                assert node.chain.get_canonical_block_hash(last[0]).hex() == last[1]  # type: ignore[arg-type]
            h = head
            while h.block_number > 0:
                if h.block_number > verified_up_to:
                    verify_seal(node.quiz_context(h), seal_hash(h),
                                int.from_bytes(h.nonce, "big"), h.mix_hash, h.difficulty)
                h = node.chain.get_block_header_by_hash(h.parent_hash)
            assert h == node.chain.get_canonical_block_header_by_number(0)  # type: ignore[arg-type]
            state = node.state_at_head()
            assert state.get_balance(COINBASE) == config.block_subsidy_wei * head.block_number
            verified_up_to = head.block_number
            results.append(head.block_number)
        finally:
            node.stop()
    assert len(results) == KILLS
    print(f"kill test: {KILLS} kills, heads after restart {results}")
