"""Start and talk to a real `poai node --dev --mine` process on a free loopback port.

The genesis is the bundled devnet with difficulty 1, so a block comes about once a second (the
node never stamps a block ahead of the clock).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin"
os.environ["PATH"] = str(BIN) + os.pathsep + os.environ.get("PATH", "")

DEV_KEYS = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
    "0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def fast_genesis(path: Path) -> Path:
    """The bundled devnet genesis with difficulty 1 and absolute asset paths."""
    from poai.chain.config import DEFAULT_CONFIG
    data = json.loads(DEFAULT_CONFIG.read_text())
    base = DEFAULT_CONFIG.parent
    data["initialDifficulty"] = 1
    data["minDifficulty"] = 1
    data["targetBlockTime"] = 1
    data["modelDir"] = str((base / data.get("modelDir", "model")).resolve())
    data["dataset"]["path"] = str((base / data["dataset"]["path"]).resolve())
    path.write_text(json.dumps(data))
    return path


def rpc_call(url: str, method: str, *params: Any) -> Any:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)})
    req = urllib.request.Request(url, data=body.encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        reply = json.loads(resp.read())
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply["result"]


class NodeProcess:
    """`poai node --dev` on a free loopback port, its output in `log_path` (default: beside the
    data dir); returns once the node answers JSON-RPC.  `extra_args` go to `poai node`."""

    def __init__(self, datadir: Path, genesis: Path, *, mine: bool = True,
                 log_path: Path | None = None, extra_args: tuple[str, ...] = ("--p2p-port", "0"),
                 port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path or datadir.parent / f"node-{self.port}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115
        cmd = [sys.executable, "-m", "poai.cli", "node", "--dev", "--datadir", str(datadir),
               "--genesis", str(genesis), "--rpc-port", str(self.port),
               "--miner-workers", "1", *extra_args] + (["--mine"] if mine else [])
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "ETH_HASH_BACKEND": "pysha3"})
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"node exited: {self.log_path.read_text()[-2000:]}")
            try:
                self.chain_id = int(rpc_call(self.url, "eth_chainId"), 16)
                break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("node did not answer within 180 s") from None
                time.sleep(0.3)

    def text(self) -> str:
        """Everything the node has logged so far."""
        self.log.flush()
        return self.log_path.read_text()

    def call(self, method: str, *params: Any) -> Any:
        return rpc_call(self.url, method, *params)

    def wait_block(self, number: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while int(self.call("eth_blockNumber"), 16) < number:
            assert time.monotonic() < deadline, f"block {number} not mined in {timeout}s"
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def run_tool(args: list[str], env: dict[str, str] | None = None, timeout: float = 240,
             cwd: Path = ROOT) -> str:
    res = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                         env={**os.environ, **(env or {})})
    assert res.returncode == 0, f"{args[0]} failed ({res.returncode}):\n{res.stdout}\n{res.stderr}"
    return res.stdout
