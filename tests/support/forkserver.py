"""A fork server for crash tests: one interpreter imports the node once, then forks a real
`poai node` (poai.cli.main) per request, so a kill/restart cycle costs a fork instead of a fresh
interpreter (importing torch, py-evm, libp2p and the node takes 7 s of CPU, 30 s on the loaded
test machine).

Protocol (one JSON object per line): the client writes {"argv": [...], "log": PATH} and reads
{"pid": N}; the child runs `poai ARGV` with stdout and stderr in PATH.  {"wait": N} reaps child N
and answers {"status": S} (os.waitpid's status).  EOF on stdin ends the server.  The server
itself runs nothing but imports, so no thread and no torch thread pool is copied into a child.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO


def _serve(stdin: TextIO, stdout: TextIO) -> None:
    for line in stdin:
        req = json.loads(line)
        if "wait" in req:
            _, status = os.waitpid(int(req["wait"]), 0)
            stdout.write(json.dumps({"status": status}) + "\n")
            stdout.flush()
            continue
        # Opened before the fork: the log exists even when the child is killed at once.
        fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        pid = os.fork()
        if pid == 0:  # the child: a real node, its output in its own log
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 1
            try:
                from poai.cli import main
                code = main(list(req["argv"]))
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        os.close(fd)
        stdout.write(json.dumps({"pid": pid}) + "\n")
        stdout.flush()


def main() -> None:
    # What `poai node` loads anyway, imported before any fork (none of it starts a thread);
    # `-X importtime` on a forked node shows what else a child would still import.
    import libp2p.crypto.ed25519  # noqa: F401
    import libp2p.host.basic_host  # noqa: F401
    import poai.api.commands  # noqa: F401
    import poai.api.service  # noqa: F401
    import poai.cli  # noqa: F401
    import poai.governance.commands  # noqa: F401
    import poai.model.commands  # noqa: F401
    import poai.node  # noqa: F401
    import poai.p2p.cli  # noqa: F401
    import poai.p2p.service  # noqa: F401
    import poai.quiz.seal  # noqa: F401
    import poai.rpc.server  # noqa: F401
    import torch  # noqa: F401
    import uvloop  # noqa: F401

    sys.stdout.write(json.dumps({"ready": True}) + "\n")
    sys.stdout.flush()
    _serve(sys.stdin, sys.stdout)


class ForkServer:
    """The client side (in the test process)."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "support.forkserver"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, bufsize=1,
            cwd=Path(__file__).resolve().parents[1],
            env={**os.environ, "ETH_HASH_BACKEND": "pysha3"},
        )
        self._t0 = time.monotonic()
        self.import_s = 0.0  # start -> ready (what a fresh interpreter per node would cost)
        self.children: set[int] = set()

    def ready(self) -> None:
        """Wait until the server has imported the node (it imports while the caller works)."""
        if not self.import_s:
            assert self._read() == {"ready": True}
            self.import_s = time.monotonic() - self._t0

    def _read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"fork server exited ({self.proc.wait()})")
        return json.loads(line)

    def _write(self, req: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()

    def spawn(self, argv: list[str], log: Path) -> int:
        """Start `poai ARGV` (forked), its output appended to `log`; returns its pid."""
        self.ready()
        self._write({"argv": argv, "log": str(log)})
        pid = int(self._read()["pid"])
        self.children.add(pid)
        return pid

    def wait(self, pid: int) -> int:
        """Reap a child (after it exited or was killed); its wait status."""
        self._write({"wait": pid})
        self.children.discard(pid)
        return int(self._read()["status"])

    def kill(self, pid: int, sig: int = signal.SIGKILL) -> int:
        os.kill(pid, sig)
        return self.wait(pid)

    def close(self) -> None:
        for pid in list(self.children):
            try:
                self.kill(pid)
            except (OSError, RuntimeError):
                pass
        self.proc.kill()  # it holds nothing but imports: no need to wait for its clean exit
        self.proc.wait(10)


if __name__ == "__main__":
    main()
