from collections.abc import Iterator

import pytest
from poai.quiz.context import QuizContext, losses_for
from poai.quiz.reduce import pack_q, quantize
from poai.quiz.seal import InvalidSeal, verify_seal
from poai.quiz.verifier import ParallelVerifier


@pytest.fixture(scope="module")
def verifier() -> Iterator[ParallelVerifier]:
    v = ParallelVerifier(workers=2)
    yield v
    v.close()


def test_parallel_agrees_with_serial(verifier: ParallelVerifier, tiny_ctx: QuizContext) -> None:
    items = []
    for n in range(12):
        sh = bytes([n] * 32)
        qs = [quantize(v, 12) for v in losses_for(tiny_ctx, sh, n)]
        if n % 3 == 1:
            qs[n % 4] += 2  # beyond tolerance
        mix = pack_q(qs)
        difficulty = 1 << 250 if n % 3 == 2 else 1  # junk at a high difficulty
        items.append((tiny_ctx, sh, n, mix, difficulty))
    serial: list[str | None] = []
    for it in items:
        try:
            verify_seal(*it)
            serial.append(None)
        except InvalidSeal as exc:
            serial.append(str(exc))
    parallel = verifier.verify_many(items)
    assert [None if r is None else str(r) for r in parallel] == serial
    assert all(isinstance(r, InvalidSeal) for r in parallel if r is not None)
    assert serial.count(None) == 4
    assert verifier.verify_many([]) == []


def test_bad_worker_count() -> None:
    with pytest.raises(ValueError):
        ParallelVerifier(workers=0)
