"""`poai devnet --nodes N`: N node processes on loopback, each with its own data dir.

The first ``miners`` nodes mine (one quiz worker each); every node has the earlier nodes as
static peers, so the network is connected whatever the start order. Node keys are created here
before the processes start, so every peer address (``/ip4/127.0.0.1/tcp/<port>/p2p/<id>``) is
known up front. Ports: RPC ``rpc_port + i``, P2P ``p2p_port + i``. Mining node ``i`` is paid at
dev account ``i`` of the default dev mnemonic (unless the node arguments give ``--coinbase``), so
each miner's blocks say which node sealed them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from poai.chain.devaccounts import dev_accounts
from poai.p2p.host import load_or_create_node_key, peer_id_from_seed

log = logging.getLogger(__name__)


@dataclass
class DevnetNode:
    index: int
    datadir: Path
    rpc_port: int
    p2p_port: int
    peer_id: str
    mining: bool
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.rpc_port}"

    @property
    def multiaddr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.p2p_port}/p2p/{self.peer_id}"


@dataclass
class Devnet:
    nodes: list[DevnetNode] = field(default_factory=list)

    def stop(self, timeout: float = 20.0) -> None:
        for n in self.nodes:
            if n.process is not None and n.process.poll() is None:
                n.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout
        for n in self.nodes:
            if n.process is None:
                continue
            try:
                n.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                n.process.kill()
                n.process.wait(5)

    def alive(self) -> bool:
        return all(n.process is not None and n.process.poll() is None for n in self.nodes)


def plan_devnet(nodes: int, miners: int, base_dir: Path, rpc_port: int, p2p_port: int
                ) -> Devnet:
    if nodes < 1:
        raise ValueError(f"--nodes must be >= 1, got {nodes}")
    if not 0 <= miners <= nodes:
        raise ValueError(f"miners must be between 0 and {nodes}, got {miners}")
    net = Devnet()
    for i in range(nodes):
        d = base_dir / f"node{i}"
        d.mkdir(parents=True, exist_ok=True)
        pid = peer_id_from_seed(load_or_create_node_key(d))
        net.nodes.append(DevnetNode(i, d, rpc_port + i, p2p_port + i, pid, i < miners))
    return net


def node_command(net: Devnet, node: DevnetNode, node_args: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "poai.cli", "-v", "node", "--datadir", str(node.datadir),
           "--rpc-addr", "127.0.0.1", "--rpc-port", str(node.rpc_port),
           "--p2p-port", str(node.p2p_port)]
    for other in net.nodes[:node.index]:
        cmd += ["--peer", other.multiaddr]
    if node.mining:
        cmd += ["--mine", "--miner-workers", "1"]
        if not any(a == "--coinbase" or a.startswith("--coinbase=") for a in node_args):
            cmd += ["--coinbase", "0x" + miner_coinbase(node.index).hex()]
    return cmd + list(node_args)


def miner_coinbase(index: int) -> bytes:
    """The coinbase of mining node `index`: dev account `index` of the default mnemonic."""
    return dev_accounts(count=index + 1)[index].address


def start_devnet(nodes: int = 3, miners: int = 2, base_dir: Path | None = None,
                 rpc_port: int = 8545, p2p_port: int = 30303,
                 node_args: list[str] | None = None) -> Devnet:
    """Start the node processes (logs in <datadir>/node.log) and return at once."""
    base = Path(base_dir) if base_dir is not None else Path.home() / ".poai" / "devnet-multi"
    net = plan_devnet(nodes, miners, base, rpc_port, p2p_port)
    env = dict(os.environ, ETH_HASH_BACKEND=os.environ.get("ETH_HASH_BACKEND", "pysha3"))
    for node in net.nodes:
        node.log_path = node.datadir / "node.log"
        with open(node.log_path, "ab") as out:
            node.process = subprocess.Popen(
                node_command(net, node, node_args or ["--dev"]), stdout=out,
                stderr=subprocess.STDOUT, env=env, start_new_session=True)
        log.info("node %d: pid %d rpc %s p2p %s%s", node.index, node.process.pid,
                 node.rpc_url, node.multiaddr, " (mining)" if node.mining else "")
    return net


def run_devnet(nodes: int = 3, miners: int = 2, base_dir: Path | None = None,
               rpc_port: int = 8545, p2p_port: int = 30303,
               node_args: list[str] | None = None) -> int:
    """Start the devnet and block until Ctrl-C or a node exits; returns an exit code."""
    net = start_devnet(nodes, miners, base_dir, rpc_port, p2p_port, node_args)
    for n in net.nodes:
        print(f"node{n.index}: rpc {n.rpc_url}  p2p {n.multiaddr}  "
              f"{'mining' if n.mining else 'syncing'}  log {n.log_path}", flush=True)
    try:
        while net.alive():
            time.sleep(0.5)
        dead = [n.index for n in net.nodes if n.process is not None and n.process.poll()]
        print(f"devnet: node(s) {dead} exited; stopping the others", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        net.stop()
