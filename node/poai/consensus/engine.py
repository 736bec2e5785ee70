"""The quiz seal as a py-evm consensus engine, and the one seal check every path uses.

py-evm instantiates the VM's `consensus_class` with the chain's ConsensusContext (not a db, as
its type hints claim).  Our context carries a `QuizContextSource`, the chain-side object that
knows which epoch key, model snapshot and dataset a header's quiz uses, and the cache of
verified seals.  `QuizConsensusContext.check_seal` ("cache -> epoch's quiz -> verify ->
remember") is what block import, gossip, sync and the miner's own check call; batched checks
(sync) report each result through `settle`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Protocol

from eth.abc import AtomicDatabaseAPI, BlockHeaderAPI, ConsensusAPI, ConsensusContextAPI
from eth_typing import Address
from eth_utils.exceptions import ValidationError

from poai.consensus.rejection import SealRejected
from poai.consensus.seal_hash import seal_hash
from poai.quiz.context import QuizContext
from poai.quiz.seal import InvalidSeal, verify_seal

# Headers not stored yet, by hash, that a header's ancestry may pass through (a sync batch).
Parents = Mapping[bytes, BlockHeaderAPI]

# Seals already verified (block hash -> the verifier's losses).  A block's seal is checked once
# before its state transition (cheap rejection of junk) and again by py-evm's validate_block; the
# cache makes the second check free.  Bounded: a reorg never reaches further back than this.
VERIFIED_CACHE_SIZE = 4096


class QuizContextSource(Protocol):
    """Whatever can say which quiz a header's seal answers (see poai.chain.epochs)."""

    def quiz_context_for(
        self, header: BlockHeaderAPI, parents: Parents | None = None
    ) -> QuizContext: ...

    def seed_header(
        self, header: BlockHeaderAPI, parents: Parents | None = None
    ) -> BlockHeaderAPI: ...


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

    def quiz_for(self, header: BlockHeaderAPI, parents: Parents | None = None) -> QuizContext:
        """The quiz a header's seal answers (its ancestry: stored headers, then `parents`)."""
        if self.source is None:
            raise ValidationError("no quiz context source configured: cannot verify seals")
        return self.source.quiz_context_for(header, parents)

    def seed_of(self, header: BlockHeaderAPI, parents: Parents | None = None) -> BlockHeaderAPI:
        """The seed block of the header's epoch (headers only: no state is read)."""
        if self.source is None:
            raise ValidationError("no quiz context source configured")
        return self.source.seed_header(header, parents)

    def check_seal(
        self,
        header: BlockHeaderAPI,
        *,
        parents: Parents | None = None,
        chain_lock: AbstractContextManager[object] | None = None,
    ) -> tuple[float, ...]:
        """The seal check: raises SealRejected, returns the verifier's losses (() when the
        seal was verified in a batch).  `chain_lock` is held only while the epoch's quiz is
        read from the chain, not during the forward pass (callers outside the chain lock)."""
        known = self.verified_losses(header.hash)
        if known is not None:
            return known
        with chain_lock if chain_lock is not None else nullcontext():
            quiz = self.quiz_for(header, parents)
        try:
            losses = verify_seal(
                quiz,
                seal_hash(header),
                int.from_bytes(header.nonce, "big"),
                header.mix_hash,
                header.difficulty,
            )
        except InvalidSeal as exc:
            raise SealRejected.of(header, exc) from exc
        self.remember(header.hash, losses)
        return tuple(losses)

    def settle(self, header: BlockHeaderAPI, result: InvalidSeal | None) -> None:
        """The result of a batched check (`poai.quiz.seal.verify_seals`) of `header`'s seal:
        remembered when valid (no losses kept), SealRejected otherwise."""
        if result is not None:
            raise SealRejected.of(header, result) from result
        self.remember(header.hash, ())


class QuizConsensus(ConsensusAPI):
    """Validates a header's quiz-loss seal (nonce, mixHash = packed q values) at its difficulty."""

    def __init__(self, context: ConsensusContextAPI) -> None:
        if not isinstance(context, QuizConsensusContext):
            raise TypeError(
                f"QuizConsensus needs a QuizConsensusContext, got {type(context).__name__}"
            )
        self._context = context

    def validate_seal(self, header: BlockHeaderAPI) -> None:
        self._context.check_seal(header)

    def validate_seal_extension(
        self, header: BlockHeaderAPI, parents: Iterable[BlockHeaderAPI]
    ) -> None:
        # The seal depends on the header and its epoch's quiz; the epoch seed is found on the
        # header's ancestry, which may run through `parents` not stored yet.
        self._context.check_seal(header, parents={bytes(p.hash): p for p in parents})

    @classmethod
    def get_fee_recipient(cls, header: BlockHeaderAPI) -> Address:
        return header.coinbase
