"""The state tries (accounts, storage): reads and whole-block updates (consensus-critical).

Updates: a whole block's key changes applied to a Merkle-Patricia trie at once.

py-trie's HexaryTrie applies one key at a time: every set re-encodes and re-hashes the path to
the root, and (py-evm builds its state tries with prune=True) re-encodes the replaced nodes to
drop them from the pending batch again.  With five account writes and three storage slots per
block, that is most of an empty block's import.  Here the changes are merged into the trie in
one walk, as Geth's trie commit does: each changed subtree is rebuilt in memory and every new
node is encoded and hashed once, when its parent takes it, so only the final nodes are written
(no superseded intermediate nodes, nothing to prune).

The trie's shape is a function of its key/value set alone (hex-prefix paths, branches of 16,
nodes under 32 bytes embedded in their parent, the root always hashed and stored), so the root
equals py-trie's for the same changes; tests/chain/test_state_trie.py checks that against
py-trie on random tries, updates and deletions.

Reads: `lookup` walks the path with decoded nodes from a process-wide cache by node hash (the
nodes a block commits are the ones the next block reads), instead of decoding each node's RLP
on every read.  `StateTrie` is py-trie's HexaryTrie with those reads and no writes of its own,
for py-evm's account and storage databases (poai.chain.accounts).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, MutableMapping
from typing import Any, NoReturn

from eth_hash.auto import keccak
from eth_typing import Hash32
from lru import LRU
from rlp import decode as rlp_decode
from rlp.codec import encode_raw
from trie.constants import BLANK_NODE, BLANK_NODE_HASH
from trie.exceptions import MissingTrieNode
from trie.hexary import HexaryTrie
from trie.typing import Nibbles as TrieNibbles
from trie.utils.nibbles import bytes_to_nibbles, encode_nibbles
from trie.utils.nibbles import decode_nibbles as _decode_nibbles

Nibbles = tuple[int, ...]
Node = bytes | list[Any]  # BLANK_NODE (b""), [hp_path, value | ref], or 16 refs + value
Ref = bytes | list[Any]  # b"", a 32-byte node hash, or an embedded node (< 32 bytes)

TERMINATOR = 16
_LEAF_OF_EMPTY_PATH = encode_nibbles((TERMINATOR,))

# Decoded nodes by hash, shared by all tries of the process: a hash names its node, so an entry
# never goes stale.  Nodes committed by one block are the ones the next block reads first (the
# root and the branches under it).  Entries are never mutated (this module builds new lists).
NODE_CACHE_SIZE = 8192
_nodes: Any = LRU(NODE_CACHE_SIZE)

# Hex-prefix paths of leaves and extensions, decoded (a pure function of the bytes).
decode_nibbles = functools.lru_cache(maxsize=16384)(_decode_nibbles)


class _New:
    """A node built by this update, not yet encoded: its parent commits (or merges) it."""

    __slots__ = ("node",)

    def __init__(self, node: Node) -> None:
        self.node = node


Slot = Ref | _New


def update_trie(db: MutableMapping[bytes, bytes], root_hash: bytes,
                changes: Mapping[bytes, bytes]) -> bytes:
    """Apply `changes` (key -> value; b"" deletes the key) to the trie at `root_hash` in `db`;
    new nodes are written to `db` (old ones are left, as py-evm leaves them) and the new root
    hash is returned.  Raises trie.exceptions.MissingTrieNode if a needed node is not in db."""
    if not changes:
        return root_hash
    walk = _Walk(db, root_hash)
    items = {bytes_to_nibbles(k): v for k, v in changes.items()}
    root = walk.apply(walk.load(root_hash, ()), items)
    if root == BLANK_NODE:
        return BLANK_NODE_HASH
    encoded = encode_raw(root)
    new_root: bytes = keccak(encoded)
    db[new_root] = encoded  # the root is stored even when it is under 32 bytes
    _nodes[new_root] = root
    return new_root


def lookup(db: Mapping[bytes, bytes], root_hash: bytes, key: bytes) -> bytes:
    """The value of `key` in the trie at `root_hash` (b"" when absent), as HexaryTrie.get.
    Raises trie.exceptions.MissingTrieNode if a node on the path is not in db."""
    walk = _Walk(db, root_hash, key)
    path = bytes_to_nibbles(key)
    node = walk.load(root_hash, ())
    i = 0
    while isinstance(node, list):  # b"" (BLANK_NODE) ends the walk: absent
        if len(node) == 17:
            if i == len(path):
                return bytes(node[16])
            node = walk.load(node[path[i]], path[: i + 1])
            i += 1
            continue
        p = decode_nibbles(node[0])
        if p and p[-1] == TERMINATOR:
            return bytes(node[1]) if path[i:] == p[:-1] else BLANK_NODE
        if path[i : i + len(p)] != p:
            return BLANK_NODE
        i += len(p)
        node = walk.load(node[1], path[:i])
    return BLANK_NODE


class StateTrie(HexaryTrie):
    """HexaryTrie reading through `lookup`; it takes no writes (py-trie would mutate cached
    nodes in place): state changes go through update_trie."""

    __slots__ = ()

    def get(self, key: bytes) -> bytes:
        return lookup(self.db, self.root_hash, key)

    def set(self, key: bytes, value: bytes) -> NoReturn:
        raise TypeError("StateTrie takes no writes: use poai.chain.state_trie.update_trie")

    def delete(self, key: bytes) -> NoReturn:
        raise TypeError("StateTrie takes no writes: use poai.chain.state_trie.update_trie")


class _Walk:
    __slots__ = ("db", "root_hash", "key")

    def __init__(self, db: Any, root_hash: bytes, key: bytes = b"") -> None:
        self.db = db  # a Mapping to read; a MutableMapping when committing
        self.root_hash = root_hash
        self.key = key

    def load(self, ref: Ref, prefix: Nibbles) -> Node:
        if isinstance(ref, list):
            return ref  # embedded in its parent
        if ref == BLANK_NODE or ref == BLANK_NODE_HASH:
            return BLANK_NODE
        node = _nodes.get(ref)
        if node is None:
            try:
                encoded = self.db[ref]
            except KeyError:
                raise MissingTrieNode(Hash32(ref), Hash32(self.root_hash), self.key,
                                      TrieNibbles(prefix)) from None
            node = rlp_decode(encoded)
            _nodes[ref] = node
        return node  # type: ignore[no-any-return]

    def commit(self, slot: Slot) -> Ref:
        if not isinstance(slot, _New):
            return slot
        node = slot.node
        if node == BLANK_NODE:
            return BLANK_NODE
        encoded = encode_raw(node)
        if len(encoded) < 32:
            return node  # embedded
        h: bytes = keccak(encoded)
        self.db[h] = encoded
        _nodes[h] = node
        return h

    def apply(self, node: Node, items: dict[Nibbles, bytes], prefix: Nibbles = ()) -> Node:
        """`node` (as stored, not mutated) with `items` (paths relative to it) applied."""
        if node == BLANK_NODE:
            return build({k: v for k, v in items.items() if v}, self)
        assert isinstance(node, list)
        if len(node) == 17:
            return self._apply_branch(node, items, prefix)
        path = decode_nibbles(node[0])
        if path and path[-1] == TERMINATOR:  # leaf: rebuild from its one key and the items
            merged = {path[:-1]: node[1]}
            for k, v in items.items():
                if v:
                    merged[k] = v
                else:
                    merged.pop(k, None)
            return build(merged, self)
        return self._apply_extension(path, node[1], items, prefix)

    def _apply_branch(self, node: list[Any], items: dict[Nibbles, bytes],
                      prefix: Nibbles) -> Node:
        slots: list[Slot] = list(node[:16])
        value: bytes = node[16]
        groups: dict[int, dict[Nibbles, bytes]] = {}
        for k, v in items.items():
            if k:
                groups.setdefault(k[0], {})[k[1:]] = v
            else:
                value = v
        for n, sub in groups.items():
            at = prefix + (n,)
            slots[n] = _New(self.apply(self.load(node[n], at), sub, at))
        return self.branch(slots, value, prefix)

    def _apply_extension(self, path: Nibbles, child: Ref, items: dict[Nibbles, bytes],
                         prefix: Nibbles) -> Node:
        lp = len(path)
        # A key that leaves the extension's path is new (a deletion of it is a no-op); the
        # first nibble where any such key leaves the path is where the extension splits.
        split = lp
        for k, v in items.items():
            if v and k[:lp] != path:
                i = 0
                while i < len(k) and i < split and k[i] == path[i]:
                    i += 1
                split = i
        if split == lp:
            inside = {k[lp:]: v for k, v in items.items() if k[:lp] == path}
            if not inside:
                return [encode_nibbles(path), child]
            at = prefix + path
            return self.with_prefix(path, self.apply(self.load(child, at), inside, at))
        # Split: a branch at path[split]; the old extension's rest hangs under that nibble.
        head, mine, rest = path[:split], path[split], path[split + 1:]
        slots: list[Slot] = [BLANK_NODE] * 16
        value = BLANK_NODE
        groups: dict[int, dict[Nibbles, bytes]] = {}
        for k, v in items.items():
            if k[:split] != head:
                continue  # a deletion of an absent key
            if len(k) == split:
                value = v
            elif k[split] == mine or v:
                groups.setdefault(k[split], {})[k[split + 1:]] = v
        old: Node = [encode_nibbles(rest), child] if rest else self.load(child, prefix + head)
        slots[mine] = _New(old) if rest else child
        for n, sub in groups.items():
            at = prefix + head + (n,)
            if n == mine:
                slots[n] = _New(self.apply(old, sub, at))
            else:
                slots[n] = _New(build(sub, self))
        return self.with_prefix(head, self.branch(slots, value, prefix + head))

    def branch(self, slots: list[Slot], value: bytes, prefix: Nibbles) -> Node:
        """A branch of these children and value, collapsed as the trie's shape requires."""
        used = [n for n in range(16) if _present(slots[n])]
        if not used:
            return [_LEAF_OF_EMPTY_PATH, value] if value else BLANK_NODE
        if len(used) == 1 and not value:
            n = used[0]
            slot = slots[n]
            if isinstance(slot, _New):
                return self.with_prefix((n,), slot.node)
            child = self.load(slot, prefix + (n,))
            if isinstance(child, list) and len(child) == 17:
                return [encode_nibbles((n,)), slot]  # the stored branch keeps its ref
            return self.with_prefix((n,), child)
        return [self.commit(s) for s in slots] + [value]

    def with_prefix(self, path: Nibbles, child: Node) -> Node:
        """`child` reached through `path`: merged into a leaf/extension, or an extension."""
        if not path or child == BLANK_NODE:
            return child
        assert isinstance(child, list)
        if len(child) == 17:
            return [encode_nibbles(path), self.commit(_New(child))]
        return [encode_nibbles(path + decode_nibbles(child[0])), child[1]]


def _present(slot: Slot) -> bool:
    if isinstance(slot, _New):
        return slot.node != BLANK_NODE
    return slot != BLANK_NODE


def build(items: dict[Nibbles, bytes], walk: _Walk) -> Node:
    """A fresh subtree holding `items` (non-empty values, distinct paths)."""
    if not items:
        return BLANK_NODE
    if len(items) == 1:
        ((k, v),) = items.items()
        return [encode_nibbles(k + (TERMINATOR,)), v]
    keys = list(items)
    first = keys[0]
    common = len(first)
    for k in keys[1:]:
        i = 0
        while i < common and i < len(k) and k[i] == first[i]:
            i += 1
        common = i
    if common:
        head = first[:common]
        return walk.with_prefix(head, build({k[common:]: v for k, v in items.items()}, walk))
    slots: list[Slot] = [BLANK_NODE] * 16
    value = BLANK_NODE
    groups: dict[int, dict[Nibbles, bytes]] = {}
    for k, v in items.items():
        if k:
            groups.setdefault(k[0], {})[k[1:]] = v
        else:
            value = v
    for n, sub in groups.items():
        slots[n] = _New(build(sub, walk))
    return [walk.commit(s) for s in slots] + [value]


__all__ = ["NODE_CACHE_SIZE", "StateTrie", "lookup", "update_trie"]
