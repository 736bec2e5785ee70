"""The quiz seal as a py-evm consensus engine.

py-evm instantiates the VM's `consensus_class` with the chain's ConsensusContext (not a db, as
its type hints claim).  Our context carries a `QuizContextSource`, the chain-side object that
knows which epoch key, model snapshot and dataset a header's quiz uses; the engine itself only
computes the seal hash and calls the quiz engine's `verify_seal`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

from eth.abc import AtomicDatabaseAPI, BlockHeaderAPI, ConsensusAPI, ConsensusContextAPI
from eth_typing import Address
from eth_utils.exceptions import ValidationError

from poai.consensus.seal_hash import seal_hash
from poai.quiz.context import QuizContext
from poai.quiz.seal import InvalidSeal, verify_seal

# Seals already verified (block hash -> the verifier's losses).  A block's seal is checked once
# before its state transition (cheap rejection of junk) and again by py-evm's validate_block; the
# cache makes the second check free.  Bounded: a reorg never reaches further back than this.
VERIFIED_CACHE_SIZE = 4096


class QuizContextSource(Protocol):
    """Whatever can say which quiz a header's seal answers (see poai.chain.epochs)."""

    def quiz_context_for(self, header: BlockHeaderAPI) -> QuizContext: ...


class QuizConsensusContext(ConsensusContextAPI):
    """The chain's consensus context: the db py-evm hands over, plus the quiz context source."""

    def __init__(self, db: AtomicDatabaseAPI, source: QuizContextSource | None = None) -> None:
        self.db = db
        self.source = source
        self._verified: OrderedDict[bytes, tuple[float, ...]] = OrderedDict()
        self._lock = threading.Lock()

    def verified_losses(self, block_hash: bytes) -> tuple[float, ...] | None:
        with self._lock:
            return self._verified.get(block_hash)

    def remember(self, block_hash: bytes, losses: Iterable[float]) -> None:
        with self._lock:
            self._verified[block_hash] = tuple(losses)
            self._verified.move_to_end(block_hash)
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)


class QuizConsensus(ConsensusAPI):
    """Validates a header's quiz-loss seal (nonce, mixHash = packed q values) at its difficulty."""

    def __init__(self, context: ConsensusContextAPI) -> None:
        if not isinstance(context, QuizConsensusContext):
            raise TypeError(
                f"QuizConsensus needs a QuizConsensusContext, got {type(context).__name__}"
            )
        self._context = context

    def validate_seal(self, header: BlockHeaderAPI) -> None:
        if self._context.verified_losses(header.hash) is not None:
            return
        source = self._context.source
        if source is None:
            raise ValidationError("no quiz context source configured: cannot verify seals")
        quiz = source.quiz_context_for(header)
        try:
            losses = verify_seal(
                quiz,
                seal_hash(header),
                int.from_bytes(header.nonce, "big"),
                header.mix_hash,
                header.difficulty,
            )
        except InvalidSeal as exc:
            raise ValidationError(
                f"invalid quiz seal on block #{header.block_number} "
                f"{header.hash.hex()}: {exc}"
            ) from exc
        self._context.remember(header.hash, losses)

    def validate_seal_extension(
        self, header: BlockHeaderAPI, parents: Iterable[BlockHeaderAPI]
    ) -> None:
        # The seal depends only on the header and its epoch's quiz, nothing across headers.
        pass

    @classmethod
    def get_fee_recipient(cls, header: BlockHeaderAPI) -> Address:
        return header.coinbase
