"""Block building: the same steps as import, in one pass, then the seal.

py-evm's MiningChain.apply_transaction rebuilds the transaction and receipt tries after every
transaction (quadratic), and its mining path skips `block_preprocessing`/`block_postprocessing`
(the EIP-4788/EIP-2935 system calls and Prague requests that import runs).  Here a block is
built like `VM.import_block` builds it: pre-processing, every transaction applied against one
state with the tries built once, post-processing, then `finalize_block` (subsidy, state root).
Only then is the header complete enough to hash for the seal; sealing sets nonce and mixHash,
which no state depends on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from eth.abc import (
    BlockAPI,
    BlockHeaderAPI,
    ChainAPI,
    ReceiptAPI,
    SignedTransactionAPI,
)
from eth_utils.exceptions import ValidationError

from poai.chain.immutable import replace, replace_fields
from poai.consensus.seal_hash import seal_hash

log = logging.getLogger(__name__)


YIELD_EVERY = 4  # transactions applied between two releases of the GIL (~1-2 ms of work)


@dataclass(frozen=True)
class BlockTemplate:
    """A finalized block without its seal."""

    block: BlockAPI
    receipts: tuple[ReceiptAPI, ...]
    seal_hash: bytes
    skipped: list[tuple[SignedTransactionAPI, str]] = field(default_factory=list)

    @property
    def header(self) -> BlockHeaderAPI:
        return self.block.header

    def seal(self, nonce: int, mix_hash: bytes) -> BlockAPI:
        """The block with its quiz seal (nonce as an 8-byte big-endian int, mixHash)."""
        block = self.block
        header = replace_fields(block.header, nonce=nonce.to_bytes(8, "big"), mix_hash=mix_hash)
        # Shares the (immutable) transactions and their recovered senders: rlp's `copy` would
        # deep-copy all N of them.
        return replace(block, header=header)


class BlockDraft:
    """A block being filled: transactions are applied as they come (`add`, any number of
    times), then `finish` runs post-processing and finalisation once.

    The miner drafts the next block while it waits for the clock to allow its timestamp, so
    at that moment only the tries, system calls and state root are left to compute."""

    def __init__(self, chain: ChainAPI, parent: BlockHeaderAPI, coinbase: bytes, *,
                 timestamp: int | None = None, extra_data: bytes = b"") -> None:
        params: dict[str, Any] = {"coinbase": coinbase, "extra_data": extra_data}
        if timestamp is not None:
            params["timestamp"] = timestamp
        header = chain.create_header_from_parent(parent, **params)
        vm: Any = chain.get_vm(header)  # a PoaiVM: has the Cancun/Prague processing hooks
        self._vm = vm
        self._base_block = vm.get_block()
        vm.block_preprocessing(self._base_block)
        self.header = header  # gas used and bloom so far
        self._applied: list[SignedTransactionAPI] = []
        self._applied_hashes: set[bytes] = set()
        self._applied_ids: set[int] = set()
        self._receipts: list[ReceiptAPI] = []
        self._skipped: dict[bytes, tuple[SignedTransactionAPI, str]] = {}
        self._finished = False

    def __len__(self) -> int:
        return len(self._applied)

    @property
    def applied_hashes(self) -> frozenset[bytes]:
        return frozenset(self._applied_hashes)

    def __contains__(self, tx: SignedTransactionAPI) -> bool:
        """Whether this very transaction object is applied (no hashing: py-evm re-encodes a
        transaction for every `.hash`)."""
        return id(tx) in self._applied_ids

    def add(self, transactions: Iterable[SignedTransactionAPI], limit: int | None = None) -> int:
        """Apply those of ``transactions`` (in order) not applied yet that are valid and fit,
        at most ``limit`` of them; returns how many were applied.  A transaction skipped now
        (a nonce gap, say) is tried again by a later `add`."""
        if self._finished:
            raise RuntimeError("the draft is finished")
        vm, count = self._vm, 0
        for tx in transactions:
            if limit is not None and count >= limit:
                break
            if id(tx) in self._applied_ids:
                continue
            tx_hash = tx.hash
            if tx_hash in self._applied_hashes:
                continue
            current = self.header
            if tx.gas > current.gas_limit - current.gas_used:
                self._skipped[tx_hash] = (tx, "block gas limit reached")
                continue
            try:
                # py-evm validates (nonce, balance, fees, gas) before it touches the state,
                # and `apply_transaction` locks earlier changes, so a rejected tx leaves no
                # trace.
                receipt, _computation = vm.apply_transaction(current, tx)
            except ValidationError as exc:
                self._skipped[tx_hash] = (tx, str(exc))
                continue
            current = vm.add_receipt_to_header(current, receipt)
            self.header = vm.increment_blob_gas_used(current, tx)
            self._applied.append(tx)  # kept alive, so its id stays its own
            self._applied_ids.add(id(tx))
            self._applied_hashes.add(tx_hash)
            self._skipped.pop(tx_hash, None)
            self._receipts.append(receipt)
            count += 1
            if count % YIELD_EVERY == 0:
                # Let the node's other threads run: otherwise a long build holds the GIL in
                # 5 ms slices (sys.getswitchinterval) and each RPC request waits a whole slice
                # (measured: eth_sendRawTransaction fell to ~200/s during a build).
                time.sleep(0)
        return count

    def finish(self) -> BlockTemplate:
        """Post-processing (system calls, requests), finalisation (subsidy, state root) and
        the seal hash: the draft can no longer change."""
        if self._finished:
            raise RuntimeError("the draft is finished")
        self._finished = True
        vm = self._vm
        filled = vm.set_block_transactions_and_withdrawals(
            self._base_block, self.header, self._applied, self._receipts)
        processed = vm.block_postprocessing(filled)
        block = vm.finalize_block(processed).block
        skipped = list(self._skipped.values())
        if skipped:
            log.debug("block #%d: skipped %d transactions", block.number, len(skipped))
        return BlockTemplate(block, tuple(self._receipts), seal_hash(block.header), skipped)


def build_block(
    chain: ChainAPI,
    parent: BlockHeaderAPI,
    coinbase: bytes,
    transactions: Iterable[SignedTransactionAPI],
    *,
    timestamp: int | None = None,
    extra_data: bytes = b"",
) -> BlockTemplate:
    """Build a block on `parent` with as many of `transactions` (in order) as are valid and fit.

    Transactions that fail validation (nonce gap, insufficient funds, gas above what is left…)
    are skipped and reported in `skipped`.
    The state's trie nodes are written into `chain`'s db (flush or drop it as one batch).
    """
    draft = BlockDraft(chain, parent, coinbase, timestamp=timestamp, extra_data=extra_data)
    draft.add(transactions)
    return draft.finish()
