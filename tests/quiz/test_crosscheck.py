from collections.abc import Iterator

import pytest
from poai.quiz.context import QuizContext, losses_for
from poai.quiz.crosscheck import CrossChecker, cpu_capabilities
from poai.quiz.reduce import pack_q, quantize

SH = bytes([3] * 32)


@pytest.fixture(scope="module")
def checker() -> Iterator[CrossChecker]:
    c = CrossChecker(["default"])
    yield c
    c.close()


def _seal(ctx: QuizContext, nonce: int) -> bytes:
    return pack_q([quantize(v, ctx.params.grid_bits) for v in losses_for(ctx, SH, nonce)])


def test_accepts_honest_and_rejects_tampered(checker: CrossChecker, tiny_ctx: QuizContext) -> None:
    mix = _seal(tiny_ctx, 1)
    assert checker.check(tiny_ctx, SH, 1, mix, 1, lambda: False) == []
    bad = checker.check(tiny_ctx, SH, 2, mix, 1, lambda: False)
    assert bad is not None and len(bad) == 1 and bad[0].startswith("default: sample")


def test_cancel_returns_none_and_checker_recovers(
    checker: CrossChecker, tiny_ctx: QuizContext
) -> None:
    mix = _seal(tiny_ctx, 3)
    assert checker.check(tiny_ctx, SH, 3, mix, 1, lambda: True) is None
    # the abandoned request must not leak into the next answer
    assert checker.check(tiny_ctx, SH, 4, mix, 1, lambda: False) != []
    assert checker.check(tiny_ctx, SH, 3, mix, 1, lambda: False) == []


def test_capabilities() -> None:
    caps = cpu_capabilities()
    assert caps[0] == "default" and set(caps) <= {"default", "avx2", "avx512"}
    with pytest.raises(ValueError, match="unknown"):
        CrossChecker(["sse9"])
