"""The node's inference service: the engine on the node's active snapshot, the OpenAI routes
(on the JSON-RPC server's port or their own), expert-use statistics and their JSON-RPC methods.

Wiring (cli.py ``poai node``): ``poai.api.options.add_api_arguments(parser)``, then
``attach_api(server, node, args)`` before the RPC server starts, ``await api.start(server,
args)`` after it, ``await api.stop()`` last.
"""

from __future__ import annotations

import argparse
import logging
import threading
from pathlib import Path
from typing import Any

from aiohttp import web
from eth_utils.address import to_checksum_address

from poai.api.openai import OpenAIApi
from poai.api.options import ApiLimits
from poai.db.leveldb import DatabaseError
from poai.governance.reader import GovernanceReadError, call_view
from poai.inference.engine import (
    Generation,
    InferenceEngine,
    ModelUnavailable,
    SnapshotRef,
)
from poai.inference.stats import ExpertStats
from poai.quiz.epoch import epoch_index
from poai.rpc.errors import InvalidParams, RpcError
from poai.rpc.hexutil import param, parse_qty
from poai.rpc.params import NO_PARAMS, QTY, Arg

log = logging.getLogger(__name__)

MAX_TOP = 1024


class ApiStartError(RuntimeError):
    """The API cannot start (its port is taken, its statistics unreadable): one line for the
    user."""


def node_resolver(node: Any) -> Any:
    """The snapshot of the next block's epoch on the node's head, re-read when the head moves
    (governance switches snapshots at epoch boundaries)."""
    lock = threading.Lock()
    memo: dict[str, Any] = {}

    def resolve() -> SnapshotRef:
        head = node.head()
        with lock:
            if memo.get("head") == bytes(head.hash):
                return memo["ref"]  # type: ignore[no-any-return]
        config = node.config
        epoch = epoch_index(head.block_number + 1, config.quiz.epoch_blocks)
        if getattr(node.chain.consensus_context, "source", None) is None:
            ref = SnapshotRef(str(config.model_manifest), str(config.model_dir), epoch)
        else:
            quiz = node.current_quiz()
            ref = SnapshotRef(quiz.manifest_hash, quiz.blob_dir, epoch)
        with lock:
            memo.update(head=bytes(head.hash), ref=ref)
        return ref

    return resolve


class InferenceService:
    def __init__(self, node: Any, limits: ApiLimits, expert_cache: int,
                 stats_dir: Path | None) -> None:
        self.node = node
        self._stats_dir = stats_dir
        # Opened in start(), after the node has claimed its data dir (a second node on the same
        # dir then fails with the node's own "in use" message, not on this database's lock).
        self._stats: ExpertStats | None = None
        self._stats_lock = threading.Lock()
        self.engine = InferenceEngine(node_resolver(node), expert_cache=expert_cache,
                                      on_finished=self._record)
        self.api = OpenAIApi(self.engine, limits)
        self._runner: web.AppRunner | None = None
        self._contributors: dict[str, dict[tuple[int, int], str]] = {}
        self.url: str | None = None

    def contributors(self, ref: SnapshotRef) -> dict[tuple[int, int], str]:
        """(layer, index) -> the contributor ModelRegistry records for each expert of the active
        snapshot (read once per snapshot; {} on a chain without governance). Call with the
        node's lock held (JSON-RPC handlers do)."""
        cached = self._contributors.get(ref.manifest_hash)
        if cached is not None:
            return cached
        out: dict[tuple[int, int], str] = {}
        registry = self.node.contracts.get("ModelRegistry") if self.node.contracts else None
        if registry is not None and ref.epoch is not None:
            state = self.node.state_at_head()
            try:
                (sid,) = call_view(state, registry, "ModelRegistry", "activeSnapshot", ref.epoch)
                ((_trunk, _registrant, expert_ids),) = call_view(
                    state, registry, "ModelRegistry", "snapshot", sid)
                for eid in expert_ids:
                    ((_n, layer, index, _payload, _size, contributor, _deps),) = call_view(
                        state, registry, "ModelRegistry", "expert", eid)
                    out[(int(layer), int(index))] = to_checksum_address(contributor)
            except GovernanceReadError as exc:
                log.warning("expert contributors unreadable: %s", exc)
                return {}
        self._contributors[ref.manifest_hash] = out
        return out

    @property
    def stats(self) -> ExpertStats:
        """Opened by start(), or here by a request that comes first (RPC answers a moment
        before the node has started)."""
        with self._stats_lock:
            if self._stats is None:
                try:
                    self._stats = ExpertStats(self._stats_dir)
                except (DatabaseError, OSError) as exc:
                    raise RpcError(-32000, f"expert statistics unavailable: {exc}") from exc
            return self._stats

    def _record(self, g: Generation) -> None:
        self.stats.record(g.snapshot.selective.manifest, g.expert_counts.tolist(),
                          g.prompt_tokens + g.completion_tokens)

    # ---- JSON-RPC
    def rpc_expert_stats(self, ctx: Any, params: list[Any]) -> dict[str, Any]:
        """Per expert slot of the active snapshot: routed tokens, requests, last use; and the
        expert cache's hits and misses."""
        try:
            snap = self.engine.active()
        except ModelUnavailable as exc:
            raise RpcError(-32000, str(exc)) from exc
        return {"manifest": snap.ref.manifest_hash, "requests": self.stats.requests,
                "tokens": self.stats.tokens,
                "experts": self.stats.experts(snap.selective.manifest,
                                              self.contributors(snap.ref)),
                "expertCache": snap.cache_stats()}

    def rpc_top_experts(self, ctx: Any, params: list[Any]) -> list[dict[str, Any]]:
        raw = param(params, 0, "n", 10)
        n = raw if isinstance(raw, int) and not isinstance(raw, bool) else parse_qty(raw, "n")
        if not 1 <= n <= MAX_TOP:
            raise InvalidParams(f"n must be in [1, {MAX_TOP}]")
        try:
            snap = self.engine.active()
        except ModelUnavailable as exc:
            raise RpcError(-32000, str(exc)) from exc
        return self.stats.top(snap.selective.manifest, n, self.contributors(snap.ref))

    def methods(self) -> dict[str, Any]:
        return {"poai_expertStats": self.rpc_expert_stats,
                "poai_topExperts": self.rpc_top_experts}

    @staticmethod
    def params() -> dict[str, tuple[Arg, ...]]:
        return {"poai_expertStats": NO_PARAMS, "poai_topExperts": (Arg("n", QTY, optional=True),)}

    # ---- lifecycle
    async def start(self, server: Any, args: argparse.Namespace) -> None:
        """After the node started: open the statistics; serve on --api-port, or note the RPC
        port's URL."""
        try:
            with self._stats_lock:
                if self._stats is None:
                    self._stats = ExpertStats(self._stats_dir)
        except (DatabaseError, OSError) as exc:
            raise ApiStartError(f"cannot open the expert statistics in {self._stats_dir}: {exc}"
                           ) from exc
        if args.api_port is None:
            self.url = server.url + "/v1"
            return
        try:
            await self.start_own_port(args.api_addr, args.api_port)
        except OSError as exc:
            raise ApiStartError(f"cannot listen on {args.api_addr}:{args.api_port}: "
                           f"{exc.strerror or exc} (use another --api-port)") from exc

    async def start_own_port(self, host: str, port: int) -> None:
        app = web.Application(client_max_size=5 * 1024 * 1024)
        self.api.add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=False)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        if self._runner.addresses:  # the port the OS picked for port 0
            port = self._runner.addresses[0][1]
        self.url = f"http://{host}:{port}/v1"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self.api.close()
        if self._stats is not None:
            self._stats.close()


def attach_api(server: Any, node: Any, args: argparse.Namespace) -> InferenceService | None:
    """Create the service and register its JSON-RPC methods (and, without --api-port, its
    routes) on ``server`` before it starts; None with --no-api."""
    if getattr(args, "no_api", False):
        return None
    limits = ApiLimits(max_prompt_tokens=args.api_max_prompt, max_tokens=args.api_max_tokens,
                       max_concurrent=args.api_max_concurrent)
    service = InferenceService(node, limits, args.api_expert_cache,
                               Path(args.datadir) / "inference" / "experts")
    server.register(service.methods(), service.params())
    if args.api_port is None:
        server.route_hooks.append(service.api.add_routes)
    return service
