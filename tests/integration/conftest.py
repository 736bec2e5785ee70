"""The shared real-node fixture for the client tests (helpers live in nodeproc.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.nodeproc import NodeProcess, fast_genesis


@pytest.fixture(scope="session")
def poai_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    base = tmp_path_factory.mktemp("node")
    node = NodeProcess(base / "datadir", fast_genesis(base / "genesis.json"))
    try:
        node.wait_block(1, timeout=300)  # the miner's workers load the model first
        yield node
    finally:
        node.stop()
