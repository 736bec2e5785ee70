"""The genesis training corpus: docstrings of the Python standard library.

Source and license: the docstrings are extracted (by parsing, never importing) from the ``.py``
files of the running CPython 3.11 standard library, which is distributed under the Python
Software Foundation License Version 2 — a permissive license that allows redistribution of
derived works with the PSF copyright notice ("Copyright (c) 2001-2023 Python Software
Foundation; All Rights Reserved"). No download is involved. Test suites, IDLE, ``site-packages``
and vendored third-party code (``ensurepip`` wheels, ``lib2to3`` grammar data) are excluded.

Splits are by document, decided by the sha256 of the document text, so they are disjoint and
independent of file order: ``train`` (train the model), ``validation`` (public evaluation, e.g.
quality gates for expert proposals) and ``quiz`` (source of the encrypted quiz dataset; never
trained on).
"""

from __future__ import annotations

import ast
import hashlib
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

EXCLUDED_DIRS = {"test", "tests", "idlelib", "site-packages", "dist-packages", "ensurepip",
                 "lib2to3", "turtledemo", "__pycache__", "tkinter", "pydoc_data"}
DOC_SEPARATOR = "\n\n"
# Of every SPLIT_MODULUS documents (by hash): QUIZ_SHARE quiz, VALID_SHARE validation, rest train.
SPLIT_MODULUS = 20
QUIZ_SHARE = 3
VALID_SHARE = 2
MIN_DOC_CHARS = 40


@dataclass(frozen=True)
class CorpusSplits:
    train: str
    validation: str
    quiz: str


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def stdlib_files(root: Path) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).parts
        if any(part in EXCLUDED_DIRS for part in rel):
            continue
        out.append(p)
    return out


def docstrings(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    docs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=True)
            if doc and len(doc) >= MIN_DOC_CHARS:
                docs.append(doc.strip())
    return docs


def collect_documents(root: Path | None = None) -> list[str]:
    """Unique docstrings of the stdlib in file order."""
    seen: set[str] = set()
    docs: list[str] = []
    for p in stdlib_files(root or stdlib_dir()):
        try:
            src = p.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for d in docstrings(src):
            if d not in seen:
                seen.add(d)
                docs.append(d)
    return docs


def split_of(doc: str) -> str:
    bucket = int.from_bytes(hashlib.sha256(doc.encode("utf-8")).digest()[:8], "big") % SPLIT_MODULUS
    if bucket < QUIZ_SHARE:
        return "quiz"
    if bucket < QUIZ_SHARE + VALID_SHARE:
        return "validation"
    return "train"


def build_splits(root: Path | None = None) -> CorpusSplits:
    parts: dict[str, list[str]] = {"train": [], "validation": [], "quiz": []}
    for d in collect_documents(root):
        parts[split_of(d)].append(d)
    return CorpusSplits(**{k: DOC_SEPARATOR.join(v) + "\n" for k, v in parts.items()})


if __name__ == "__main__":  # pragma: no cover - manual inspection
    s = build_splits()
    print(sys.version, {k: len(getattr(s, k).encode()) for k in ("train", "validation", "quiz")})
