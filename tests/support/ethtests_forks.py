"""The VMs the official fixtures run on: PoAI's components on the fork rules a fixture was filled
for (Cancun), and stock py-evm beside them.

PoaiVM itself is Prague with the quiz seal; the fixtures are Cancun with proof-of-stake headers.
`PoaiCancunVM` is py-evm's CancunVM with every PoAI replacement that is not Prague-specific:
the account database and its batched state/storage tries (poai.chain.accounts, state_trie),
the shared code cache, the JUMPDEST analysis cache (poai.chain.computation), the corrected
transaction rules (poai.chain.corrections), the typed-transaction decoding and signing
(poai.chain.transactions, signing), the receipts and their encoding (poai.chain.receipts) and
PoaiVM's receipt checks and header accumulation.  The Prague VM itself is compared with stock
py-evm Prague case by case (test_state_tests.py), since no fixture was filled for it.
"""

from __future__ import annotations

from typing import Any

from eth.vm.forks.cancun import CancunVM
from eth.vm.forks.cancun.blocks import CancunBlock, CancunBlockHeader
from eth.vm.forks.cancun.computation import CancunComputation
from eth.vm.forks.cancun.state import CancunState
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.shanghai.withdrawals import Withdrawal
from poai.chain.accounts import PoaiAccountDB
from poai.chain.computation import SharedJumpAnalysis
from poai.chain.corrections import CorrectedRules
from poai.chain.receipts import PoaiReceiptBuilder
from poai.chain.transactions import PoaiTransactionBuilder
from poai.chain.vm import PoaiVM
from rlp.sedes import CountableList


class PoaiCancunComputation(SharedJumpAnalysis, CancunComputation):
    pass


class PoaiCancunState(CorrectedRules, CancunState):
    account_db_class = PoaiAccountDB
    computation_class = PoaiCancunComputation


class PoaiCancunBlock(CancunBlock):
    # Prague's transaction classes decode every Cancun type alike (0-3) and add type 4, which
    # no Cancun fixture carries.
    transaction_builder = PoaiTransactionBuilder
    receipt_builder = PoaiReceiptBuilder
    fields = [
        ("header", CancunBlockHeader),
        ("transactions", CountableList(PoaiTransactionBuilder)),
        ("uncles", CountableList(CancunBlockHeader)),
        ("withdrawals", CountableList(Withdrawal)),
    ]


class PoaiCancunVM(CancunVM):
    fork = "poai-cancun"
    _state_class = PoaiCancunState
    block_class = PoaiCancunBlock

    validate_receipt = PoaiVM.validate_receipt
    add_receipt_to_header = PoaiVM.add_receipt_to_header


# Prague has no fixtures: PoaiVM (its state, transactions and receipts) runs each case beside
# stock py-evm Prague.
STOCK: dict[str, Any] = {"Cancun": CancunVM, "Prague": PragueVM}
POAI: dict[str, Any] = {"Cancun": PoaiCancunVM, "Prague": PoaiVM}
