from __future__ import annotations

import pytest
from poai.p2p.peers import Offence, PeerScores


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_offences_lower_the_score_until_a_ban() -> None:
    clock = Clock()
    scores = PeerScores(ban_threshold=-100, ban_seconds=60, half_life=1e9, clock=clock)
    assert not scores.penalize("p", Offence.GARBAGE)
    assert scores.score("p") == -Offence.GARBAGE.penalty
    assert not scores.penalize("p", Offence.GARBAGE)
    assert not scores.penalize("p", Offence.GARBAGE)
    assert not scores.is_banned("p")
    assert scores.penalize("p", Offence.GARBAGE)  # crosses -100: banned now
    assert scores.is_banned("p")
    assert not scores.penalize("p", Offence.GARBAGE)  # already banned: not "newly" banned
    assert not scores.is_banned("q")


def test_every_offence_has_a_penalty_and_a_seal_forgery_bans_in_two() -> None:
    assert all(o.penalty > 0 for o in Offence)
    scores = PeerScores(ban_threshold=-100)
    scores.penalize("p", Offence.BAD_SEAL)
    assert scores.penalize("p", Offence.WRONG_Q)


def test_scores_decay_and_bans_expire() -> None:
    clock = Clock()
    scores = PeerScores(ban_threshold=-100, ban_seconds=60, half_life=10, clock=clock)
    scores.penalize("p", Offence.OVERSIZED)
    clock.t += 10
    assert scores.score("p") == pytest.approx(-25.0)
    scores.ban("p")
    assert scores.is_banned("p") and scores.expired_bans() == []
    clock.t += 61
    assert not scores.is_banned("p")
    assert scores.expired_bans() == ["p"]
    assert scores.expired_bans() == []
    assert scores.score("p") == 0.0
    assert "p" in scores.snapshot()


def test_positive_threshold_is_refused() -> None:
    with pytest.raises(ValueError):
        PeerScores(ban_threshold=5)
