from __future__ import annotations

from pathlib import Path

import pytest
from poai.chain.config import ChainConfig
from support.poai_tiny import tiny_config


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny-assets")


@pytest.fixture(scope="session")
def config(tiny_root: Path) -> ChainConfig:
    return tiny_config(tiny_root)
