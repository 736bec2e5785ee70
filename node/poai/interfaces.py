"""The typed ports through which `poai.node.Node` composes its parts and its services reach it.

Node holds one object per port and calls only what the port names: the transaction pool
(`TxPoolLike`, `poai.txpool.pool.TxPool`), the network (`Network`, `poai.p2p.service.
P2PService`, optional) and the epoch-asset source (`poai.chain.epochs.EpochAssetSource`).
Services (RPC, P2P, and the coming inference and market workers) see the node through
`NodeLike`, so a test can stand in for it without a real chain.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from eth.abc import BlockAPI, BlockHeaderAPI, ChainAPI, SignedTransactionAPI, StateAPI

if TYPE_CHECKING:
    from poai.chain.config import ChainConfig
    from poai.importer import NodeEvent
    from poai.model.store import BlobStore
    from poai.quiz.context import QuizContext


class ChainLock(Protocol):
    """Node.lock (a threading.RLock)."""

    def acquire(self, blocking: bool = ..., timeout: float = ...) -> bool: ...
    def release(self) -> None: ...
    def __enter__(self) -> bool: ...
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None, /,
    ) -> None: ...


class TxPoolLike(Protocol):
    def add(self, tx: SignedTransactionAPI) -> bytes: ...
    def get(self, tx_hash: bytes) -> SignedTransactionAPI | None: ...
    def select(self, base_fee: int, gas_limit: int) -> list[SignedTransactionAPI]: ...
    def on_new_head(
        self, included: list[SignedTransactionAPI], dropped: list[SignedTransactionAPI]
    ) -> None: ...
    def pending_nonce(self, sender: bytes) -> int | None: ...
    def status(self) -> dict[str, int]: ...
    def content(self) -> dict[str, dict[bytes, dict[int, SignedTransactionAPI]]]: ...


class SyncProgress(TypedDict):
    """eth_syncing's numbers (`poai.p2p.sync.Syncer.progress`)."""

    syncing: bool
    startingBlock: int
    currentBlock: int
    highestBlock: int


class Network(Protocol):
    """The peer-to-peer network a node may run (`poai.p2p.service.P2PService`)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def listen_addrs(self) -> list[str]: ...
    def on_failure(self, fn: Callable[[BaseException], None]) -> None: ...  # it died running
    def peer_count(self) -> int: ...
    def peers_info(self) -> list[dict[str, Any]]: ...
    def sync_progress(self) -> SyncProgress | None: ...  # None: this network does not sync
    def fetch_blob(self, digest: str) -> bytes: ...  # an expert blob from a peer, stored


class MiningStatsLike(Protocol):
    @property
    def mining(self) -> bool: ...
    @property
    def hashrate(self) -> float: ...
    @property
    def blocks_mined(self) -> int: ...
    @property
    def last_seals(self) -> list[Any]: ...  # poai.node.SealRecord, newest first


class NodeLike(Protocol):
    """The part of `poai.node.Node` services use."""

    @property
    def chain(self) -> ChainAPI: ...
    @property
    def txpool(self) -> TxPoolLike: ...
    @property
    def lock(self) -> ChainLock: ...  # serialises every chain access
    @property
    def config(self) -> ChainConfig: ...
    @property
    def coinbase(self) -> bytes: ...
    @property
    def mine(self) -> bool: ...
    @property
    def contracts(self) -> dict[str, bytes]: ...  # governance contracts in genesis
    @property
    def network(self) -> Network | None: ...  # None: no networking
    @property
    def blob_store(self) -> BlobStore: ...  # expert blobs this node has (and serves)
    @property
    def dev(self) -> Any: ...  # poai.devmode.DevMode on a `--dev` node, else None

    def head(self) -> BlockHeaderAPI: ...
    def state_at_head(self) -> StateAPI: ...
    def submit_raw_transaction(self, raw: bytes, *, local: bool = True) -> bytes: ...
    def import_block(self, block: BlockAPI) -> object: ...  # raises ValidationError
    def mining_stats(self) -> MiningStatsLike: ...
    def current_quiz(self) -> QuizContext: ...
    def epoch_governance(self, seed_hash: bytes) -> dict[str, Any] | None: ...  # model/gate
    def add_listener(self, fn: Callable[[NodeEvent], None]) -> None: ...
    def note_activity(self) -> None: ...  # an RPC request arrived (the miner yields)
    def rewind_to(self, header: BlockHeaderAPI) -> tuple[BlockAPI, ...]: ...  # dev: evm_revert


NetworkFactory = Callable[[Any], Network]  # builds the network of a started node
