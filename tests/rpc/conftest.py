from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# solc-wrapper.js runs on the Node of node_modules/.bin (tests may run outside `make test`).
os.environ["PATH"] = (str(Path(__file__).resolve().parents[2] / "node_modules" / ".bin")
                      + os.pathsep + os.environ.get("PATH", ""))

from support.devnode import DevNode
from support.rpcclient import Rpc, ServerThread


@pytest.fixture
def node() -> DevNode:
    return DevNode()


@pytest.fixture
def server(node: DevNode) -> Iterator[ServerThread]:
    st = ServerThread(node, cors_origins=("*",), max_batch=50)
    yield st
    st.close()


@pytest.fixture
def rpc(server: ServerThread) -> Rpc:
    return Rpc(server.server.url)
