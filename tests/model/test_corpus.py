from __future__ import annotations

from pathlib import Path

from poai.model.corpus import build_splits, collect_documents, docstrings, split_of

SOURCE = '''"""Module docstring that is long enough to be kept in the corpus."""

class Thing:
    """Class docstring, also comfortably longer than forty characters."""

    def method(self):
        """Short."""


def function():
    """Function docstring that is long enough to be kept as well, yes."""
'''


def test_docstrings_are_parsed_not_imported(tmp_path: Path) -> None:
    docs = docstrings(SOURCE + "\nraise SystemExit('imported!')\n")
    assert docs[0].startswith("Module docstring")
    assert any(d.startswith("Class docstring") for d in docs)
    assert any(d.startswith("Function docstring") for d in docs)
    assert "Short." not in docs  # below the minimum length
    assert docstrings("def broken(:\n") == []


def test_collect_skips_excluded_dirs_and_duplicates(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text(SOURCE)
    (tmp_path / "b.py").write_text(SOURCE)  # same docstrings: kept once
    (tmp_path / "test").mkdir()
    (tmp_path / "test" / "t.py").write_text('"""A test-suite docstring, which must be skipped."""')
    docs = collect_documents(tmp_path)
    assert len(docs) == 3
    assert not any("test-suite" in d for d in docs)


def test_splits_are_disjoint_and_deterministic(tmp_path: Path) -> None:
    for i in range(60):
        (tmp_path / f"m{i}.py").write_text(f'"""Document number {i} with enough text to count."""')
    s = build_splits(tmp_path)
    parts = {k: set(getattr(s, k).strip().split("\n\n")) for k in ("train", "validation", "quiz")}
    assert sum(len(p) for p in parts.values()) == 60
    assert not parts["train"] & parts["quiz"] and not parts["validation"] & parts["quiz"]
    assert split_of("same text") == split_of("same text")
    assert build_splits(tmp_path) == s
