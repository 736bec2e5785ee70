"""Miner-side cross-check of a found seal under the other CPU kernel sets honest nodes use.

Honest nodes differ in the last float bits by CPU instruction set (torch picks AVX-512, AVX2 or
plain kernels from the CPU, or from ATEN_CPU_CAPABILITY, once, at import).  Almost always this is
≤ 0.003 grid steps, far inside the miner's claim margin; but when a router decision is nearly
tied, the two sides can route a token to different experts and the loss moves by a large part of
a grid step (bench/quiz_agreement.py measured 0.47 steps between AVX-512 and plain kernels, once
in 8,000 samples).  The miner cannot claim around that, so before it publishes a seal it
verifies it once more in one checker process per other instruction set available on this CPU,
and drops a seal any of them rejects (and keeps grinding).  This costs one forward pass per
checker per found seal, not per attempt.

A checker is a separate interpreter started with ATEN_CPU_CAPABILITY set (the variable must be
set before torch is imported, which rules out multiprocessing's spawn: the child imports the
parent's modules first).  It reads one JSON request per line on stdin and answers one line.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from poai.quiz.context import QuizContext
from poai.quiz.params import QuizParams

KNOWN_CAPABILITIES = ("default", "avx2", "avx512")


def cpu_capabilities() -> tuple[str, ...]:
    """The ATEN_CPU_CAPABILITY values this CPU can run (always "default")."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    out = ["default"]
    if "avx2" in flags:
        out.append("avx2")
    if {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= flags:
        out.append("avx512")
    return tuple(out)


def own_capability() -> str:
    import torch

    return str(torch.backends.cpu.get_cpu_capability()).lower()


def _ctx_to_json(ctx: QuizContext) -> dict[str, Any]:
    return {"params": ctx.params.to_dict(), "epoch_key": ctx.epoch_key.hex(),
            "manifest_hash": ctx.manifest_hash, "blob_dir": ctx.blob_dir,
            "dataset_path": ctx.dataset_path, "dataset_key": ctx.dataset_key.hex()}


def _ctx_from_json(d: dict[str, Any]) -> QuizContext:
    return QuizContext(QuizParams.from_dict(d["params"]), bytes.fromhex(d["epoch_key"]),
                       d["manifest_hash"], d["blob_dir"], d["dataset_path"],
                       bytes.fromhex(d["dataset_key"]))


class _Checker:
    def __init__(self, capability: str) -> None:
        env = {**os.environ, "ATEN_CPU_CAPABILITY": capability}
        self.capability = capability
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "poai.quiz.crosscheck"], env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=1,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[str] = self.proc.stdin
        self.stdout: IO[str] = self.proc.stdout

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.stdin.close()
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=5)


class CrossChecker:
    """Checker processes for the given instruction sets, started on first use and kept."""

    def __init__(self, capabilities: Sequence[str]) -> None:
        bad = [c for c in capabilities if c not in KNOWN_CAPABILITIES]
        if bad:
            raise ValueError(f"unknown CPU capabilities {bad}; known: {KNOWN_CAPABILITIES}")
        self.capabilities = tuple(capabilities)
        self._checkers: list[_Checker] = []

    def start(self) -> None:
        if not self._checkers:
            self._checkers = [_Checker(c) for c in self.capabilities]

    def check(
        self, ctx: QuizContext, seal_hash: bytes, nonce: int, mix_hash: bytes, difficulty: int,
        cancelled: Callable[[], bool], timeout: float = 300.0,
    ) -> list[str] | None:
        """Rejection reasons ("<capability>: <message>"), [] when every checker accepts, None
        when cancelled first.  A checker that dies or times out counts as a rejection."""
        self.start()
        req = json.dumps({"ctx": _ctx_to_json(ctx), "seal_hash": seal_hash.hex(),
                          "nonce": nonce, "mix_hash": mix_hash.hex(),
                          "difficulty": difficulty}) + "\n"
        reasons: list[str] = []
        sel = selectors.DefaultSelector()
        try:
            for c in self._checkers:
                try:
                    c.stdin.write(req)
                    c.stdin.flush()
                    sel.register(c.stdout, selectors.EVENT_READ, c)
                except OSError as exc:
                    reasons.append(f"{c.capability}: checker unavailable ({exc})")
            deadline = time.monotonic() + timeout
            waiting = len(sel.get_map())
            while waiting:
                if cancelled():
                    self._restart_busy(sel)
                    return None
                if time.monotonic() > deadline:
                    reasons += [f"{k.data.capability}: timed out" for k in sel.get_map().values()]
                    self._restart_busy(sel)
                    break
                for key, _ in sel.select(timeout=0.02):
                    c = key.data
                    line = c.stdout.readline()
                    sel.unregister(c.stdout)
                    waiting -= 1
                    if not line:
                        reasons.append(f"{c.capability}: checker exited")
                        continue
                    answer = json.loads(line)
                    if answer["error"] is not None:
                        reasons.append(f"{c.capability}: {answer['error']}")
        finally:
            sel.close()
        return reasons

    def _restart_busy(self, sel: selectors.BaseSelector) -> None:
        """Checkers still busy with an abandoned request would answer it later: replace them."""
        busy = {id(k.data) for k in sel.get_map().values()}
        for i, c in enumerate(self._checkers):
            if id(c) in busy:
                c.proc.kill()
                c.proc.wait(timeout=5)
                self._checkers[i] = _Checker(c.capability)

    def close(self) -> None:
        for c in self._checkers:
            c.close()
        self._checkers = []


def _serve() -> None:
    from poai.model.config import set_consensus_threads
    from poai.quiz.seal import InvalidSeal, verify_seal

    set_consensus_threads()
    for line in sys.stdin:
        req = json.loads(line)
        error: str | None = None
        try:
            verify_seal(_ctx_from_json(req["ctx"]), bytes.fromhex(req["seal_hash"]),
                        int(req["nonce"]), bytes.fromhex(req["mix_hash"]), int(req["difficulty"]))
        except InvalidSeal as exc:
            error = str(exc)
        except Exception as exc:  # the checker cannot judge: say so, the miner drops the seal
            error = f"{type(exc).__name__}: {exc}"
        sys.stdout.write(json.dumps({"error": error}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    _serve()
