"""Serving: headers and blocks by range and by hash, and expert blobs by hash, to peers; and
fetching a blob we lack from them."""

from __future__ import annotations

import hashlib

import rlp
from eth.exceptions import BlockNotFound, HeaderNotFound
from eth_typing import BlockNumber, Hash32

from poai.interfaces import NodeLike
from poai.model.store import BlobError
from poai.p2p import messages as m
from poai.p2p.chain_view import ChainView
from poai.p2p.host import NotFound, P2PHost, RequestFailed
from poai.p2p.peers import Offence

MAX_RESPONSE_BYTES = 8 * 1024 * 1024  # stop adding blocks to a response past this


class Serving:
    def __init__(self, node: NodeLike, view: ChainView, host: P2PHost) -> None:
        self.node = node
        self.view = view
        self.host = host
        host.serve(m.HEADERS_BY_RANGE_PROTOCOL, self._serve_headers_by_range)
        host.serve(m.HEADERS_BY_HASH_PROTOCOL, self._serve_headers_by_hash)
        host.serve(m.BLOCKS_BY_RANGE_PROTOCOL, self._serve_blocks_by_range)
        host.serve(m.BLOCKS_BY_HASH_PROTOCOL, self._serve_blocks_by_hash)
        host.serve(m.BLOB_BY_HASH_PROTOCOL, self._serve_blob)

    def _serve_headers_by_range(self, peer: str, request: bytes) -> bytes:
        req = m.RangeRequest.decode(request, m.MAX_HEADERS_PER_REQUEST)
        out: list[bytes] = []
        with self.node.lock:
            head = self.node.head().block_number
            for n in range(req.start, min(req.start + req.count, head + 1)):
                out.append(rlp.encode(self.view.chain.get_canonical_block_header_by_number(BlockNumber(n))))
        if not out:
            raise NotFound(f"no canonical header #{req.start} (head #{head})")
        return m.encode_items(out)

    def _serve_headers_by_hash(self, peer: str, request: bytes) -> bytes:
        out: list[bytes] = []
        with self.node.lock:
            for h in m.decode_hashes(request):
                try:
                    out.append(rlp.encode(self.view.chain.get_block_header_by_hash(Hash32(h))))
                except HeaderNotFound:
                    continue
        if not out:
            raise NotFound("none of the headers is known")
        return m.encode_items(out)

    def _serve_blocks_by_range(self, peer: str, request: bytes) -> bytes:
        req = m.RangeRequest.decode(request, m.MAX_BLOCKS_PER_REQUEST)
        out: list[bytes] = []
        size = 0
        with self.node.lock:
            head = self.node.head().block_number
            for n in range(req.start, min(req.start + req.count, head + 1)):
                raw = rlp.encode(self.view.chain.get_canonical_block_by_number(BlockNumber(n)))
                out.append(raw)
                size += len(raw)
                if size > MAX_RESPONSE_BYTES:
                    break
        if not out:
            raise NotFound(f"no canonical block #{req.start} (head #{head})")
        return m.encode_items(out)

    def _serve_blocks_by_hash(self, peer: str, request: bytes) -> bytes:
        out: list[bytes] = []
        size = 0
        with self.node.lock:
            for h in m.decode_hashes(request):
                try:
                    raw = rlp.encode(self.view.chain.get_block_by_hash(Hash32(h)))
                except (HeaderNotFound, BlockNotFound):
                    continue
                out.append(raw)
                size += len(raw)
                if size > MAX_RESPONSE_BYTES:
                    break
        if not out:
            raise NotFound("none of the blocks is known")
        return m.encode_items(out)

    def _serve_blob(self, peer: str, request: bytes) -> bytes:
        digest = m.decode_blob_request(request)
        store = self.node.blob_store
        try:
            if not store.has(digest):
                raise NotFound(f"no blob {digest}")
            data: bytes = store.get(digest)
        except BlobError as exc:
            raise NotFound(str(exc)) from exc
        return data

    def fetch_blob(self, digest: str, timeout: float = 60.0) -> bytes:
        """An expert blob from any peer that has it, hash-checked and put in our store."""
        want = m.decode_blob_request(bytes.fromhex(digest))
        for peer in list(self.host.peers()):
            try:
                data = self.host.request(peer, m.BLOB_BY_HASH_PROTOCOL,
                                         m.encode_blob_request(want), timeout)
            except (RequestFailed, m.ResponseError):
                continue
            if hashlib.sha256(data).hexdigest() != want:
                self.host.penalize(peer, Offence.BAD_RESPONSE, f"blob {want} hash mismatch")
                continue
            self.node.blob_store.put(data)
            return data
        raise NotFound(f"no peer served blob {want}")
