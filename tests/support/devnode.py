"""A Node-shaped harness for RPC unit tests: a real py-evm Prague chain (no seal) + the real pool.

It implements the part of the ``poai.node.Node`` contract (docs/ARCHITECTURE.md) the RPC layer
uses, with blocks mined on demand, so RPC tests run in milliseconds; the full node with the
quiz seal is exercised by tests/integration.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from eth import constants
from eth.chains.base import MiningChain
from eth.consensus.noproof import NoProofConsensus
from eth.db.atomic import AtomicDB
from eth.vm.forks import PragueVM
from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas
from eth_account import Account
from poai.importer import NewHead, NewPendingTx
from poai.node import MiningStats
from poai.quiz.context import QuizContext
from poai.quiz.params import QuizParams
from poai.txpool.pool import TxPool, decode_transaction

CHAIN_ID = 31337
KEYS = [bytes([i + 1]) * 32 for i in range(4)]
ACCOUNTS = [Account.from_key(k) for k in KEYS]
FUNDS = 10**24


class DevNode:
    def __init__(self, chain_id: int = CHAIN_ID) -> None:
        vm = PragueVM.configure(consensus_class=NoProofConsensus)
        chain_class = MiningChain.configure(vm_configuration=((0, vm),), chain_id=chain_id)
        genesis = {"difficulty": 0, "gas_limit": 30_000_000, "timestamp": int(time.time()),
                   "coinbase": constants.ZERO_ADDRESS, "extra_data": b"",
                   "nonce": b"\0" * 8, "mix_hash": constants.ZERO_HASH32,
                   "base_fee_per_gas": 10**9}
        alloc = {bytes.fromhex(a.address[2:]): {"balance": FUNDS, "nonce": 0, "code": b"",
                                                "storage": {}} for a in ACCOUNTS}
        self.chain = chain_class.from_genesis(AtomicDB(), genesis, alloc)
        self.config = SimpleNamespace(chain_id=chain_id, quiz=QuizParams(epoch_blocks=4),
                                      model_manifest="ab" * 32, dataset=None)
        self.lock = threading.RLock()
        self.mine = False
        self.network = None  # no networking
        self.dev = None  # not a --dev node: the dev-only methods are refused
        self.coinbase = b"\x00" * 20
        self.contracts: dict[str, bytes] = {}  # a chain without governance contracts
        # What governance names for the next epoch: not the genesis manifest, so RPC tests
        # see which of the two an answer comes from.
        self.governed_manifest = "cd" * 32
        self.txpool = TxPool(chain_id, lambda: self.chain.get_vm(self.head()).state,
                             block_gas_limit=lambda: self.head().gas_limit,
                             next_base_fee=lambda: calculate_expected_base_fee_per_gas(
                                 self.head()))
        self._listeners: list[Callable[[Any], None]] = []
        self._builder = vm.get_transaction_builder()

    def head(self) -> Any:
        return self.chain.get_canonical_head()

    def note_activity(self) -> None:
        pass  # no background block building here

    def add_listener(self, fn: Callable[[Any], None]) -> None:
        self._listeners.append(fn)

    def _emit(self, event: Any) -> None:
        for fn in self._listeners:
            fn(event)

    def submit_raw_transaction(self, raw: bytes, *, local: bool = True) -> bytes:
        with self.lock:
            tx_hash = self.txpool.add(decode_transaction(self._builder, raw))
        self._emit(NewPendingTx(tx_hash))
        return tx_hash

    def epoch_governance(self, seed_hash: bytes) -> dict[str, Any] | None:
        return None

    def current_quiz(self) -> QuizContext:
        """The quiz of the next block on the head, as `Node.current_quiz` (no real assets)."""
        head = self.head()
        return QuizContext(params=self.config.quiz, epoch_key=bytes(head.hash),
                           manifest_hash=self.governed_manifest, blob_dir="/nonexistent/blobs",
                           dataset_path="/nonexistent/epoch.poaids", dataset_key=b"\x07" * 32)

    def mining_stats(self) -> MiningStats:
        return MiningStats(hashrate=12.5)

    def mine_block(self) -> Any:
        with self.lock:
            head = self.head()
            txs = self.txpool.select(self.chain.header.base_fee_per_gas,
                                     self.chain.header.gas_limit)
            self.chain.set_header_timestamp(max(int(time.time()), head.timestamp + 1))
            result, receipts, _ = self.chain.mine_all(txs)
            block = result.imported_block
            self.txpool.on_new_head(block.transactions, [])
        self._emit(NewHead(block, tuple(receipts)))
        return block


def sign(account_index: int, **fields: Any) -> bytes:
    tx = {"chainId": CHAIN_ID, "type": 2, "gas": 21000, "maxFeePerGas": 3 * 10**9,
          "maxPriorityFeePerGas": 10**9, "value": 0, "to": "0x" + "22" * 20}
    tx.update(fields)
    return bytes(ACCOUNTS[account_index].sign_transaction(tx).raw_transaction)
