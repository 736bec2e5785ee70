import pytest
from poai.quiz.params import QuizParams


def test_defaults_match_design() -> None:
    p = QuizParams()
    assert (p.k, p.segments, p.salt_len, p.grid_bits, p.sample_len) == (4, 4, 8, 10, 64)
    assert p.grid_scale == 1024 and p.values == 16


def test_dict_round_trip() -> None:
    p = QuizParams(k=3, segments=2, salt_len=5, grid_bits=10, sample_len=32, epoch_blocks=7)
    assert QuizParams.from_dict(p.to_dict()) == p


@pytest.mark.parametrize(
    "kwargs",
    [{"k": 0}, {"k": 5}, {"segments": 0}, {"segments": 3}, {"k": 2, "segments": 16},
     {"salt_len": 0}, {"grid_bits": 0}, {"grid_bits": 16},
     {"sample_len": 0}, {"epoch_blocks": 0}],
)
def test_out_of_range_rejected(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        QuizParams(**kwargs)


def test_non_int_rejected() -> None:
    with pytest.raises(TypeError):
        QuizParams(k=True)
    with pytest.raises(TypeError):
        QuizParams(grid_bits=12.0)  # type: ignore[arg-type]


def test_from_dict_rejects_unknown_and_missing() -> None:
    d = QuizParams().to_dict()
    with pytest.raises(ValueError, match="unknown"):
        QuizParams.from_dict({**d, "tolerance": 2})
    del d["k"]
    with pytest.raises(ValueError, match="missing"):
        QuizParams.from_dict(d)
