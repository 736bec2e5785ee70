from __future__ import annotations

import random

import pytest
import rlp
from eth.db.trie import _make_trie_root_and_nodes as pytrie_root_and_nodes
from poai.chain.ordered_trie import ordered_trie_root_and_nodes
from trie import HexaryTrie


@pytest.mark.parametrize("n", [0, 1, 2, 3, 15, 16, 17, 127, 128, 129, 130, 255, 256, 300, 1100])
def test_same_root_as_py_trie(n: int) -> None:
    rng = random.Random(n)
    # Short items (< 32 bytes) make embedded nodes; long ones hashed nodes.
    items = tuple(rng.randbytes(rng.choice([1, 5, 20, 31, 32, 40, 120])) for _ in range(n))
    root, nodes = ordered_trie_root_and_nodes(items)
    expected_root, _ = pytrie_root_and_nodes(items)
    assert root == expected_root
    # Every item can be read back through the nodes we produced.
    trie = HexaryTrie(dict(nodes), root)
    for i, item in enumerate(items):
        assert trie[rlp.encode(i)] == item


def test_identical_items() -> None:
    items = (b"\x01" * 40,) * 50
    assert ordered_trie_root_and_nodes(items)[0] == pytrie_root_and_nodes(items)[0]
