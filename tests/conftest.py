"""Session set-up shared by every test directory."""

from __future__ import annotations

import pytest
from poai.chain.ordered_trie import make_trie_root_and_nodes
from poai.compat import pyevm


def pytest_configure(config: pytest.Config) -> None:
    # The library patch the node installs at start (poai.chain.chain.install_library_patches),
    # without importing the chain: tests that build chains without a Node run what it runs.
    pyevm.install(make_trie_root_and_nodes)
