"""The PoAI chain class and its genesis.

`chain_class_for(config)` binds a ChainConfig to py-evm classes: the PoaiVM (quiz seal, subsidy,
fixed gas limit, difficulty retarget) from block 0, the chain id, and a consensus context whose
quiz source reads epoch seeds from this chain's own headers.  Fork choice is py-evm's: the
canonical head is the block with the greatest score, and the score of a block is the sum of the
difficulties of its ancestry (HeaderDB adds `difficulty` when it is non-zero), i.e. greatest
total difficulty; ties keep the first-seen head.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eth.abc import AtomicDatabaseAPI, BlockAPI, BlockHeaderAPI, StateAPI
from eth.chains.base import Chain
from eth.constants import ZERO_ADDRESS, ZERO_HASH32
from eth.exceptions import HeaderNotFound
from eth.typing import AccountState
from eth.vm.forks.cancun.constants import BEACON_ROOTS_ADDRESS, BEACON_ROOTS_CONTRACT_CODE
from eth.vm.forks.prague.constants import HISTORY_STORAGE_ADDRESS, HISTORY_STORAGE_CONTRACT_CODE
from eth_utils.exceptions import ValidationError

from poai.chain import ordered_trie
from poai.chain.computation import PoaiComputation
from poai.chain.config import ChainConfig, config_contracts
from poai.chain.epochs import EpochAssetSource, EpochQuizContexts
from poai.chain.governed import GovernedEpochAssets, SeedStateUnavailable
from poai.chain.inference import SnapshotModels
from poai.chain.vm import ZERO_NONCE, PoaiVM
from poai.compat import check_versions
from poai.compat import pyevm as compat_pyevm
from poai.compat.pyevm import validate_imported_block_unchanged
from poai.consensus.engine import QuizConsensusContext
from poai.consensus.rejection import BlockRejected, Rejection


def install_library_patches(allow_untested: bool | None = None) -> None:
    """Call once at node start (the CLI, `Node.start`, benchmarks, the test session), before
    building or importing blocks: refuse library versions this node was not tested with
    (poai.compat.check_versions), then make py-evm's block building, import and persistence
    build ordered tries in one pass (same roots as py-trie, see poai.chain.ordered_trie):
    about 40% of a block of transfers otherwise."""
    check_versions(allow_untested)
    compat_pyevm.install(ordered_trie.make_trie_root_and_nodes)


# EIP-4788 and EIP-2935 system contracts, deployed at genesis as on mainnet (nonce 1), so the
# block pre-processing system calls run and contracts can read beacon roots / old block hashes.
SYSTEM_CONTRACTS: dict[bytes, bytes] = {
    bytes(BEACON_ROOTS_ADDRESS): BEACON_ROOTS_CONTRACT_CODE,
    bytes(HISTORY_STORAGE_ADDRESS): HISTORY_STORAGE_CONTRACT_CODE,
}


class PoaiChain(Chain):
    config: ClassVar[ChainConfig] = None  # type: ignore[assignment]
    # Shared by every chain object of a class (a node's main chain and its block templates),
    # so each epoch's governance reading is made once.  None: genesis assets only.
    epoch_assets: ClassVar[EpochAssetSource | None] = None
    consensus_context_class = QuizConsensusContext
    consensus_context: QuizConsensusContext

    def __init__(self, base_db: AtomicDatabaseAPI) -> None:
        super().__init__(base_db)
        assets = self.epoch_assets
        self.consensus_context = QuizConsensusContext(
            self.chaindb.db,
            EpochQuizContexts(
                self.config, self.headerdb, assets, self.state_after if assets else None
            ),
        )

    def state_after(self, header: BlockHeaderAPI) -> StateAPI:
        """The state after a stored block (what governance reads at an epoch's seed)."""
        if not self.chaindb.header_exists(header.hash):
            raise SeedStateUnavailable(
                f"block #{header.block_number} 0x{header.hash.hex()} is not stored yet"
            )
        return self.get_vm(header).state

    # py-evm's import_block/persist_block read every new canonical block back from the db
    # (decoding all its transactions again) only to return them; the node knows them already.
    def store_block(self, block: BlockAPI) -> None:
        """Validate a block's header and seal and store it (its state must already be in the
        db, as after building it); fork choice by total difficulty happens here."""
        self.validate_block(block)
        self.chaindb.persist_block(block)

    def execute_and_store(self, block: BlockAPI) -> BlockAPI:
        """Import a block from elsewhere: re-execute it on its parent's state, check that the
        result is exactly the block received, then store it.  Raises ValidationError."""
        try:
            parent = self.get_block_header_by_hash(block.header.parent_hash)
        except HeaderNotFound as exc:
            raise BlockRejected(
                Rejection.UNKNOWN_PARENT,
                f"cannot import block #{block.number} 0x{block.hash.hex()}: unknown parent",
            ) from exc
        base = self.create_header_from_parent(parent).copy(gas_used=block.header.gas_used)
        imported = self.get_vm(base).import_block(block).block
        try:
            validate_imported_block_unchanged(imported, block)
        except ValidationError as exc:
            if imported.header.state_root != block.header.state_root:
                raise BlockRejected(Rejection.WRONG_STATE_ROOT, str(exc)) from exc
            raise
        self.store_block(imported)
        return imported


def chain_class_for(
    config: ChainConfig, epoch_assets: EpochAssetSource | None = None,
    *, vm_class: type[PoaiVM] = PoaiVM, **vm_attrs: Any,
) -> type[PoaiChain]:
    """`epoch_assets`: where each epoch's quiz assets come from (a Node passes its own, with
    its data dir's stores); default: governance with scratch stores when the config has
    genesis contracts, the genesis assets otherwise.  `vm_class` and `vm_attrs`: a dev node's
    VM (poai.chain.devchain.DevPoaiVM, its clock)."""
    if epoch_assets is None and config.genesis_contracts is not None:
        epoch_assets = GovernedEpochAssets(config)
    vm = vm_class.configure(__name__=vm_class.__name__, poai_config=config, **vm_attrs)
    if config.genesis_contracts is not None:
        # INFERENCE_CHECK resolves snapshots into the same blob store as the epoch quiz.
        governed = epoch_assets if isinstance(epoch_assets, GovernedEpochAssets) \
            else GovernedEpochAssets(config)
        models = SnapshotModels(governed.contracts.contracts.registry, governed.resolver)
        computation = PoaiComputation.configure(__name__="PoaiComputation",
                                                snapshot_models=models)
        state = vm.get_state_class().configure(__name__="PoaiState",
                                               computation_class=computation)
        vm = vm.configure(__name__=vm_class.__name__, _state_class=state)
    cls: type[PoaiChain] = PoaiChain.configure(
        __name__="PoaiChain",
        vm_configuration=((0, vm),),
        chain_id=config.chain_id,
        config=config,
        epoch_assets=epoch_assets,
    )
    return cls


def genesis_state(config: ChainConfig) -> AccountState:
    state: dict[Any, Any] = {}
    for address, code in SYSTEM_CONTRACTS.items():
        state[address] = {"balance": 0, "nonce": 1, "code": code, "storage": {}}
    contracts = config_contracts(config)  # governance contracts at fixed addresses
    alloc = {**(contracts.alloc if contracts is not None else {}), **config.alloc}
    for address, acct in alloc.items():
        state[address] = {
            "balance": acct.balance,
            "nonce": acct.nonce,
            "code": acct.code,
            "storage": dict(acct.storage),
        }
    return state


def genesis_params(config: ChainConfig) -> dict[str, Any]:
    return {
        "difficulty": config.initial_difficulty,
        "gas_limit": config.gas_limit,
        "timestamp": config.genesis_timestamp,
        "extra_data": config.extra_data,
        "coinbase": ZERO_ADDRESS,
        "nonce": ZERO_NONCE,
        "mix_hash": ZERO_HASH32,
        "base_fee_per_gas": config.genesis_base_fee,
        "parent_beacon_block_root": ZERO_HASH32,
    }


def create_genesis(
    db: AtomicDatabaseAPI, config: ChainConfig, chain_class: type[PoaiChain] | None = None
) -> PoaiChain:
    """Write the genesis block and state of `config` into an empty db; the chain object
    returned is of `chain_class` (a Node's, with its epoch asset source) when given."""
    cls = chain_class or chain_class_for(config)
    chain = cls.from_genesis(db, genesis_params(config), genesis_state(config))
    assert isinstance(chain, PoaiChain)
    return chain


def genesis_hash(config: ChainConfig) -> bytes:
    """The genesis block hash of `config`, computed in memory."""
    from eth.db.atomic import AtomicDB

    return bytes(create_genesis(AtomicDB(), config).get_canonical_head().hash)
