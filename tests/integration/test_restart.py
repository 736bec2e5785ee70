"""Port ownership: a killed node rebinds its RPC and P2P ports at once (as geth and anvil do),
and a second node on a port in use stops with a one-line error instead of sharing it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from support.nodeproc import NodeProcess, fast_genesis, free_port

TIME_WAIT = "06"  # /proc/net/tcp state code


def time_wait_sockets(port: int) -> int:
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == TIME_WAIT:
                count += 1
    return count


def run_second_node(tmp: Path, genesis: Path, rpc_port: int, p2p_port: int
                    ) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "poai.cli", "node", "--dev", "--datadir", str(tmp),
           "--genesis", str(genesis), "--rpc-port", str(rpc_port), "--p2p-port", str(p2p_port)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "ETH_HASH_BACKEND": "pysha3"})


def test_killed_node_rebinds_at_once_and_ports_are_exclusive(tmp_path: Path) -> None:
    genesis = fast_genesis(tmp_path / "genesis.json")
    rpc_port, p2p_port = free_port(), free_port()
    args = ("--p2p-port", str(p2p_port))
    node = NodeProcess(tmp_path / "datadir", genesis, mine=False, port=rpc_port,
                       extra_args=args)
    try:
        # A second node on either port in use: refused with words, nothing shared.
        busy_rpc = run_second_node(tmp_path / "other1", genesis, rpc_port, free_port())
        assert busy_rpc.returncode != 0
        assert f"cannot listen on 127.0.0.1:{rpc_port}" in busy_rpc.stderr
        assert "Traceback" not in busy_rpc.stderr
        busy_p2p = run_second_node(tmp_path / "other2", genesis, free_port(), p2p_port)
        assert busy_p2p.returncode != 0
        assert f"cannot listen for peers on 127.0.0.1:{p2p_port}" in busy_p2p.stderr
        assert "Traceback" not in busy_p2p.stderr

        # Clients that the server closes on leave the server's side in TIME_WAIT.
        for _ in range(20):
            req = urllib.request.Request(node.url, data=b'{"jsonrpc":"2.0","id":1,'
                                         b'"method":"eth_chainId","params":[]}',
                                         headers={"Content-Type": "application/json",
                                                  "Connection": "close"})
            with urllib.request.urlopen(req, timeout=30) as resp:
                assert resp.status == 200
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(30)
        node.log.close()
        assert time_wait_sockets(rpc_port) > 0, "the test needs server-side TIME_WAIT sockets"

        node = NodeProcess(tmp_path / "datadir", genesis, mine=False, port=rpc_port,
                           extra_args=args)
        assert int(node.call("eth_chainId"), 16) == node.chain_id
        deadline = time.monotonic() + 60  # P2P starts after RPC answers
        while f"/tcp/{p2p_port}/p2p/" not in node.text():
            assert node.proc.poll() is None, node.text()
            assert time.monotonic() < deadline, node.text()
            time.sleep(0.3)
    finally:
        node.stop()
