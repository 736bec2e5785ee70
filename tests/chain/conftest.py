from __future__ import annotations

import sys
from pathlib import Path

import pytest
from poai.chain.config import ChainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from poai_tiny import tiny_config  # noqa: E402


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-assets")


@pytest.fixture(scope="session")
def config(tiny_root: Path) -> ChainConfig:
    return tiny_config(tiny_root)
