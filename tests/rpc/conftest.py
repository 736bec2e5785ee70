from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
# solc-wrapper.js runs on the Node of node_modules/.bin (tests may run outside `make test`).
os.environ["PATH"] = (str(Path(__file__).resolve().parents[2] / "node_modules" / ".bin")
                      + os.pathsep + os.environ.get("PATH", ""))

from devnode import DevNode  # noqa: E402
from rpcclient import Rpc, ServerThread  # noqa: E402


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
