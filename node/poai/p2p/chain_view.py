"""The node's chain as P2P sees it: status, lookups, decoding, the pre-import checks and the
import of blocks from the network.  Gossip, serving and sync all go through one `ChainView`
(under the node lock where the chain is read), so none of them needs the others."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import cast

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI
from eth.exceptions import HeaderNotFound
from eth_typing import BlockNumber, Hash32

from poai.chain.chain import PoaiChain
from poai.chain.config import ChainConfig
from poai.consensus.rejection import check_not_in_future
from poai.interfaces import ChainLock, NodeLike
from poai.p2p import messages as m


class RecentHashes:
    """A bounded, thread-safe set of recently seen hashes (oldest forgotten first)."""

    def __init__(self, size: int) -> None:
        self._d: OrderedDict[bytes, None] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def add(self, key: bytes) -> None:
        with self._lock:
            self._d[key] = None
            self._d.move_to_end(key)
            while len(self._d) > self._size:
                self._d.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._d


class ChainView:
    def __init__(self, node: NodeLike) -> None:
        self.node = node
        self.config: ChainConfig = node.config
        self.chain_id: int = node.config.chain_id
        self.from_network = RecentHashes(4096)  # block hashes we got from peers
        self._genesis_hash: bytes | None = None

    @property
    def lock(self) -> ChainLock:
        return self.node.lock

    @property
    def chain(self) -> PoaiChain:
        return cast(PoaiChain, self.node.chain)  # a Node's chain

    def genesis_hash(self) -> bytes:
        if self._genesis_hash is None:
            with self.lock:
                self._genesis_hash = bytes(
                    self.chain.get_canonical_block_header_by_number(BlockNumber(0)).hash)
        return self._genesis_hash

    def head_and_td(self) -> tuple[BlockHeaderAPI, int]:
        with self.lock:
            head = self.node.head()
            return head, int(self.chain.chaindb.get_score(head.hash))

    def local_status(self) -> m.Status:
        head, td = self.head_and_td()
        return m.Status(m.PROTOCOL_VERSION, self.chain_id, self.genesis_hash(), bytes(head.hash),
                        head.block_number, td)

    def has_block(self, block_hash: bytes) -> bool:
        with self.lock:
            try:
                self.chain.get_block_header_by_hash(Hash32(block_hash))
            except HeaderNotFound:
                return False
            return True

    def decode_block(self, raw: bytes, number_hint: int | None = None) -> BlockAPI:
        """A block from its RLP (WireError on garbage)."""
        if number_hint is None:
            try:  # the header is the block's first field, its number the header's ninth
                number_hint = int.from_bytes(rlp.decode(raw)[0][8], "big")
            except Exception as exc:  # noqa: BLE001 - anything undecodable is garbage
                raise m.MalformedMessage(f"block: undecodable ({exc.__class__.__name__})"
                                         ) from exc
        try:
            vm = self.chain.get_vm_class_for_block_number(number_hint)  # type: ignore[arg-type]
            cls = vm.get_block_class()
            block: BlockAPI = rlp.decode(raw, sedes=cls)
        except Exception as exc:  # noqa: BLE001
            raise m.MalformedMessage(f"block: undecodable ({exc.__class__.__name__})") from exc
        return block

    def check_timestamp(self, header: BlockHeaderAPI) -> None:
        """BlockRejected(FUTURE_TIMESTAMP) for a header ahead of our clock (the VM's rule)."""
        check_not_in_future(header, self.config.max_future_drift)

    def verify_seal(self, header: BlockHeaderAPI) -> None:
        """The header's seal, outside the node lock (a forward pass); remembered for import."""
        self.chain.consensus_context.check_seal(header, chain_lock=self.lock)

    def import_block(self, block: BlockAPI) -> None:
        """Node.import_block for a block from the network (so it is not re-announced)."""
        self.from_network.add(bytes(block.hash))
        self.node.import_block(block)
