"""What every handler gets: the node, block-id resolution and cached chain reads.

Handlers run in a worker thread while holding ``node.lock`` (see server.py), so the chain
database is never touched concurrently with block import or mining.

A block and its receipts never change once stored under their hash, so decoded blocks and
formatted receipts are kept per block hash: a client polling eth_getTransactionReceipt for
each of a block's N transactions would otherwise decode and format all N receipts N times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal, overload

from eth.abc import BlockAPI, BlockHeaderAPI, ChainAPI, ReceiptAPI
from eth.exceptions import BlockNotFound, HeaderNotFound, TransactionNotFound
from lru import LRU

from poai.importer import NewHead, NodeEvent
from poai.interfaces import NodeLike
from poai.rpc import format
from poai.rpc.errors import InvalidParams, ServerError
from poai.rpc.execution import CallStates
from poai.rpc.hexutil import parse_hash, parse_qty

BLOCK_CACHE_SIZE = 64  # decoded blocks and formatted receipts kept, by block hash
TX_LOCATION_CACHE_SIZE = 32_768  # transaction hash -> (header, index) of recent lookups

BLOCK_TAGS = ("latest", "earliest", "pending", "safe", "finalized")


class RpcContext:
    def __init__(self, node: NodeLike, *, client_version: str, accounts: tuple[bytes, ...] = ()
                 ) -> None:
        self.node = node
        self.client_version = client_version
        self.accounts = accounts
        self.filters: Any = None  # set by the server (poai.rpc.filters.FilterManager)
        self.method_names: Callable[[], Iterable[str]] = tuple  # set by the server: rpc_modules
        self._blocks: Any = LRU(BLOCK_CACHE_SIZE)  # block hash -> BlockAPI
        self._receipts_json: Any = LRU(BLOCK_CACHE_SIZE)  # block hash -> [receipt JSON]
        self._receipts: Any = LRU(BLOCK_CACHE_SIZE)  # block hash -> receipts (new heads')
        self._log_offsets: Any = LRU(BLOCK_CACHE_SIZE)  # block hash -> logs before each receipt
        # Where a canonical transaction is: filled a whole block at a time on the first lookup
        # into it (a client polls every receipt of a block it filled), dropped on any reorg.
        self._tx_locations: Any = LRU(TX_LOCATION_CACHE_SIZE)
        self._reorgs = 0
        self.call_states = CallStates()  # eth_call / eth_estimateGas states per block hash

    @property
    def chain(self) -> ChainAPI:
        return self.node.chain

    @property
    def chain_id(self) -> int:
        return int(self.node.config.chain_id)

    def transaction_builder(self) -> Any:
        """The transaction builder `Node.submit_raw_transaction` decodes with (the head's VM)."""
        config: tuple[Any, ...] = getattr(self.chain, "vm_configuration", ())
        if len(config) == 1:  # one VM from genesis on (PoAI): no need to wait for the lock
            return config[0][1].get_transaction_builder()
        with self.node.lock:
            return self.chain.get_vm_class(self.node.head()).get_transaction_builder()

    def header_by_number(self, number: int) -> BlockHeaderAPI | None:
        try:
            return self.chain.get_canonical_block_header_by_number(number)  # type: ignore[arg-type]
        except HeaderNotFound:
            return None

    def header_by_hash(self, block_hash: bytes) -> BlockHeaderAPI | None:
        try:
            return self.chain.get_block_header_by_hash(block_hash)  # type: ignore[arg-type]
        except (HeaderNotFound, BlockNotFound):
            return None

    @overload
    def resolve_block(self, block_id: Any, *, required: Literal[True] = True) -> BlockHeaderAPI:
        ...

    @overload
    def resolve_block(self, block_id: Any, *, required: bool) -> BlockHeaderAPI | None: ...

    def resolve_block(self, block_id: Any, *, required: bool = True) -> BlockHeaderAPI | None:
        """A block tag, a number, or an EIP-1898 object; unknown blocks give None or an error.

        "pending" reads the head's state (the pool's nonces are added where geth adds them);
        without finality "safe" and "finalized" are the head, as anvil answers.
        """
        header: BlockHeaderAPI | None
        if block_id is None or block_id in ("latest", "pending", "safe", "finalized"):
            return self.node.head()
        if block_id == "earliest":
            header = self.header_by_number(0)
        elif isinstance(block_id, dict):
            if "blockHash" in block_id:
                header = self.header_by_hash(parse_hash(block_id["blockHash"], "blockHash"))
                if header is not None and block_id.get("requireCanonical"):
                    canonical = self.header_by_number(header.block_number)
                    if canonical is None or canonical.hash != header.hash:
                        raise ServerError(f"hash {block_id['blockHash']} is not currently "
                                          "canonical")
            elif "blockNumber" in block_id:
                return self.resolve_block(block_id["blockNumber"], required=required)
            else:
                raise InvalidParams("invalid block object: need blockHash or blockNumber")
        elif isinstance(block_id, str) and block_id.startswith("0x") and len(block_id) == 66:
            header = self.header_by_hash(parse_hash(block_id))
        elif isinstance(block_id, str) and not block_id.startswith("0x"):
            raise InvalidParams(f"invalid block tag {block_id!r}")
        else:
            header = self.header_by_number(parse_qty(block_id, "block number"))
        if header is None and required:
            raise ServerError("header not found")
        return header

    def block(self, header: BlockHeaderAPI) -> BlockAPI:
        block: BlockAPI | None = self._blocks.get(header.hash)
        if block is None:
            block = self._blocks[header.hash] = self.chain.get_block_by_header(header)
        return block

    def on_node_event(self, event: NodeEvent) -> None:
        """Keep a new head's block, and its receipts when the event already holds them (our
        own mined block): the first receipt poll then reads neither back (on the node's
        thread: references only, no work)."""
        if not isinstance(event, NewHead):
            return
        block = event.block
        if event.removed_blocks:
            self._reorgs += 1
            self._tx_locations.clear()
        self._blocks[block.hash] = block
        known = event.known_receipts
        if known is not None and len(known) == len(block.transactions):
            self._receipts[block.hash] = known

    def receipts(self, header: BlockHeaderAPI) -> tuple[ReceiptAPI, ...]:
        known = self._receipts.get(header.hash)
        if known is not None:
            return known  # type: ignore[no-any-return]
        vm_class = self.chain.get_vm_class(header)
        out = tuple(self.chain.chaindb.get_receipts(header, vm_class.get_receipt_builder()))
        self._receipts[header.hash] = out
        return out

    def locate_transaction(self, tx_hash: bytes) -> tuple[BlockHeaderAPI, int] | None:
        """(header, index) of a canonical transaction, None if it is in no canonical block."""
        hit = self._tx_locations.get(tx_hash)
        if hit is not None:
            return hit  # type: ignore[no-any-return]
        reorgs = self._reorgs
        try:
            number, index = self.chain.chaindb.get_transaction_index(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        header = self.header_by_number(number)
        if header is None:
            return None
        block = self.block(header)
        if index >= len(block.transactions) or block.transactions[index].hash != tx_hash:
            return None  # py-evm keeps the lookup of a transaction a reorg took out
        if reorgs == self._reorgs:  # no reorg since the lookup: the whole block is canonical
            for i, tx in enumerate(block.transactions):
                self._tx_locations[tx.hash] = (header, i)
        return header, index

    def receipt_json(self, header: BlockHeaderAPI, index: int) -> dict[str, Any]:
        """One transaction's receipt, as in receipts_json (formatted alone unless the whole
        block's are cached)."""
        whole = self._receipts_json.get(header.hash)
        if whole is not None:
            return whole[index]  # type: ignore[no-any-return]
        receipts = self.receipts(header)
        offsets = self._log_offsets.get(header.hash)
        if offsets is None:
            offsets = [0]
            for r in receipts:
                offsets.append(offsets[-1] + len(r.logs))
            self._log_offsets[header.hash] = offsets
        return format.receipt_json(self.block(header), receipts, index, log_index=offsets[index])

    def receipts_json(self, header: BlockHeaderAPI,
                      receipts: tuple[ReceiptAPI, ...] | None = None) -> list[dict[str, Any]]:
        """The block's receipts as eth_getBlockReceipts returns them (shared: do not mutate).
        ``receipts`` saves the trie reads when the caller has them (a NewHead event)."""
        out: list[dict[str, Any]] | None = self._receipts_json.get(header.hash)
        if out is None:
            out = format.receipts_json(self.block(header),
                                       receipts if receipts is not None
                                       else self.receipts(header))
            self._receipts_json[header.hash] = out
        return out

    def total_difficulty(self, header: BlockHeaderAPI) -> int | None:
        try:
            return int(self.chain.get_score(header.hash))
        except (HeaderNotFound, KeyError):
            return None
