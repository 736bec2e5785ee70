"""Transaction / receipt / withdrawal trie roots built in one pass.

py-evm builds these tries by inserting each item into a HexaryTrie: every insert decodes and
re-encodes the nodes on its path, which was ~40% of building a block of transfers.  The keys of
an ordered trie are rlp(0..n-1), all known up front, so the trie can be built bottom-up from the
sorted keys, encoding each node exactly once.  The result (root and nodes) is the same Merkle
Patricia trie; tests/chain/test_ordered_trie.py checks it against py-trie on random inputs.

poai.chain.chain.install_library_patches() makes py-evm's block building, import and
persistence use it (through poai.compat.pyevm).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import rlp
from eth.constants import BLANK_ROOT_HASH
from eth_hash.auto import keccak

Nibbles = tuple[int, ...]


def _nibbles(key: bytes) -> Nibbles:
    out: list[int] = []
    for b in key:
        out.append(b >> 4)
        out.append(b & 0x0F)
    return tuple(out)


def _hex_prefix(nibbles: Sequence[int], leaf: bool) -> bytes:
    flag = 2 if leaf else 0
    if len(nibbles) % 2:
        head = bytes([((flag + 1) << 4) | nibbles[0]])
        rest = nibbles[1:]
    else:
        head = bytes([flag << 4])
        rest = nibbles
    return head + bytes((rest[i] << 4) | rest[i + 1] for i in range(0, len(rest), 2))


def _ref(node: list[Any], store: dict[bytes, bytes]) -> Any:
    encoded = rlp.encode(node)
    if len(encoded) < 32:
        return node  # embedded in its parent
    digest: bytes = keccak(encoded)
    store[digest] = encoded
    return digest


def _build(items: Sequence[tuple[Nibbles, bytes]], depth: int, store: dict[bytes, bytes]) -> Any:
    if len(items) == 1:
        key, value = items[0]
        return [_hex_prefix(key[depth:], True), value]
    first, last = items[0][0], items[-1][0]
    common = 0
    limit = min(len(first), len(last)) - depth
    while common < limit and first[depth + common] == last[depth + common]:
        common += 1
    if common:
        child = _build(items, depth + common, store)
        return [_hex_prefix(first[depth : depth + common], False), _ref(child, store)]
    branch: list[Any] = [b""] * 17
    start = 0
    if len(items[0][0]) == depth:  # a key ending here holds the branch's value
        branch[16] = items[0][1]
        start = 1
    i = start
    while i < len(items):
        nibble = items[i][0][depth]
        j = i
        while j < len(items) and items[j][0][depth] == nibble:
            j += 1
        branch[nibble] = _ref(_build(items[i:j], depth + 1, store), store)
        i = j
    return branch


@functools.lru_cache(128)
def ordered_trie_root_and_nodes(
    encoded_items: tuple[bytes, ...],
) -> tuple[bytes, dict[bytes, bytes]]:
    """Root and nodes (hash -> RLP) of the trie mapping rlp(i) -> encoded_items[i]."""
    if not encoded_items:
        return BLANK_ROOT_HASH, {}
    items = sorted(
        (_nibbles(rlp.encode(i)), value) for i, value in enumerate(encoded_items)
    )
    store: dict[bytes, bytes] = {}
    root_node = _build(items, 0, store)
    encoded = rlp.encode(root_node)
    root: bytes = keccak(encoded)
    store[root] = encoded  # the root is stored by hash even when short
    return root, store


def make_trie_root_and_nodes(items: Sequence[Any]) -> tuple[bytes, dict[bytes, bytes]]:
    """Drop-in for eth.db.trie.make_trie_root_and_nodes (items with `.encode()`)."""
    root, nodes = ordered_trie_root_and_nodes(tuple(item.encode() for item in items))
    return root, dict(nodes)

