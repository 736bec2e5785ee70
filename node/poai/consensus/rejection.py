"""Why a block is refused, as data: every block-rejection error carries a `Rejection`, which
peer scoring reads (never the error text); and the header rules P2P checks before import."""

from __future__ import annotations

import enum
import time

from eth.abc import BlockHeaderAPI
from eth_utils.exceptions import ValidationError

from poai.quiz.seal import InvalidSeal


class Rejection(enum.Enum):
    BAD_SEAL = "bad_seal"  # malformed seal, or its loss hash misses the target
    WRONG_Q = "wrong_q"  # the claimed q values are not the verifier's own losses
    WRONG_STATE_ROOT = "wrong_state_root"
    FUTURE_TIMESTAMP = "future_timestamp"
    UNKNOWN_PARENT = "unknown_parent"
    INVALID_BLOCK = "invalid_block"  # any other header, body or state-transition rule


class BlockRejected(ValidationError):
    """A block (or header) breaks a rule; `reason` says which kind."""

    def __init__(self, reason: Rejection, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class SealRejected(BlockRejected):
    """The header's quiz seal does not verify."""

    @classmethod
    def of(cls, header: BlockHeaderAPI, exc: InvalidSeal) -> SealRejected:
        reason = Rejection.WRONG_Q if exc.wrong_q else Rejection.BAD_SEAL
        return cls(reason, f"invalid quiz seal on block #{header.block_number} "
                           f"0x{header.hash.hex()}: {exc}")


def rejection_of(exc: BaseException) -> Rejection:
    """The reason carried by a block-rejection error; INVALID_BLOCK for py-evm's own
    ValidationErrors (and anything else that refused the block)."""
    if isinstance(exc, BlockRejected):
        return exc.reason
    if isinstance(exc, InvalidSeal):
        return Rejection.WRONG_Q if exc.wrong_q else Rejection.BAD_SEAL
    return Rejection.INVALID_BLOCK


def check_not_in_future(header: BlockHeaderAPI, max_drift: int, now: float | None = None) -> None:
    """The header's timestamp is at most `max_drift` seconds ahead of our clock (geth: 15)."""
    now = time.time() if now is None else now
    if header.timestamp > now + max_drift:
        raise BlockRejected(
            Rejection.FUTURE_TIMESTAMP,
            f"block #{header.block_number} timestamp {header.timestamp} is "
            f"{header.timestamp - now:.0f} s in the future (max {max_drift} s)",
        )
