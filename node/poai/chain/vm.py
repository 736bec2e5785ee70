"""The PoAI virtual machine: Prague EVM rules with a quiz-loss seal instead of proof of stake.

py-evm's Paris-and-later VMs demand difficulty 0 and nonce 0, pay no block reward and let the gas
limit drift; here the header carries the quiz seal (`difficulty`, `nonce`, `mixHash` = packed q
values), the difficulty follows `poai.consensus.difficulty`, the coinbase receives the halving
subsidy (base fee burnt and tips to the coinbase are py-evm's London fee rules, unchanged), and
the gas limit is fixed at the genesis config's value.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from eth.abc import BlockAPI, BlockHeaderAPI, ConsensusAPI, ReceiptAPI, TransactionFieldsAPI
from eth.constants import EMPTY_UNCLE_HASH, ZERO_HASH32
from eth.vm.forks.byzantium import EIP658_STATUS_CODES
from eth.vm.forks.byzantium.constants import (
    EIP658_TRANSACTION_STATUS_CODE_FAILURE,
    EIP658_TRANSACTION_STATUS_CODE_SUCCESS,
)
from eth.vm.forks.cancun.state import get_total_blob_gas
from eth.vm.forks.paris import ParisVM
from eth.vm.forks.prague import PragueVM
from eth.vm.forks.prague.blocks import PragueBlock, PragueBlockHeader
from eth.vm.forks.prague.constants import DEPOSIT_CONTRACT_ADDRESS, DEPOSIT_REQUEST_TYPE
from eth.vm.forks.prague.headers import create_prague_header_from_parent
from eth.vm.forks.prague.state import PragueState
from eth.vm.forks.shanghai.withdrawals import Withdrawal
from eth_typing import Address
from eth_utils.exceptions import ValidationError
from eth_utils.hexadecimal import encode_hex
from eth_utils.logging import get_extended_debug_logger
from rlp.sedes import CountableList

from poai.chain.accounts import PoaiAccountDB
from poai.chain.computation import PoaiComputation
from poai.chain.config import ChainConfig
from poai.chain.corrections import CorrectedRules
from poai.chain.immutable import SharedCopy, replace_fields
from poai.chain.receipts import PoaiReceiptBuilder, address_bloom_bits, topic_bloom_bits
from poai.chain.rewards import block_subsidy
from poai.chain.transactions import PoaiTransactionBuilder
from poai.consensus.difficulty import next_difficulty
from poai.consensus.engine import QuizConsensus
from poai.consensus.rejection import check_not_in_future

ZERO_NONCE = b"\x00" * 8
_create_prague_header = create_prague_header_from_parent()


class PoaiBlock(SharedCopy, PragueBlock):
    """Prague's block; its copies share the header and transactions instead of deep-copying
    every transaction (py-evm copies a block four or five times per import), and its
    transactions decode as poai.chain.transactions' classes."""

    transaction_builder = PoaiTransactionBuilder
    receipt_builder = PoaiReceiptBuilder
    fields = [
        ("header", PragueBlockHeader),
        ("transactions", CountableList(PoaiTransactionBuilder)),
        ("uncles", CountableList(None, max_length=0)),
        ("withdrawals", CountableList(Withdrawal)),
    ]


class PoaiState(CorrectedRules, PragueState):
    # CorrectedRules: the consensus rules py-evm gets wrong (poai.chain.corrections).
    account_db_class = PoaiAccountDB
    computation_class = PoaiComputation
    # py-evm's `logger` property looks the logger up again (swapping logging's logger class
    # under a context manager) on every access: five times per transaction.
    logger = get_extended_debug_logger("eth.vm.state.PoaiState")

    def set_system_contracts(self) -> None:
        """Nothing: leaves every state exactly as py-evm's does, for less work per block.

        py-evm's Cancun/Prague states run this on every state they build (twice per imported
        block), and it writes the EIP-4788 / EIP-2935 contracts' code only when that same code
        is already there (`if not get_code(a) != CODE: set_code(a, CODE)`), i.e. it rewrites an
        unchanged account, which the state root then re-hashes.  Absent code is left absent, as
        py-evm does.  (This chain deploys both contracts at genesis.)"""


class PoaiVM(PragueVM):
    fork = "poai-prague"
    consensus_class: type[ConsensusAPI] = QuizConsensus
    _state_class = PoaiState
    block_class = PoaiBlock
    # Set per chain by poai.chain.chain.chain_class_for(config).
    poai_config: ClassVar[ChainConfig] = None  # type: ignore[assignment]

    @classmethod
    def expected_difficulty(cls, parent: BlockHeaderAPI, timestamp: int) -> int:
        cfg = cls.poai_config
        return next_difficulty(
            parent.difficulty,
            parent.timestamp,
            timestamp,
            target_block_time=cfg.target_block_time,
            min_difficulty=cfg.min_difficulty,
        )

    @classmethod
    def create_header_from_parent(  # type: ignore[override]
        cls, parent_header: BlockHeaderAPI | None, **header_params: Any
    ) -> BlockHeaderAPI:
        """Prague header creation, then the quiz seal fields set our way (Paris refuses them)."""
        difficulty = header_params.pop("difficulty", None)
        nonce = header_params.pop("nonce", ZERO_NONCE)
        mix_hash = header_params.pop("mix_hash", ZERO_HASH32)
        header_params.setdefault("parent_beacon_block_root", ZERO_HASH32)
        if parent_header is not None:
            # max(parent + 1, now): the mining loop waits for the clock instead of running ahead.
            header_params.setdefault(
                "timestamp", max(parent_header.timestamp + 1, int(time.time()))
            )
            header_params.setdefault("gas_limit", cls.poai_config.gas_limit)
            if difficulty is None:
                difficulty = cls.expected_difficulty(parent_header, header_params["timestamp"])
        elif difficulty is None:
            raise ValueError("a genesis header needs an explicit difficulty")
        header = _create_prague_header(parent_header, **header_params)
        sealed: BlockHeaderAPI = header.copy(difficulty=difficulty, nonce=nonce, mix_hash=mix_hash)
        return sealed

    @classmethod
    def validate_header(cls, header: BlockHeaderAPI, parent_header: BlockHeaderAPI) -> None:
        # Skip ParisVM's PoS checks (difficulty 0, nonce 0) but keep everything before them:
        # extra data size, gas limit bounds and base fee, numbering, increasing timestamps.
        super(ParisVM, cls).validate_header(header, parent_header)
        cfg = cls.poai_config
        if header.uncles_hash != EMPTY_UNCLE_HASH:
            raise ValidationError("PoAI blocks have no uncles")
        if header.gas_limit != cfg.gas_limit:
            raise ValidationError(
                f"gas limit {header.gas_limit} differs from the chain's {cfg.gas_limit}"
            )
        expected = cls.expected_difficulty(parent_header, header.timestamp)
        if header.difficulty != expected:
            raise ValidationError(
                f"difficulty {header.difficulty} of block #{header.block_number}, "
                f"expected {expected}"
            )
        check_not_in_future(header, cfg.max_future_drift, cls.now())

    @classmethod
    def now(cls) -> float:
        """The clock the future-timestamp rule reads (a dev chain's moves: devchain.py)."""
        return time.time()

    @classmethod
    def validate_receipt(cls, receipt: ReceiptAPI) -> None:
        # py-evm's checks (each log's address and topics in the receipt's bloom, an EIP-658
        # status), with each item's bloom bits from poai.chain.receipts' cache: eth-bloom
        # hashes every item again, in pure Python, for every receipt.
        bloom = receipt.bloom
        for log_idx, log in enumerate(receipt.logs):
            bits = address_bloom_bits(log.address)
            if bloom & bits != bits:
                raise ValidationError(
                    f"The address from the log entry at position {log_idx} is not "
                    "present in the provided bloom filter.")
        for log_idx, log in enumerate(receipt.logs):
            for topic_idx, topic in enumerate(log.topics):
                bits = topic_bloom_bits(topic)
                if bloom & bits != bits:
                    raise ValidationError(
                        f"The topic at position {topic_idx} from the log entry at "
                        f"position {log_idx} is not present in the provided bloom filter.")
        if receipt.state_root not in EIP658_STATUS_CODES:
            raise ValidationError(
                "The receipt's `state_root` must be one of "
                f"[{encode_hex(EIP658_TRANSACTION_STATUS_CODE_SUCCESS)}, "
                f"{encode_hex(EIP658_TRANSACTION_STATUS_CODE_FAILURE)}].  Got: "
                f"{encode_hex(receipt.state_root)}")

    def add_receipt_to_header(
        self, old_header: BlockHeaderAPI, receipt: ReceiptAPI
    ) -> BlockHeaderAPI:
        # Byzantium's rule (bloom OR-ed in, cumulative gas used), run for every transaction:
        # the new header shares the other fields instead of deep-copying them.
        return replace_fields(old_header, bloom=old_header.bloom | int(receipt.bloom),
                              gas_used=receipt.gas_used)

    def increment_blob_gas_used(
        self, old_header: BlockHeaderAPI, transaction: TransactionFieldsAPI
    ) -> BlockHeaderAPI:
        # Same header as Cancun's (+0 blob gas), without copying it for every transaction.
        if get_total_blob_gas(transaction) == 0:
            return old_header
        header: BlockHeaderAPI = super().increment_blob_gas_used(old_header, transaction)
        return header

    def process_deposit_request_data(self, block: BlockAPI) -> None:
        # EIP-6110 deposit requests come from logs of the deposit contract.  No code can exist
        # at that address on this chain unless someone deploys it there; without code there
        # are no such logs and the request is empty, exactly what py-evm's scan of every
        # receipt (read back from the db: ~15% of building a block of transfers) would find.
        if self.state.get_code(Address(DEPOSIT_CONTRACT_ADDRESS)):
            super().process_deposit_request_data(block)
        else:
            block.block_requests.append(DEPOSIT_REQUEST_TYPE)

    def _assign_block_rewards(self, block: BlockAPI) -> None:
        cfg = self.poai_config
        reward = block_subsidy(block.number, cfg.block_subsidy_wei, cfg.halving_blocks)
        # Touch the coinbase even for a zero reward, as py-evm does (EIP-161 bookkeeping).
        self.state.delta_balance(block.header.coinbase, reward)
