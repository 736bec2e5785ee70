"""Expert blobs by hash between real P2PServices on 127.0.0.1 (issue 5, point 2): a genesis
expert travels and lands hash-checked in the requester's BlobStore; an unknown digest is a quick
not-found; a peer serving bytes that do not hash to the digest is penalised and nothing is kept."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from poai.model.genesis import genesis_manifest_hash, genesis_store
from poai.p2p import messages as m
from poai.p2p.host import NotFound, P2PHost
from poai.p2p.peers import Offence
from support.p2p_helpers import HostFactory, connect, wait_for

NodeFactory = Callable[..., tuple[Any, Any]]
FETCH_TIMEOUT = 5.0  # per peer; every fetch below must end well inside it
pytestmark = pytest.mark.timeout(60)  # a hang fails the test instead of the suite


def genesis_expert() -> tuple[str, bytes]:
    """The first expert of the committed genesis model: its digest and bytes."""
    store = genesis_store()
    manifest = json.loads(store.get(genesis_manifest_hash()))
    digest: str = manifest["experts"][0][0]
    return digest, store.get(digest)


def serving_pair(make_node: NodeFactory) -> tuple[Any, Any, Any, Any]:
    """Node a holds the expert in its BlobStore; node b is connected to it and lacks it."""
    a, sa = make_node()
    b, sb = make_node(peers=sa.host.full_addrs())
    wait_for(lambda: sa.host.peer_id in sb.host.peers() and sb.host.peer_id in sa.host.peers(),
             what="handshake")
    return a, sa, b, sb


def test_genesis_expert_fetched_by_hash_lands_in_store(make_node: NodeFactory) -> None:
    digest, data = genesis_expert()
    a, sa, b, sb = serving_pair(make_node)
    assert a.blob_store.put(data) == digest
    assert not b.blob_store.has(digest)

    got = sb.fetch_blob(digest, timeout=FETCH_TIMEOUT)

    assert got == data and hashlib.sha256(got).hexdigest() == digest
    assert b.blob_store.get(digest) == data  # re-hashed by the store on read
    assert sb.host.scores.last_offence(sa.host.peer_id) is None


def test_unknown_digest_is_a_quick_not_found(make_node: NodeFactory) -> None:
    _, sa, b, sb = serving_pair(make_node)
    unknown = hashlib.sha256(b"no such expert").hexdigest()

    t0 = time.monotonic()
    with pytest.raises(NotFound, match=unknown):
        sb.fetch_blob(unknown, timeout=FETCH_TIMEOUT)
    assert time.monotonic() - t0 < FETCH_TIMEOUT  # answered, not timed out
    # On the wire it is a not-found answer, and an honest one: the server keeps its score.
    with pytest.raises(m.ResponseError) as err:
        sb.host.request(sa.host.peer_id, m.BLOB_BY_HASH_PROTOCOL,
                        m.encode_blob_request(unknown), FETCH_TIMEOUT)
    assert err.value.code == m.RESPONSE_NOT_FOUND
    assert sb.host.scores.last_offence(sa.host.peer_id) is None
    assert not b.blob_store.has(unknown)


def test_malformed_digest_is_refused(make_node: NodeFactory) -> None:
    _, _, _, sb = serving_pair(make_node)
    with pytest.raises(m.MalformedMessage, match="32-byte sha256"):
        sb.fetch_blob("ab" * 31, timeout=FETCH_TIMEOUT)
    with pytest.raises(ValueError):
        sb.fetch_blob("not hex", timeout=FETCH_TIMEOUT)


def test_corrupted_blob_rejected_and_server_penalised(make_node: NodeFactory,
                                                      make_host: HostFactory) -> None:
    digest, data = genesis_expert()
    b, sb = make_node()
    corrupted = bytes([data[0] ^ 1]) + data[1:]
    asked: list[str] = []

    def serve_corrupted(peer: str, request: bytes) -> bytes:
        asked.append(m.decode_blob_request(request))
        return corrupted

    def setup(h: P2PHost) -> None:
        h.serve(m.BLOB_BY_HASH_PROTOCOL, serve_corrupted)

    liar = make_host(sb.local_status(), setup=setup)  # same chain, so the handshake passes
    connect(sb.host, liar)

    with pytest.raises(NotFound):
        sb.fetch_blob(digest, timeout=FETCH_TIMEOUT)
    assert asked == [digest]  # the liar was asked and answered: its bytes were refused
    assert not b.blob_store.has(digest)
    assert hashlib.sha256(corrupted).hexdigest() not in b.blob_store.digests()
    assert sb.host.scores.last_offence(liar.peer_id) is Offence.BAD_RESPONSE
    assert sb.host.scores.score(liar.peer_id) == pytest.approx(
        -Offence.BAD_RESPONSE.penalty, abs=0.5)
