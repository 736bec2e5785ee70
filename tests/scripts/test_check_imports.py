"""scripts/check_imports.py: the real package passes; each kind of violation is caught."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_imports.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_imports", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _package(tmp: Path, files: dict[str, str]) -> Path:
    root = tmp / "poai"
    for rel, text in {"__init__.py": "", "quiz/__init__.py": "", "chain/__init__.py": "",
                      **files}.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_repository_passes() -> None:
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_an_upward_import_fails(tmp_path: Path) -> None:
    root = _package(tmp_path, {"quiz/a.py": "from poai.chain.b import X\n",
                               "chain/b.py": "X = 1\n"})
    problems = _script().check(root)
    assert any("upward import of poai.chain.b" in p for p in problems), problems


def test_rpc_reaching_into_p2p_fails(tmp_path: Path) -> None:
    root = _package(tmp_path, {"rpc/a.py": "from poai.p2p.sync import Syncer\n",
                               "p2p/sync.py": "Syncer = 1\n",
                               "api/b.py": "from poai.inference.engine import E\n",
                               "inference/engine.py": "E = 1\n"})
    problems = _script().check(root)
    assert len(problems) == 1 and "rpc must not import poai.p2p.sync" in problems[0], problems


def test_a_module_cycle_fails_even_through_a_function(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "chain/a.py": "from poai.chain import b\n",
        "chain/b.py": "def f():\n    # deferred: a reason\n    from poai.chain import a\n",
    })
    problems = _script().check(root)
    assert problems == ["module import cycle: poai.chain.a <-> poai.chain.b"], problems


def test_a_package_cycle_fails(tmp_path: Path) -> None:
    root = _package(tmp_path, {
        "model/__init__.py": "", "model/m.py": "from poai.quiz.q import Q\nM = 1\n",
        "quiz/q.py": "Q = 1\n", "quiz/r.py": "from poai.model.m import M\n",
    })
    problems = _script().check(root)
    assert any("package import cycle: model <-> quiz" in p for p in problems), problems


def test_an_unexplained_import_in_a_function_fails(tmp_path: Path) -> None:
    root = _package(tmp_path, {"chain/a.py": "def f():\n    from poai.quiz import q\n",
                               "quiz/q.py": ""})
    problems = _script().check(root)
    assert len(problems) == 1 and "without a '# deferred: <why>' comment" in problems[0]


def test_an_unlayered_package_fails(tmp_path: Path) -> None:
    root = _package(tmp_path, {"newthing/__init__.py": "", "newthing/x.py": ""})
    assert any("has no layer" in p for p in _script().check(root))
