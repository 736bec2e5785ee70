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

from poai.consensus.seal_hash import seal_hash

log = logging.getLogger(__name__)


@dataclass
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
        header = self.block.header.copy(nonce=nonce.to_bytes(8, "big"), mix_hash=mix_hash)
        return self.block.copy(header=header)


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
    params: dict[str, Any] = {"coinbase": coinbase, "extra_data": extra_data}
    if timestamp is not None:
        params["timestamp"] = timestamp
    header = chain.create_header_from_parent(parent, **params)
    vm: Any = chain.get_vm(header)  # a PoaiVM: has the Cancun/Prague processing hooks
    base_block = vm.get_block()
    vm.block_preprocessing(base_block)

    current = header
    applied: list[SignedTransactionAPI] = []
    receipts: list[ReceiptAPI] = []
    skipped: list[tuple[SignedTransactionAPI, str]] = []
    for tx in transactions:
        if tx.gas > current.gas_limit - current.gas_used:
            skipped.append((tx, "block gas limit reached"))
            continue
        try:
            # py-evm validates (nonce, balance, fees, gas) before it touches the state, and
            # `apply_transaction` locks earlier changes, so a rejected tx leaves no trace.
            receipt, _computation = vm.apply_transaction(current, tx)
        except ValidationError as exc:
            skipped.append((tx, str(exc)))
            continue
        current = vm.add_receipt_to_header(current, receipt)
        current = vm.increment_blob_gas_used(current, tx)
        applied.append(tx)
        receipts.append(receipt)

    filled = vm.set_block_transactions_and_withdrawals(base_block, current, applied, receipts)
    processed = vm.block_postprocessing(filled)
    block = vm.finalize_block(processed).block
    if skipped:
        log.debug("block #%d: skipped %d transactions", block.number, len(skipped))
    return BlockTemplate(block, tuple(receipts), seal_hash(block.header), skipped)
