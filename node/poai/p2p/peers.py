"""Peer scoring: every invalid message lowers the sender's score; past a threshold it is banned.

Scores start at 0, decay back toward 0 (half-life ``half_life`` seconds) so an honest peer that
relayed one stale message recovers, and a ban lasts ``ban_seconds``. Thread-safe: the libp2p
thread and the node's threads both report offences.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from poai.consensus.rejection import Rejection, rejection_of

log = logging.getLogger(__name__)


class Offence(enum.Enum):
    """What a peer did wrong."""

    BAD_SEAL = "bad_seal"
    WRONG_Q = "wrong_q"
    WRONG_STATE_ROOT = "wrong_state_root"
    INVALID_BLOCK = "invalid_block"
    BAD_TX_SIGNATURE = "bad_tx_signature"
    INVALID_TX = "invalid_tx"
    UNKNOWN_PARENT = "unknown_parent"
    FUTURE_TIMESTAMP = "future_timestamp"
    OVERSIZED = "oversized"
    GARBAGE = "garbage"
    DUPLICATE = "duplicate"
    WRONG_CHAIN = "wrong_chain"
    BAD_RESPONSE = "bad_response"
    TIMEOUT = "timeout"

    @property
    def penalty(self) -> float:
        return _PENALTIES[self]


_OFFENCE_OF: dict[Rejection, Offence] = {
    Rejection.BAD_SEAL: Offence.BAD_SEAL,
    Rejection.WRONG_Q: Offence.WRONG_Q,
    Rejection.WRONG_STATE_ROOT: Offence.WRONG_STATE_ROOT,
    Rejection.FUTURE_TIMESTAMP: Offence.FUTURE_TIMESTAMP,
    Rejection.UNKNOWN_PARENT: Offence.UNKNOWN_PARENT,
    Rejection.INVALID_BLOCK: Offence.INVALID_BLOCK,
}


def block_offence(exc: BaseException) -> Offence:
    """The offence of sending a block that `exc` refused (by the reason it carries)."""
    return _OFFENCE_OF[rejection_of(exc)]


# Provably malicious messages (they cost us a forward pass or a state transition) cost most;
# things an honest peer can do now and then (a stale tx, a slow answer) cost little.
_PENALTIES: dict[Offence, float] = {
    Offence.BAD_SEAL: 60.0,
    Offence.WRONG_Q: 60.0,
    Offence.WRONG_STATE_ROOT: 60.0,
    Offence.INVALID_BLOCK: 40.0,
    Offence.BAD_TX_SIGNATURE: 15.0,
    Offence.INVALID_TX: 2.0,
    Offence.UNKNOWN_PARENT: 20.0,
    Offence.FUTURE_TIMESTAMP: 25.0,
    Offence.OVERSIZED: 50.0,
    Offence.GARBAGE: 30.0,
    Offence.DUPLICATE: 4.0,
    Offence.WRONG_CHAIN: 1000.0,
    Offence.BAD_RESPONSE: 25.0,
    Offence.TIMEOUT: 5.0,
}


@dataclass
class PeerRecord:
    score: float = 0.0
    updated: float = 0.0
    banned_until: float = 0.0
    offences: int = 0
    last_offence: Offence | None = None


class PeerScores:
    def __init__(
        self,
        *,
        ban_threshold: float = -100.0,
        ban_seconds: float = 600.0,
        half_life: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ban_threshold >= 0:
            raise ValueError("ban_threshold must be negative")
        self.ban_threshold = ban_threshold
        self.ban_seconds = ban_seconds
        self.half_life = half_life
        self._clock = clock
        self._lock = threading.Lock()
        self._peers: dict[str, PeerRecord] = {}

    def _record(self, peer: str, now: float) -> PeerRecord:
        rec = self._peers.get(peer)
        if rec is None:
            rec = self._peers[peer] = PeerRecord(updated=now)
        elif rec.score != 0.0:
            rec.score *= 0.5 ** ((now - rec.updated) / self.half_life)
        rec.updated = now
        return rec

    def penalize(self, peer: str, offence: Offence, detail: str = "") -> bool:
        """Lower ``peer``'s score; returns True when this offence gets it banned."""
        now = self._clock()
        with self._lock:
            rec = self._record(peer, now)
            rec.score -= offence.penalty
            rec.offences += 1
            rec.last_offence = offence
            newly_banned = rec.score <= self.ban_threshold and rec.banned_until <= now
            if newly_banned:
                rec.banned_until = now + self.ban_seconds
            score = rec.score
        log.info("peer %s: %s %s (score %.1f)", peer, offence.name, detail, score)
        if newly_banned:
            log.warning("banning peer %s for %.0f s (score %.1f)", peer, self.ban_seconds, score)
        return newly_banned

    def ban(self, peer: str, seconds: float | None = None) -> None:
        now = self._clock()
        with self._lock:
            rec = self._record(peer, now)
            rec.banned_until = now + (self.ban_seconds if seconds is None else seconds)

    def is_banned(self, peer: str) -> bool:
        with self._lock:
            rec = self._peers.get(peer)
            return rec is not None and rec.banned_until > self._clock()

    def last_offence(self, peer: str) -> Offence | None:
        with self._lock:
            rec = self._peers.get(peer)
            return None if rec is None else rec.last_offence

    def score(self, peer: str) -> float:
        now = self._clock()
        with self._lock:
            return self._record(peer, now).score

    def expired_bans(self) -> list[str]:
        """Peers whose ban has run out since the last call (their score restarts at 0)."""
        now = self._clock()
        out: list[str] = []
        with self._lock:
            for peer, rec in self._peers.items():
                if 0.0 < rec.banned_until <= now:
                    rec.banned_until = 0.0
                    rec.score = 0.0
                    out.append(peer)
        return out

    def snapshot(self) -> dict[str, dict[str, float]]:
        now = self._clock()
        with self._lock:
            return {
                p: {
                    "score": self._record(p, now).score,
                    "offences": float(r.offences),
                    "banned_for": max(0.0, r.banned_until - now),
                }
                for p, r in self._peers.items()
            }
