"""JSON-RPC 2.0 over HTTP POST and WebSocket on one aiohttp port.

Requests are parsed on the event loop; handlers run in a small thread pool while holding
``node.lock``, one batch per lock acquisition, so chain reads never race block import and the
loop stays free for other connections. WebSocket connections also carry eth_subscribe.

Work that needs no chain access is kept out of the lock: a batch of only `LOCK_FREE` methods
runs without it, and a method's `PREPARE` hook (eth_sendRawTransaction: decoding and the
signature's ECDSA checks, memoised) runs before the lock is taken; eth_sendRawTransaction
(`POOL_ONLY`) needs only the pool's own lock. Small batches of quick methods (`INLINE`) are
answered on the loop itself when Node.lock is free: the hop to a worker thread and back costs
about as much as the method under the GIL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import WSMsgType, web

from poai.interfaces import NodeLike
from poai.rpc import admin, debug, dev, eth, format, poai, txpool, web3
from poai.rpc.context import RpcContext
from poai.rpc.errors import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    PARSE_ERROR,
    InvalidParams,
    MethodNotFound,
    RpcError,
)
from poai.rpc.filters import FilterManager, LogCriteria
from poai.rpc.hexutil import param
from poai.rpc.params import ANY, QTY, STRING, Arg, check_params
from poai.txpool.pool import TxPoolError

logger = logging.getLogger(__name__)

MAX_BATCH = 1000
MAX_BODY = 5 * 1024 * 1024  # geth's default HTTP body limit
MAX_SUBSCRIPTIONS = 1000
CLIENT_VERSION = "poai/v0.1.0/python3.11/py-evm-0.12"

Handler = Callable[[RpcContext, list[Any]], Any]

# Methods that read no chain data, or only through Node.head(), which takes the lock itself.
LOCK_FREE = frozenset({
    "web3_clientVersion", "web3_sha3", "net_version", "net_listening", "net_peerCount",
    "eth_chainId", "eth_blockNumber", "eth_mining", "eth_hashrate", "eth_accounts",
    "eth_coinbase", "rpc_modules",
})

# Methods whose chain reads go through the pool (its own lock, the head's state read from
# LevelDB): in a worker thread they run without Node.lock, so transactions are still accepted
# while a block is being built or committed.
POOL_ONLY = frozenset({"eth_sendRawTransaction"})

# Chain reads and submissions that take well under a millisecond (one EVM call at most, no
# range scans): answered on the event loop when Node.lock is free, since handing each one to a
# worker thread and back costs about as much again under the GIL. Slow or unbounded methods
# (eth_getLogs, eth_estimateGas, eth_feeHistory, whole-pool views) always go to a worker.
INLINE = LOCK_FREE | frozenset({
    "eth_call", "eth_sendRawTransaction", "eth_getTransactionReceipt", "eth_getBalance",
    "eth_getTransactionCount", "eth_getCode", "eth_getStorageAt", "eth_getBlockByNumber",
    "eth_getBlockByHash", "eth_getTransactionByHash", "eth_gasPrice",
    "eth_maxPriorityFeePerGas", "eth_syncing", "eth_getFilterChanges",
})
MAX_INLINE_BATCH = 8  # a bigger batch would hold the loop too long: it goes to a worker


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop to serve RPC on: uvloop when installed (libuv's transports cut the per-request
    cost of aiohttp by about a tenth of a millisecond), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def is_loopback(host: str) -> bool:
    """Whether `host` (an --rpc-addr) only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _error(req_id: Any, err: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": req_id, "error": err.to_json()}


SUBSCRIPTION_PARAMS: dict[str, tuple[Arg, ...]] = {
    "eth_subscribe": (Arg("subscription type", STRING), Arg("options", ANY, optional=True)),
    "eth_unsubscribe": (Arg("subscriptionId", QTY),),
}


class RpcServer:
    def __init__(self, node: NodeLike, *, host: str = "127.0.0.1", port: int = 8545,
                 cors_origins: tuple[str, ...] = ("*",), accounts: tuple[bytes, ...] = (),
                 max_batch: int = MAX_BATCH, max_body: int = MAX_BODY,
                 workers: int = 4, admin_api: bool | None = None) -> None:
        self.node = node
        self.host, self.port = host, port
        self.cors_origins = cors_origins
        self.max_batch, self.max_body = max_batch, max_body
        self.ctx = RpcContext(node, client_version=CLIENT_VERSION, accounts=accounts)
        self.filters = FilterManager(self.ctx)
        self.ctx.filters = self.filters
        self.methods: dict[str, Handler] = {}
        self.params: dict[str, tuple[Arg, ...]] = dict(SUBSCRIPTION_PARAMS)
        # dev: `--dev` only, else refused
        for module in (web3, eth, txpool, poai, debug, admin, dev):
            self.methods.update(module.METHODS)
            self.params.update(module.PARAMS)
        # admin_* tells about the node and its peers: on loopback only unless asked for
        if admin_api if admin_api is not None else is_loopback(host):
            self.methods.update(admin.ADMIN_METHODS)
            self.params.update(admin.ADMIN_PARAMS)
        self.ctx.method_names = self.methods.keys
        self.methods.update(self.filters.methods())
        self.params.update(self.filters.params())
        undeclared = sorted(set(self.methods) - set(self.params))
        if undeclared:  # every method's arguments are checked before its handler runs
            raise TypeError(f"JSON-RPC methods without declared PARAMS: {undeclared}")
        self.prepare: dict[str, Handler] = dict(eth.PREPARE)
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc")
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sockets: set[_WsConnection] = set()
        self.route_hooks: list[Callable[[web.Application], None]] = []  # e.g. the /v1 API
        self._accepting: asyncio.Event | None = None  # set once requests are served
        node.add_listener(self.ctx.on_node_event)
        node.add_listener(self.filters.on_event)
        self.filters.add_feed(self._on_feed, active=lambda: bool(self._sockets))

    def register(self, methods: dict[str, Handler], params: dict[str, tuple[Arg, ...]]) -> None:
        """Add a service's JSON-RPC methods (before start), each with its declared arguments."""
        undeclared = sorted(set(methods) - set(params))
        if undeclared:
            raise TypeError(f"JSON-RPC methods without declared params: {undeclared}")
        self.methods.update(methods)
        self.params.update(params)

    # ----------------------------------------------------------- lifecycle
    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body,
                              middlewares=[self._hold_middleware, self._cors_middleware])
        app.router.add_route("POST", "/", self._http)
        app.router.add_route("GET", "/", self._get)
        app.router.add_route("OPTIONS", "/{tail:.*}", self._preflight)
        for add_routes in self.route_hooks:
            add_routes(app)
        return app

    async def start(self, *, hold: bool = False) -> None:
        """Bind and serve; raises OSError when the address is taken.  `hold`: bind now (a port
        in use is reported before the chain is opened) but keep each request waiting until
        `accept_requests()` — a client never sees a node that is still starting."""
        self._loop = asyncio.get_running_loop()
        self._accepting = asyncio.Event()
        if not hold:
            self._accepting.set()
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        # SO_REUSEADDR (asyncio's default on Unix), as geth: a restarted node rebinds at once
        # despite its predecessor's TIME_WAIT connections; a live listener still refuses the bind.
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            raise
        if self.port == 0 and self._runner.addresses:  # report the port the OS picked
            self.port = self._runner.addresses[0][1]
        logger.info("JSON-RPC on %s", self.url)

    def accept_requests(self) -> None:
        """Answer the requests held since `start(hold=True)` and every one after."""
        assert self._accepting is not None, "start() first"
        self._accepting.set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        for conn in list(self._sockets):
            await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ----------------------------------------------------------- HTTP
    def _origin_allowed(self, origin: str) -> bool:
        return "*" in self.cors_origins or origin in self.cors_origins

    @web.middleware
    async def _hold_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self._accepting is not None and not self._accepting.is_set():
            await self._accepting.wait()
        response: web.StreamResponse = await handler(request)
        return response

    @web.middleware
    async def _cors_middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        response: web.StreamResponse = await handler(request)
        origin = request.headers.get("Origin")
        if origin and self._origin_allowed(origin) and not response.prepared:
            response.headers["Access-Control-Allow-Origin"] = (
                "*" if "*" in self.cors_origins else origin)
            response.headers["Vary"] = "Origin"
        return response

    async def _preflight(self, request: web.Request) -> web.Response:
        origin = request.headers.get("Origin", "")
        if origin and not self._origin_allowed(origin):
            return web.Response(status=403, text="origin not allowed")
        return web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "POST, GET, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get(
                "Access-Control-Request-Headers", "Content-Type"),
            "Access-Control-Max-Age": "600",
        })

    async def _get(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        return web.json_response(
            {"jsonrpc": "2.0", "id": None,
             "error": {"code": INVALID_REQUEST, "message": "use POST or a WebSocket"}},
            status=405)

    async def _http(self, request: web.Request) -> web.Response:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.json_response(_error(None, RpcError(
                INVALID_REQUEST, f"request body too large (limit {self.max_body} bytes)")),
                status=413)
        reply = await self.handle_payload(body)
        if reply is None:
            return web.Response(status=200, body=b"", content_type="application/json")
        return web.Response(body=reply, content_type="application/json")

    # ----------------------------------------------------------- dispatch
    async def handle_payload(self, body: bytes | str, conn: _WsConnection | None = None
                             ) -> bytes | None:
        """One JSON-RPC payload (single or batch) in, serialized reply (or None) out."""
        self.node.note_activity()  # the miner drafts blocks only while RPC is idle
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            return _dumps(_error(None, RpcError(PARSE_ERROR, f"parse error: {exc}")))
        if isinstance(payload, list):
            if not payload:
                return _dumps(_error(None, RpcError(INVALID_REQUEST, "empty batch")))
            if len(payload) > self.max_batch:
                return _dumps(_error(None, RpcError(
                    INVALID_REQUEST, f"batch too large: {len(payload)} > {self.max_batch}")))
            replies = await self._run_batch(payload, conn)
            out = [r for r in replies if r is not None]
            return _dumps(out) if out else None
        replies = await self._run_batch([payload], conn)
        return _dumps(replies[0]) if replies[0] is not None else None

    async def _run_batch(self, requests: list[Any], conn: _WsConnection | None
                         ) -> list[dict[str, Any] | None]:
        # Subscriptions need the connection and the loop: answer those here, the rest in a
        # worker thread under the node lock.
        replies: list[dict[str, Any] | None] = [None] * len(requests)
        pending: list[int] = []
        for i, req in enumerate(requests):
            method = req.get("method") if isinstance(req, dict) else None
            if conn is not None and method in ("eth_subscribe", "eth_unsubscribe"):
                replies[i] = self._call_local(req, conn)
            else:
                pending.append(i)
        if pending:
            batch = [requests[i] for i in pending]
            results = self._dispatch_inline(batch)
            if results is None:
                loop = asyncio.get_running_loop()
                results = await loop.run_in_executor(self._executor, self._dispatch_locked,
                                                     batch)
            for i, res in zip(pending, results, strict=True):
                replies[i] = res
        return replies

    def _dispatch_inline(self, requests: list[Any]) -> list[dict[str, Any] | None] | None:
        """Answer a small batch of `INLINE` methods on the loop itself when Node.lock is free
        right now; None otherwise, and the batch goes to a worker (block import or mining holds
        the lock: never stall the loop)."""
        if len(requests) > MAX_INLINE_BATCH or not all(
                isinstance(r, dict) and r.get("method") in INLINE for r in requests):
            return None
        self._prepare(requests)
        if not self.node.lock.acquire(blocking=False):
            return None
        try:
            return [self._dispatch(req) for req in requests]
        finally:
            self.node.lock.release()

    def _prepare(self, requests: list[Any]) -> None:
        """Run the methods' `PREPARE` hooks (lock-free work, memoised for the locked call)."""
        for req in requests:
            method = req.get("method") if isinstance(req, dict) else None
            hook = self.prepare.get(method) if isinstance(method, str) else None
            if hook is not None and isinstance(req.get("params"), list):
                try:
                    hook(self.ctx, req["params"])
                except Exception:  # noqa: S110 - the locked call reports errors properly
                    pass

    def _dispatch_locked(self, requests: list[Any]) -> list[dict[str, Any] | None]:
        methods = [req.get("method") if isinstance(req, dict) else None for req in requests]
        if all(m in LOCK_FREE for m in methods):
            return [self._dispatch(req) for req in requests]
        if any(m in dev.WITHOUT_LOCK for m in methods):
            # A dev method waiting for a block must not hold Node.lock (the miner needs it):
            # such a batch takes the lock per request.
            return [self._dispatch(req) if m in dev.WITHOUT_LOCK or m in LOCK_FREE
                    else self._dispatch_one_locked(req) for req, m in zip(requests, methods,
                                                                          strict=True)]
        self._prepare(requests)
        if all(m in LOCK_FREE or m in POOL_ONLY for m in methods):
            return [self._dispatch(req) for req in requests]
        with self.node.lock:
            return [self._dispatch(req) for req in requests]

    def _dispatch_one_locked(self, req: Any) -> dict[str, Any] | None:
        with self.node.lock:
            return self._dispatch(req)

    def _validate(self, req: Any) -> tuple[Any, str, list[Any]]:
        if not isinstance(req, dict):
            raise RpcError(INVALID_REQUEST, "invalid request: expected an object")
        if req.get("jsonrpc") != "2.0":
            raise RpcError(INVALID_REQUEST, 'invalid request: "jsonrpc" must be "2.0"')
        method = req.get("method")
        if not isinstance(method, str):
            raise RpcError(INVALID_REQUEST, 'invalid request: "method" must be a string')
        params = req.get("params", [])
        if params is None:
            params = []
        if not isinstance(params, list):
            raise InvalidParams("non-array args")
        return req.get("id"), method, params

    def _dispatch(self, req: Any) -> dict[str, Any] | None:
        req_id = req.get("id") if isinstance(req, dict) else None
        notification = isinstance(req, dict) and "id" not in req
        try:
            req_id, method, params = self._validate(req)
            handler = self.methods.get(method)
            if handler is None:
                raise MethodNotFound(method)
            check_params(self.params[method], params)
            result = handler(self.ctx, params)
        except RpcError as err:
            return None if notification else _error(req_id, err)
        except TxPoolError as err:
            return None if notification else _error(req_id, RpcError(err.code, str(err)))
        except Exception as exc:  # a bug or an unexpected library error: report, keep serving
            logger.exception("internal error in %r", req)
            return None if notification else _error(
                req_id, RpcError(INTERNAL_ERROR, f"internal error: {type(exc).__name__}: {exc}"))
        if notification:
            return None
        return {"jsonrpc": "2.0", "id": req_id, "result": result}

    # ----------------------------------------------------------- WebSocket
    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        # No permessage-deflate: each connection's zlib state stayed alive after its subscriber
        # dropped (found in the soak: docs/BENCHMARKS.md "What grew in the soak").
        ws = web.WebSocketResponse(max_msg_size=self.max_body, heartbeat=30, compress=False)
        await ws.prepare(request)
        conn = _WsConnection(ws)
        self._sockets.add(conn)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT or msg.type == WSMsgType.BINARY:
                    reply = await self.handle_payload(msg.data, conn)
                    if reply is not None:
                        await ws.send_bytes(reply) if msg.type == WSMsgType.BINARY else \
                            await ws.send_str(reply.decode())
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._sockets.discard(conn)
        return ws

    def _call_local(self, req: dict[str, Any], conn: _WsConnection) -> dict[str, Any] | None:
        try:
            req_id, method, params = self._validate(req)
            check_params(self.params[method], params)
            if method == "eth_subscribe":
                result: Any = conn.subscribe(params)
            else:
                result = conn.subscriptions.pop(param(params, 0, "subscriptionId"),
                                                None) is not None
        except RpcError as err:
            return _error(req.get("id"), err)
        return {"jsonrpc": "2.0", "id": req_id, "result": result}

    def _on_feed(self, kind: str, payload: Any) -> None:
        """Called on the node's thread: hand the event to the loop."""
        if self._loop is None or not self._sockets:
            return
        self._loop.call_soon_threadsafe(self._fan_out, kind, payload)

    def _fan_out(self, kind: str, payload: Any) -> None:
        for conn in list(self._sockets):
            conn.publish(kind, payload, self)


class _WsConnection:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.subscriptions: dict[str, tuple[str, Any]] = {}

    def subscribe(self, params: list[Any]) -> str:
        kind = param(params, 0, "subscription type")
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            raise RpcError(-32000, "too many subscriptions")
        if kind == "newHeads":
            arg: Any = None
        elif kind == "logs":
            arg = LogCriteria.parse(param(params, 1, "filter", {}))
        elif kind == "newPendingTransactions":
            arg = bool(param(params, 1, "fullTransactions", False))
        elif kind == "syncing":
            arg = None
        else:
            raise InvalidParams(f"no such subscription type: {kind}")
        sub_id = "0x" + secrets.token_hex(16)
        self.subscriptions[sub_id] = (kind, arg)
        return sub_id

    def publish(self, kind: str, payload: Any, server: RpcServer) -> None:
        for sub_id, (sub_kind, arg) in list(self.subscriptions.items()):
            result: Any
            if kind == "newHead" and sub_kind == "newHeads":
                result = payload
            elif kind == "log" and sub_kind == "logs" and arg.matches(payload):
                result = payload
            elif kind == "pendingTx" and sub_kind == "newPendingTransactions":
                result = payload
                if arg:
                    tx = server.node.txpool.get(bytes.fromhex(payload[2:]))
                    if tx is None:
                        continue
                    result = format.tx_json(tx)
            else:
                continue
            msg = {"jsonrpc": "2.0", "method": "eth_subscription",
                   "params": {"subscription": sub_id, "result": result}}
            if not self.ws.closed:
                sent = asyncio.ensure_future(self.ws.send_str(json.dumps(msg)))
                sent.add_done_callback(_drop_send_error)


def _drop_send_error(sent: asyncio.Future[None]) -> None:
    """A subscriber that went away while a notification was on its way: nothing to report (the
    connection's own loop removes its subscriptions)."""
    if not sent.cancelled():
        sent.exception()


def _dumps(obj: Any) -> bytes:
    try:
        return json.dumps(obj, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        # A handler returned something JSON cannot carry: answer -32603 for that response only.
        logger.exception("unserializable JSON-RPC result")
        if isinstance(obj, list):
            return b"[" + b",".join(_dumps(item) for item in obj) + b"]"
        err = RpcError(INTERNAL_ERROR, "internal error: unserializable result")
        return json.dumps(_error(obj.get("id") if isinstance(obj, dict) else None, err)).encode()
