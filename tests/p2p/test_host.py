"""Layer 1: real libp2p hosts on 127.0.0.1 in one process (each in its own trio thread)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from poai.p2p import messages as m
from poai.p2p.host import (
    ACCEPT,
    HostError,
    NotFound,
    P2PHost,
    RequestFailed,
    Verdict,
    load_or_create_node_key,
    peer_id_from_seed,
)
from poai.p2p.peers import Offence
from support.p2p_helpers import CHAIN_STATUS, HostFactory, connect, meshed, wait_for

TOPIC = "/poai/7/test/1"
CHAIN = [i.to_bytes(2, "big") * 20 for i in range(300)]  # stands in for encoded blocks 0..299


class Inbox:
    """A gossip handler that decodes with messages.py (garbage raises) and records."""

    def __init__(self) -> None:
        self.items: list[tuple[str, list[bytes]]] = []
        self.lock = threading.Lock()

    def __call__(self, peer: str, data: bytes) -> Verdict:
        txs = m.decode_transactions(data)
        with self.lock:
            self.items.append((peer, txs))
        return ACCEPT

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [t for _, txs in self.items for t in txs]


def serve_range(peer: str, request: bytes) -> bytes:
    req = m.RangeRequest.decode(request, m.MAX_BLOCKS_PER_REQUEST)
    if req.start >= len(CHAIN):
        raise NotFound(f"no block {req.start}")
    return m.encode_items(CHAIN[req.start:req.start + req.count])


def with_services(inbox: Inbox | None = None) -> Any:
    def setup(h: P2PHost) -> None:
        h.subscribe(TOPIC, inbox or Inbox())
        h.serve(m.BLOCKS_BY_RANGE_PROTOCOL, serve_range)
    return setup


def test_node_key_is_persistent(tmp_path: Path, make_host: HostFactory) -> None:
    seed = load_or_create_node_key(tmp_path)
    assert load_or_create_node_key(tmp_path) == seed
    assert (tmp_path / "p2p" / "nodekey").stat().st_mode & 0o777 == 0o600
    h = make_host(datadir=tmp_path)
    assert h.peer_id == peer_id_from_seed(seed)
    (tmp_path / "bad" / "p2p").mkdir(parents=True)
    (tmp_path / "bad" / "p2p" / "nodekey").write_text("abcd\n")
    with pytest.raises(HostError):
        load_or_create_node_key(tmp_path / "bad")


def test_only_noise_is_offered(make_host: HostFactory) -> None:
    h = make_host()
    secure = h._host.get_network().upgrader.security_multistream.transports  # noqa: SLF001
    assert list(secure) == ["/noise"]


def test_handshake_and_wrong_chain_refused(make_host: HostFactory) -> None:
    a, b = make_host(), make_host()
    connect(a, b)
    assert a.peers()[b.peer_id] == CHAIN_STATUS
    other_chain = m.Status(m.PROTOCOL_VERSION, 8, b"\x11" * 32, b"\x22" * 32, 5, 100)
    c = make_host(other_chain)
    try:
        c.connect(a.full_addrs()[0])
    except HostError:
        pass
    wait_for(lambda: a.scores.is_banned(c.peer_id), what="wrong chain banned")
    wait_for(lambda: c.peer_id not in a.connected_peers(), what="wrong chain disconnected")
    assert c.peer_id not in a.peers() and a.peer_id not in c.peers()
    with pytest.raises(HostError):  # and it cannot come back while banned
        a.connect(c.full_addrs()[0])


def test_mdns_discovers_peers_only_when_enabled(make_host: HostFactory) -> None:
    """Two hosts with mDNS on find each other with no static peer; a host with it off (the
    default) is neither found nor finds anyone."""
    quiet = make_host()
    a, b = make_host(mdns=True), make_host(mdns=True)
    wait_for(lambda: b.peer_id in a.peers() and a.peer_id in b.peers(), timeout=30,
             what="mDNS discovery and handshake")
    assert a.peers()[b.peer_id] == CHAIN_STATUS  # a full status handshake, not just a dial
    time.sleep(2.0)  # several maintenance rounds of a and b
    assert quiet.peers() == {}
    assert quiet.peer_id not in a.peers() and quiet.peer_id not in b.peers()


def test_gossip_reaches_every_peer_but_not_the_publisher(make_host: HostFactory) -> None:
    inboxes = [Inbox() for _ in range(3)]
    a, b, c = (make_host(setup=with_services(i)) for i in inboxes)
    connect(a, b)
    connect(b, c)  # a line: a's messages reach c only through b's forwarding
    meshed(a, b, TOPIC)
    meshed(b, c, TOPIC)
    sent = [i.to_bytes(4, "big") for i in range(200)]
    for i in range(0, 200, 4):  # a burst well above the 32-message default queues
        a.publish(TOPIC, m.encode_transactions(sent[i:i + 4]))
    wait_for(lambda: len(inboxes[2].payloads()) == 200, what="all gossip at c")
    wait_for(lambda: len(inboxes[1].payloads()) == 200, what="all gossip at b")
    assert sorted(inboxes[2].payloads()) == sent
    assert inboxes[0].payloads() == []  # own publishes are filtered out
    assert {p for p, _ in inboxes[2].items} == {b.peer_id}  # scored per forwarder


def test_request_ranges(make_host: HostFactory) -> None:
    a, b = make_host(setup=with_services()), make_host(setup=with_services())
    connect(a, b)
    got = m.decode_items(
        a.request(b.peer_id, m.BLOCKS_BY_RANGE_PROTOCOL, m.RangeRequest(10, 100).encode()),
        m.MAX_BLOCKS_PER_REQUEST)
    assert got == CHAIN[10:110]
    tail = m.decode_items(
        a.request(b.peer_id, m.BLOCKS_BY_RANGE_PROTOCOL, m.RangeRequest(290, 50).encode()), 128)
    assert tail == CHAIN[290:]
    with pytest.raises(m.ResponseError) as err:
        a.request(b.peer_id, m.BLOCKS_BY_RANGE_PROTOCOL, m.RangeRequest(1000, 1).encode())
    assert err.value.code == m.RESPONSE_NOT_FOUND
    with pytest.raises(RequestFailed):  # a protocol b does not speak
        a.request(b.peer_id, "/poai/nothing/1", b"")


def test_garbage_gossip_lowers_score_until_disconnect(make_host: HostFactory) -> None:
    inbox = Inbox()
    a = make_host(setup=with_services(inbox))
    hostile = make_host(setup=with_services())
    connect(hostile, a)
    meshed(hostile, a, TOPIC)
    hostile.publish(TOPIC, m.encode_transactions([b"good"]))
    wait_for(lambda: inbox.payloads() == [b"good"], what="valid gossip")
    hostile.publish(TOPIC, b"\xffgarbage")
    wait_for(lambda: a.scores.score(hostile.peer_id) < 0, what="score drop")
    assert a.peer_id in hostile.connected_peers()  # one offence is not yet a ban
    for _ in range(4):
        hostile.publish(TOPIC, b"\xffgarbage")
    wait_for(lambda: a.scores.is_banned(hostile.peer_id), what="ban")
    wait_for(lambda: hostile.peer_id not in a.connected_peers(), what="disconnect")
    assert inbox.payloads() == [b"good"]


def test_oversized_gossip_is_rejected(make_host: HostFactory) -> None:
    inbox = Inbox()
    a = make_host(setup=with_services(inbox))
    hostile = make_host(setup=with_services())
    connect(hostile, a)
    meshed(hostile, a, TOPIC)
    hostile.publish(TOPIC, b"\x00" * (m.MAX_GOSSIP_SIZE + 10))
    wait_for(lambda: a.scores.score(hostile.peer_id) <= -Offence.OVERSIZED.penalty + 1,
             what="oversize penalty")
    for _ in range(2):  # the score decays a little between offences: a third one bans
        hostile.publish(TOPIC, b"\x00" * (m.MAX_GOSSIP_SIZE + 10))
    wait_for(lambda: hostile.peer_id not in a.connected_peers(), what="disconnect")
    assert inbox.payloads() == []


async def _send_raw(host: P2PHost, peer: str, protocol: str, raw: bytes) -> None:
    from libp2p.peer.id import ID

    stream = await host._host.new_stream(ID.from_base58(peer), [protocol])  # noqa: SLF001
    try:
        await stream.write(raw)
        await stream.close_write()
        await stream.read(10)
    except Exception:  # noqa: BLE001 - the server resets the stream
        pass


def test_oversized_and_garbage_requests_are_penalised(make_host: HostFactory) -> None:
    a = make_host(setup=with_services())
    hostile = make_host(setup=with_services())
    connect(hostile, a)
    oversized = (m.MAX_REQUEST_SIZE + 1).to_bytes(4, "big") + b"\x00" * 64
    hostile._call(_send_raw, hostile, a.peer_id, m.BLOCKS_BY_RANGE_PROTOCOL, oversized)  # noqa: SLF001
    wait_for(lambda: a.scores.score(hostile.peer_id) < 0, what="oversize penalty")
    garbage = m.frame(b"\xff\xfe", 100)
    hostile._call(_send_raw, hostile, a.peer_id, m.BLOCKS_BY_RANGE_PROTOCOL, garbage)  # noqa: SLF001
    hostile._call(_send_raw, hostile, a.peer_id, m.BLOCKS_BY_RANGE_PROTOCOL, garbage)  # noqa: SLF001
    wait_for(lambda: hostile.peer_id not in a.connected_peers(), what="disconnect")
    assert a.scores.is_banned(hostile.peer_id)


def test_lost_static_peer_is_redialled(make_host: HostFactory, tmp_path: Path) -> None:
    b = make_host(datadir=tmp_path / "b")
    port = int(b.listen_addrs[0].rsplit("/", 1)[1])
    addr = b.full_addrs()[0]
    a = make_host(static_peers=[addr], redial_interval=0.5)
    wait_for(lambda: b.peer_id in a.peers(), what="first connection")
    b.stop()
    wait_for(lambda: b.peer_id not in a.connected_peers(), what="loss noticed")
    time.sleep(1.0)  # let a redial fail at least once (negative dial cache)
    b2 = make_host(datadir=tmp_path / "b", port=port)
    assert b2.peer_id == b.peer_id  # same key, same id
    wait_for(lambda: b2.peer_id in a.peers(), timeout=30, what="redial")


def test_bad_peer_address_is_a_clear_error(make_host: HostFactory) -> None:
    a = make_host()
    with pytest.raises(HostError, match="bad peer multiaddr"):
        a.connect("/ip4/127.0.0.1/tcp/1")


def test_dial_to_nobody_is_one_line_error(make_host: HostFactory) -> None:
    """A dial that fails is a HostError naming the address, not libp2p's nested MultiError."""
    a, b = make_host(), make_host()
    addr = b.full_addrs()[0]
    b.stop()
    with pytest.raises(HostError, match=r"cannot connect to /ip4/127\.0\.0\.1/tcp/"):
        a.connect(addr, timeout=5.0)


def test_a_crashed_libp2p_service_is_reported_once(make_host: HostFactory) -> None:
    """A task failing in the host's nursery ends the libp2p service: the owner is told (the
    CLI then stops the node with one line), instead of a node that runs on without peers."""
    import threading

    h = make_host()
    told: list[BaseException] = []
    seen = threading.Event()

    def crashed(exc: BaseException) -> None:
        told.append(exc)
        seen.set()

    h.on_crash = crashed

    async def fails() -> None:
        raise RuntimeError("injected failure in a libp2p task")

    h._call_soon(fails)  # noqa: SLF001 - runs in the host's own nursery, as libp2p tasks do
    assert seen.wait(10)
    assert len(told) == 1 and "injected failure" in repr(told[0])
    with pytest.raises(HostError):
        h.connect("/ip4/127.0.0.1/tcp/1/p2p/12D3KooWEYm4oMwo1at3RLm4dzDQCqg5T2zaerhCcwHaHi5iiFzq")
