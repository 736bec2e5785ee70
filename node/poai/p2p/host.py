"""The libp2p host: py-libp2p (trio) in its own thread behind a small thread-safe interface.

The asyncio node and its worker threads call ``publish``, ``request``, ``connect``,
``penalize`` and friends; the host calls back into the application (gossip handlers, request
handlers, the status provider) in trio worker threads, so those may block on the chain lock.

What it sets up, and why:
- Noise is the only security transport (py-libp2p also offers plaintext unless told otherwise).
- A persistent ed25519 node key in ``<datadir>/p2p/nodekey`` gives a stable peer id.
- GossipSub with spam protection off (it drops above 10 msg/s per topic), eclipse protection off
  (every devnet peer is on 127.0.0.1), and larger outbound/subscription queues (the defaults of
  32 drop silently). Gossip is validated by the application *before* it is forwarded, and the
  forwarder is scored; our own publishes never reach the application.
- Static peers are redialled when lost (py-libp2p never redials, and caches a failed dial for
  60 s: we evict it with ``unblock_peer`` first); mDNS discovery when asked.
- On every new connection both sides exchange ``Status``; a peer of another chain is banned.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import multiaddr
import trio

from poai.compat import libp2p as compat_libp2p
from poai.compat.libp2p import stop_auto_connector
from poai.p2p import messages as m
from poai.p2p.peers import Offence, PeerScores

log = logging.getLogger(__name__)

NODEKEY_FILE = "nodekey"
_QUEUE_SIZE = 4096


def _check_port_free(host: str, port: int) -> None:
    """Bind the listen address once (SO_REUSEADDR, as the listener will) so a port in use is a
    clear error before py-libp2p, which only logs a failed listen, starts."""
    import socket

    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(1)
        except OSError as exc:
            raise HostError(exc.strerror or str(exc)) from exc


# ----------------------------------------------------------------------------- config


@dataclass
class HostConfig:
    datadir: Path                     # the node's data dir; the key lives in <datadir>/p2p/
    listen_host: str = "127.0.0.1"
    port: int = 0                     # 0 = a free port
    static_peers: list[str] = field(default_factory=list)  # /ip4/../tcp/../p2p/<id>
    mdns: bool = False
    redial_interval: float = 2.0      # seconds between redials of a lost static peer (max 30)
    request_timeout: float = 10.0
    handler_threads: int = 4
    ban_seconds: float = 600.0
    ban_threshold: float = -100.0
    max_peers: int = 50


@dataclass(frozen=True)
class Verdict:
    """What the application made of a gossip message."""

    accept: bool                      # forward it to our mesh
    offence: Offence | None = None    # the forwarder misbehaved
    detail: str = ""


ACCEPT = Verdict(True)
IGNORE = Verdict(False)


def reject(offence: Offence, detail: str = "") -> Verdict:
    return Verdict(False, offence, detail)


class NotFound(Exception):
    """Raised by a request handler for something we do not have."""


class RequestFailed(Exception):
    """A request could not be answered (no connection, timeout, bad or error response)."""


class HostError(RuntimeError):
    pass


GossipHandler = Callable[[str, bytes], Verdict]          # (peer id, data) -> verdict
RequestHandler = Callable[[str, bytes], bytes]           # (peer id, request) -> response
StatusProvider = Callable[[], m.Status]
StatusListener = Callable[[str, m.Status], None]
PeerListener = Callable[[str], None]


def load_or_create_node_key(datadir: Path) -> bytes:
    """The 32-byte ed25519 seed in ``<datadir>/p2p/nodekey`` (created 0600 on first use)."""
    path = Path(datadir) / "p2p" / NODEKEY_FILE
    if path.exists():
        seed = bytes.fromhex(path.read_text().strip())
        if len(seed) != 32:
            raise HostError(f"{path}: expected 32 hex-encoded bytes, got {len(seed)}")
        return seed
    path.parent.mkdir(parents=True, exist_ok=True)
    seed = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(seed.hex() + "\n")
    os.replace(tmp, path)
    return seed


def peer_id_from_seed(seed: bytes) -> str:
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    return str(ID.from_pubkey(create_new_key_pair(seed).public_key))


# ----------------------------------------------------------------------------- host


class P2PHost:
    def __init__(self, config: HostConfig, status_provider: StatusProvider) -> None:
        self.config = config
        self._status_provider = status_provider
        self.scores = PeerScores(
            ban_threshold=config.ban_threshold, ban_seconds=config.ban_seconds
        )
        self._topics: dict[str, tuple[GossipHandler, int]] = {}
        self._services: dict[str, tuple[RequestHandler, int]] = {}
        self._status_listeners: list[StatusListener] = []
        self._disconnect_listeners: list[PeerListener] = []
        self._statuses: dict[str, m.Status] = {}
        self._static: list[str] = list(config.static_peers)
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        # told once if the libp2p service dies after it started (the CLI stops the node)
        self.on_crash: Callable[[BaseException], None] | None = None
        self._token: Any = None
        self._stop: trio.Event | None = None
        self._publish_send: Any = None
        self._events_send: Any = None
        self._host: Any = None
        self._pubsub: Any = None
        self.peer_id = peer_id_from_seed(load_or_create_node_key(config.datadir))
        self.listen_addrs: list[str] = []

    # -- registration (before start) ----------------------------------------------------

    def subscribe(self, topic: str, handler: GossipHandler, max_size: int = m.MAX_GOSSIP_SIZE
                  ) -> None:
        """Validate ``topic`` messages with ``handler`` (called in a worker thread)."""
        self._topics[topic] = (handler, max_size)

    def serve(self, protocol: str, handler: RequestHandler,
              max_request: int = m.MAX_REQUEST_SIZE) -> None:
        """Answer requests on ``protocol``; ``handler`` raises NotFound or WireError."""
        self._services[protocol] = (handler, max_request)

    def on_status(self, fn: StatusListener) -> None:
        """Called (worker thread) after each accepted handshake with the peer's status."""
        self._status_listeners.append(fn)

    def on_disconnect(self, fn: PeerListener) -> None:
        self._disconnect_listeners.append(fn)

    # -- lifecycle ------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            raise HostError("host already started")
        _check_port_free(self.config.listen_host, self.config.port)
        self._thread = threading.Thread(target=self._run, name="libp2p", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise HostError("libp2p host did not start in time")
        if self._error is not None:
            raise HostError(f"libp2p host failed to start: {self._error}") from self._error

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        if self._token is not None and self._stop is not None:
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except (trio.RunFinishedError, RuntimeError):
                pass
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # noqa: BLE001 - reported to start() or logged
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("libp2p thread crashed")
                if self.on_crash is not None:
                    self.on_crash(exc)

    # -- thread-safe API ------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._token is None:
            raise HostError("host is not running")
        try:
            return trio.from_thread.run(fn, *args, trio_token=self._token)
        except trio.RunFinishedError as exc:
            raise HostError("host stopped") from exc

    def publish(self, topic: str, data: bytes) -> None:
        """Queue ``data`` for gossip on ``topic``; returns at once."""
        if self._token is None:
            raise HostError("host is not running")
        try:
            trio.from_thread.run_sync(
                self._publish_send.send_nowait, (topic, data), trio_token=self._token
            )
        except trio.WouldBlock as exc:
            raise HostError("publish queue full") from exc

    def request(self, peer: str, protocol: str, payload: bytes,
                timeout: float | None = None) -> bytes:
        """Send one request and return the OK payload; raises RequestFailed / ResponseError."""
        reply: bytes = self._call(self._request, peer, protocol, payload,
                                  timeout or self.config.request_timeout)
        return reply

    def connect(self, addr: str, timeout: float = 10.0) -> str:
        """Dial a multiaddr ending in /p2p/<id>; returns the peer id once connected."""
        return self._call(self._connect, addr, timeout)  # type: ignore[no-any-return]

    def add_static_peer(self, addr: str) -> None:
        if addr not in self._static:
            self._static.append(addr)

    def remove_static_peer(self, addr: str) -> None:
        if addr in self._static:
            self._static.remove(addr)

    def disconnect(self, peer: str) -> None:
        self._call(self._disconnect, peer)

    def penalize(self, peer: str, offence: Offence, detail: str = "") -> None:
        """Record an offence; bans and disconnects the peer past the threshold."""
        if self.scores.penalize(peer, offence, detail):
            self._call_soon(self._ban_now, peer)

    def ban(self, peer: str, seconds: float | None = None) -> None:
        self.scores.ban(peer, seconds)
        self._call_soon(self._ban_now, peer)

    def peers(self) -> dict[str, m.Status]:
        """Connected peers that completed the handshake, with their last known status."""
        return dict(self._statuses)

    def connected_peers(self) -> list[str]:
        if self._host is None:
            return []
        return [str(p) for p in self._host.get_connected_peers()]

    def mesh_peers(self, topic: str) -> set[str]:
        """The peers in this host's gossip mesh for `topic`: those its publishes reach at once
        (a peer joins at a gossipsub heartbeat after the handshake)."""
        peers: set[str] = self._call(self._mesh_peers, topic)
        return peers

    async def _mesh_peers(self, topic: str) -> set[str]:
        if self._pubsub is None:
            return set()
        return {str(p) for p in self._pubsub.router.mesh.get(topic, ())}

    def full_addrs(self) -> list[str]:
        return [f"{a}/p2p/{self.peer_id}" for a in self.listen_addrs]

    def _call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` in the trio thread, from any thread, without waiting for it."""
        if self._token is None:
            return
        if threading.current_thread() is self._thread:
            self._events_send.send_nowait((fn, args))
            return
        try:
            trio.from_thread.run_sync(
                self._events_send.send_nowait, (fn, args), trio_token=self._token
            )
        except (trio.RunFinishedError, trio.WouldBlock):
            log.debug("dropped host task %s", fn)

    # -- trio side ------------------------------------------------------------------------

    async def _main(self) -> None:
        from libp2p import new_host
        from libp2p.abc import INotifee
        from libp2p.crypto.ed25519 import create_new_key_pair
        from libp2p.crypto.x25519 import create_new_key_pair as create_x25519
        from libp2p.custom_types import TProtocol
        from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
        from libp2p.pubsub.pubsub import Pubsub
        from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_ID
        from libp2p.security.noise.transport import Transport as NoiseTransport
        from libp2p.tools.anyio_service import background_trio_service

        compat_libp2p.install(_QUEUE_SIZE)  # queues of 32 drop silently on a burst
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        self._publish_send, publish_recv = trio.open_memory_channel[tuple[str, bytes]](
            _QUEUE_SIZE)
        self._events_send, events_recv = trio.open_memory_channel[Any](_QUEUE_SIZE)
        self._limiter = trio.CapacityLimiter(self.config.handler_threads)

        key_pair = create_new_key_pair(load_or_create_node_key(self.config.datadir))
        noise = NoiseTransport(key_pair, noise_privkey=create_x25519().private_key)
        listen = multiaddr.Multiaddr(f"/ip4/{self.config.listen_host}/tcp/{self.config.port}")
        host = new_host(
            key_pair=key_pair,
            sec_opt={NOISE_ID: noise},
            listen_addrs=[listen],
            enable_mDNS=self.config.mdns,
        )
        self._host = host
        if str(host.get_id()) != self.peer_id:
            raise HostError("peer id does not match the node key")
        gossipsub = GossipSub(
            protocols=[PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=6, degree_low=4, degree_high=12,
            heartbeat_interval=1,
            spam_protection_enabled=False,
            eclipse_protection_enabled=False,
            max_pending_messages_per_peer=_QUEUE_SIZE,
        )
        pubsub = Pubsub(host, gossipsub, validation_timeout=120.0)
        self._pubsub = pubsub

        for proto in (m.STATUS_PROTOCOL, *self._services):
            host.set_stream_handler(TProtocol(proto), self._make_stream_handler(proto))
        host.get_network().register_notifee(cast(INotifee, _Notifee(self)))  # duck-typed

        async with host.run([listen]):
            await stop_auto_connector(host.get_network())  # _maintain dials instead
            async with background_trio_service(pubsub), background_trio_service(gossipsub):
                await pubsub.wait_until_ready()
                async with trio.open_nursery() as nursery:
                    for topic in self._topics:
                        pubsub.set_topic_validator(topic, self._make_validator(topic), True)
                        sub = await pubsub.subscribe(topic)
                        nursery.start_soon(self._drain, sub)
                    self.listen_addrs = [str(a).split("/p2p/")[0] for a in host.get_addrs()]
                    if not self.listen_addrs:  # py-libp2p logs a failed listen and goes on
                        raise HostError(f"cannot listen on {listen}")
                    nursery.start_soon(self._publisher, publish_recv)
                    nursery.start_soon(self._event_loop, events_recv, nursery)
                    nursery.start_soon(self._maintain, nursery)
                    log.info("p2p host %s listening on %s", self.peer_id, self.listen_addrs)
                    self._ready.set()
                    await self._stop.wait()
                    nursery.cancel_scope.cancel()
        self._token = None

    async def _drain(self, sub: Any) -> None:
        # Messages are handled in the validator (before forwarding); the subscription exists
        # so that we join the topic mesh, and is drained so it never fills up.
        while True:
            await sub.get()

    async def _publisher(self, recv: Any) -> None:
        async for topic, data in recv:
            try:
                await self._pubsub.publish(topic, data)
            except Exception:  # noqa: BLE001 - keep publishing the rest
                log.exception("publish on %s failed", topic)

    async def _event_loop(self, recv: Any, nursery: trio.Nursery) -> None:
        async for fn, args in recv:
            nursery.start_soon(fn, *args)

    async def _maintain(self, nursery: trio.Nursery) -> None:
        """Redial lost static peers (with backoff), connect mDNS finds, lift expired bans."""
        from libp2p.peer.id import ID

        next_try: dict[str, float] = {}
        backoff: dict[str, float] = {}
        while True:
            now = time.monotonic()
            connected = {str(p) for p in self._host.get_connected_peers()}
            for addr in list(self._static):
                pid = addr.rsplit("/p2p/", 1)[-1]
                if pid in connected:
                    backoff.pop(addr, None)
                    continue
                if self.scores.is_banned(pid) or next_try.get(addr, 0.0) > now:
                    continue
                delay = min(30.0, backoff.get(addr, self.config.redial_interval / 2) * 2)
                backoff[addr] = delay
                next_try[addr] = now + delay
                nursery.start_soon(self._redial, addr)
            if self.config.mdns:
                for pid_obj in self._host.get_peerstore().peers_with_addrs():
                    pid = str(pid_obj)
                    if (pid != self.peer_id and pid not in connected
                            and not self.scores.is_banned(pid)
                            and next_try.get(pid, 0.0) <= now
                            and len(connected) < self.config.max_peers):
                        next_try[pid] = now + 10.0
                        nursery.start_soon(self._dial_known, pid_obj)
            for pid in self.scores.expired_bans():
                self._pubsub.remove_from_blacklist(ID.from_base58(pid))
                log.info("ban of peer %s lifted", pid)
            await trio.sleep(min(1.0, self.config.redial_interval))

    async def _redial(self, addr: str) -> None:
        try:
            await self._connect(addr, 10.0)
            log.info("connected to static peer %s", addr)
        except Exception as exc:  # noqa: BLE001 - retried later
            log.debug("dial %s failed: %s", addr, exc)

    async def _dial_known(self, pid: Any) -> None:
        from libp2p.peer.peerinfo import PeerInfo

        try:
            addrs = self._host.get_peerstore().addrs(pid)
            with trio.fail_after(10):
                await self._host.connect(PeerInfo(pid, addrs))
            log.info("connected to discovered peer %s", pid)
        except Exception as exc:  # noqa: BLE001
            log.debug("dial of discovered %s failed: %s", pid, exc)

    async def _connect(self, addr: str, timeout: float) -> str:
        from libp2p.peer.peerinfo import info_from_p2p_addr

        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        except Exception as exc:
            raise HostError(f"bad peer multiaddr {addr!r}: {exc}") from exc
        pid = str(info.peer_id)
        if self.scores.is_banned(pid):
            raise HostError(f"peer {pid} is banned")
        # py-libp2p caches a failed dial for 60 s; a redial must not hit that cache.
        self._host.get_network().unblock_peer(info.peer_id)
        try:
            with trio.fail_after(timeout):
                await self._host.connect(info)
        except trio.TooSlowError as exc:
            raise HostError(f"cannot connect to {addr}: no answer in {timeout:g} s") from exc
        except Exception as exc:  # libp2p raises MultiError/SwarmException with nested causes
            raise HostError(f"cannot connect to {addr}: {exc}") from exc
        return pid

    async def _disconnect(self, peer: str) -> None:
        from libp2p.peer.id import ID

        await self._host.disconnect(ID.from_base58(peer))

    async def _ban_now(self, peer: str) -> None:
        from libp2p.peer.id import ID

        pid = ID.from_base58(peer)
        self._pubsub.add_to_blacklist(pid)
        self._statuses.pop(peer, None)
        try:
            await self._host.disconnect(pid)
        except Exception as exc:  # noqa: BLE001
            log.debug("disconnect %s: %s", peer, exc)

    # -- connections and handshake --------------------------------------------------------

    async def _on_connected(self, peer: str) -> None:
        if self.scores.is_banned(peer):
            await self._ban_now(peer)
            return
        try:
            await self._handshake(peer)
        except m.HandshakeRefused as exc:
            log.warning("peer %s refused: %s", peer, exc)
            self.scores.penalize(peer, Offence.WRONG_CHAIN, str(exc))
            await self._ban_now(peer)
        except Exception as exc:  # noqa: BLE001 - the other side's handshake may still work
            log.debug("handshake with %s failed: %s", peer, exc)

    async def _handshake(self, peer: str) -> m.Status:
        local = await trio.to_thread.run_sync(self._status_provider, limiter=self._limiter)
        raw = await self._request(peer, m.STATUS_PROTOCOL, local.encode(), 10.0)
        remote = m.Status.decode(raw)
        m.check_compatible(local, remote)
        await self._accept_status(peer, remote)
        return remote

    async def request_status(self, peer: str) -> m.Status:
        return await self._handshake(peer)

    def status_of(self, peer: str, timeout: float = 10.0) -> m.Status:
        """Ask ``peer`` for its current status (thread-safe, blocking)."""
        return self._call(self._handshake, peer)  # type: ignore[no-any-return]

    async def _accept_status(self, peer: str, status: m.Status) -> None:
        first = peer not in self._statuses
        self._statuses[peer] = status
        if first:
            log.info("peer %s ready: head #%d td %d", peer, status.head_number,
                     status.total_difficulty)
        for fn in self._status_listeners:
            await trio.to_thread.run_sync(fn, peer, status, limiter=self._limiter)

    def _on_disconnected(self, peer: str) -> None:
        if self._statuses.pop(peer, None) is not None:
            log.info("peer %s disconnected", peer)
        for fn in self._disconnect_listeners:
            try:
                fn(peer)
            except Exception:  # noqa: BLE001
                log.exception("disconnect listener failed")

    # -- gossip ---------------------------------------------------------------------------

    def _make_validator(self, topic: str) -> Callable[[Any, Any], Any]:
        handler, max_size = self._topics[topic]

        async def validate(forwarder: Any, msg: Any) -> bool:
            peer = str(forwarder)
            if peer == self.peer_id:
                return True  # our own publish: nothing to check, never handed back to us
            if self.scores.is_banned(peer):
                return False
            data: bytes = msg.data
            if len(data) > max_size:
                self.penalize(peer, Offence.OVERSIZED, f"{len(data)} bytes on {topic}")
                return False
            try:
                verdict = await trio.to_thread.run_sync(handler, peer, data,
                                                        limiter=self._limiter)
            except m.MessageTooLarge as exc:
                verdict = reject(Offence.OVERSIZED, str(exc))
            except m.WireError as exc:
                verdict = reject(Offence.GARBAGE, str(exc))
            except Exception as exc:  # noqa: BLE001 - a bug of ours is not the peer's fault
                log.exception("gossip handler for %s failed", topic)
                verdict = Verdict(False, None, str(exc))
            if verdict.offence is not None:
                self.penalize(peer, verdict.offence, verdict.detail)
            return verdict.accept

        return validate

    # -- request / response ---------------------------------------------------------------

    async def _request(self, peer: str, protocol: str, payload: bytes, timeout: float
                       ) -> bytes:
        from libp2p.peer.id import ID

        stream = None
        try:
            with trio.fail_after(timeout):
                stream = await self._host.new_stream(ID.from_base58(peer), [protocol])
                await stream.write(m.frame(payload, m.MAX_REQUEST_SIZE))
                await stream.close_write()
                n = m.frame_length(await _read_exactly(stream, 4), m.MAX_RESPONSE_SIZE)
                raw = await _read_exactly(stream, n)
        except trio.TooSlowError as exc:
            self.penalize(peer, Offence.TIMEOUT, protocol)
            raise RequestFailed(f"{protocol} to {peer}: timed out after {timeout} s") from exc
        except m.WireError as exc:
            self.penalize(peer, Offence.BAD_RESPONSE, f"{protocol}: {exc}")
            raise RequestFailed(f"{protocol} to {peer}: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - libp2p raises many types
            raise RequestFailed(f"{protocol} to {peer}: {exc!r}") from exc
        finally:
            if stream is not None:
                with trio.move_on_after(1):
                    try:
                        await stream.close()
                    except Exception:  # noqa: BLE001
                        pass
        try:
            return m.decode_response(raw)
        except m.WireError as exc:
            self.penalize(peer, Offence.BAD_RESPONSE, f"{protocol}: {exc}")
            raise RequestFailed(f"{protocol} to {peer}: {exc}") from exc

    def _make_stream_handler(self, protocol: str) -> Callable[[Any], Any]:
        async def handle(stream: Any) -> None:
            peer = str(stream.muxed_conn.peer_id)
            try:
                if self.scores.is_banned(peer):
                    await stream.reset()
                    return
                with trio.fail_after(self.config.request_timeout):
                    limit = (m.MAX_REQUEST_SIZE if protocol == m.STATUS_PROTOCOL
                             else self._services[protocol][1])
                    n = m.frame_length(await _read_exactly(stream, 4), limit)
                    request = await _read_exactly(stream, n)
                code, payload = await self._answer(peer, protocol, request)
                with trio.fail_after(self.config.request_timeout):
                    await stream.write(m.frame(m.encode_response(code, payload),
                                               m.MAX_RESPONSE_SIZE))
                    await stream.close()
            except m.MessageTooLarge as exc:
                self.penalize(peer, Offence.OVERSIZED, f"{protocol}: {exc}")
                await _reset(stream)
            except m.WireError as exc:
                self.penalize(peer, Offence.GARBAGE, f"{protocol}: {exc}")
                await _reset(stream)
            except Exception as exc:  # noqa: BLE001 - the stream died; nothing to answer
                log.debug("%s from %s: %r", protocol, peer, exc)
                await _reset(stream)

        return handle

    async def _answer(self, peer: str, protocol: str, request: bytes) -> tuple[int, bytes]:
        if protocol == m.STATUS_PROTOCOL:
            remote = m.Status.decode(request)
            local = await trio.to_thread.run_sync(self._status_provider, limiter=self._limiter)
            try:
                m.check_compatible(local, remote)
            except m.HandshakeRefused as exc:
                log.warning("peer %s refused: %s", peer, exc)
                self.scores.penalize(peer, Offence.WRONG_CHAIN, str(exc))
                self._call_soon(self._ban_now, peer)
                return m.RESPONSE_INVALID_REQUEST, str(exc).encode()
            await self._accept_status(peer, remote)
            return m.RESPONSE_OK, local.encode()
        handler = self._services[protocol][0]
        try:
            payload = await trio.to_thread.run_sync(handler, peer, request,
                                                    limiter=self._limiter)
            return m.RESPONSE_OK, payload
        except NotFound as exc:
            return m.RESPONSE_NOT_FOUND, str(exc).encode()
        except m.WireError:
            raise
        except Exception as exc:  # noqa: BLE001 - our failure: tell the peer, keep serving
            log.exception("%s handler failed", protocol)
            return m.RESPONSE_SERVER_ERROR, repr(exc).encode()[:200]


async def _read_exactly(stream: Any, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = await stream.read(n - len(buf))
        if not chunk:
            raise m.MalformedMessage(f"stream ended after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


async def _reset(stream: Any) -> None:
    try:
        await stream.reset()
    except Exception:  # noqa: BLE001
        pass


class _Notifee:
    """Connection events from the swarm, handed to the host's own tasks."""

    def __init__(self, host: P2PHost) -> None:
        self._host = host

    async def opened_stream(self, network: Any, stream: Any) -> None:
        pass

    async def closed_stream(self, network: Any, stream: Any) -> None:
        pass

    async def connected(self, network: Any, conn: Any) -> None:
        self._host._call_soon(self._host._on_connected, str(conn.muxed_conn.peer_id))

    async def disconnected(self, network: Any, conn: Any) -> None:
        peer = conn.muxed_conn.peer_id
        if not network.get_connections(peer):
            self._host._on_disconnected(str(peer))

    async def listen(self, network: Any, addr: Any) -> None:
        pass

    async def listen_close(self, network: Any, addr: Any) -> None:
        pass
