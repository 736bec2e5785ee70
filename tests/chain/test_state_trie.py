"""update_trie against py-trie's HexaryTrie: the same root for the same changes, every node the
new trie needs stored, and only nodes of the new trie written."""

from __future__ import annotations

import random

import pytest
import rlp
from poai.chain.state_trie import StateTrie, lookup, update_trie
from trie import HexaryTrie
from trie.constants import BLANK_NODE_HASH
from trie.exceptions import MissingTrieNode


def reference(db: dict[bytes, bytes], root: bytes, changes: dict[bytes, bytes]) -> bytes:
    t = HexaryTrie(dict(db), root)
    for k, v in changes.items():
        if v:
            t[k] = v
        else:
            t.delete(k)
    return t.root_hash


def reachable(db: dict[bytes, bytes], root: bytes) -> set[bytes]:
    """Hashes of the stored nodes under root (a missing one raises KeyError)."""
    seen: set[bytes] = set()
    todo: list[object] = [root]
    while todo:
        ref = todo.pop()
        if isinstance(ref, list):
            node = ref
        elif ref in (b"", BLANK_NODE_HASH) or ref in seen:
            continue
        else:
            seen.add(ref)
            node = rlp.decode(db[ref])
        if len(node) == 17:
            todo.extend(node[:16])
        elif node[0][0] >> 4 in (0, 1):  # extension (hex-prefix flag 0 or 1)
            todo.append(node[1])
    return seen


def check(db: dict[bytes, bytes], root: bytes, changes: dict[bytes, bytes],
          content: dict[bytes, bytes]) -> tuple[bytes, dict[bytes, bytes]]:
    want = reference(db, root, changes)
    before = dict(db)
    got = update_trie(db, root, changes)
    assert got == want
    for k, v in changes.items():
        if v:
            content[k] = v
        else:
            content.pop(k, None)
    t = HexaryTrie(db, got)
    for k, v in content.items():
        assert t[k] == v
    written = {k for k in db if k not in before}
    live = reachable(db, got)
    assert written <= live  # no superseded intermediate node is written
    return db, content


def value(rng: random.Random) -> bytes:
    # Short values make nodes under 32 bytes (embedded in their parent); long ones are hashed.
    return rng.randbytes(rng.choice([1, 1, 2, 3, 5, 20, 33, 70, 110]))


@pytest.mark.parametrize("seed", range(40))
def test_random_updates_match_py_trie(seed: int) -> None:
    rng = random.Random(seed)
    keylen = rng.choice([32, 32, 32, 1, 2, 3])  # state tries use 32-byte keys
    db: dict[bytes, bytes] = {}
    root, content = BLANK_NODE_HASH, {}
    for _ in range(12):
        changes: dict[bytes, bytes] = {}
        for _ in range(rng.choice([1, 2, 3, 5, 8, 40])):
            r = rng.random()
            if content and r < 0.3:
                changes[rng.choice(list(content))] = b""  # delete a present key
            elif content and r < 0.5:
                changes[rng.choice(list(content))] = value(rng)  # update
            elif r < 0.55:
                changes[rng.randbytes(keylen)] = b""  # delete an absent key: a no-op
            else:
                changes[rng.randbytes(keylen)] = value(rng)
        db, content = check(db, root, changes, content)
        root = reference(db, root, changes)


def test_variable_length_keys_use_branch_values() -> None:
    """Keys that are prefixes of others (not in state tries, but part of the trie's rules)."""
    rng = random.Random(5)
    db: dict[bytes, bytes] = {}
    root, content = BLANK_NODE_HASH, {}
    keys = [b"", b"\x01", b"\x01\x02", b"\x01\x02\x03", b"\x01\x03", b"\x10", b"\x11\x00"]
    for _ in range(60):
        changes = {k: (value(rng) if rng.random() < 0.6 else b"")
                   for k in rng.sample(keys, rng.randint(1, 4)) if k}
        db, content = check(db, root, changes, content)
        root = reference(db, root, changes)


def test_deleting_everything_gives_the_blank_root() -> None:
    db: dict[bytes, bytes] = {}
    keys = [bytes([i]) * 32 for i in range(10)]
    root = update_trie(db, BLANK_NODE_HASH, {k: b"v" * 40 for k in keys})
    assert root == reference({}, BLANK_NODE_HASH, {k: b"v" * 40 for k in keys})
    assert update_trie(db, root, dict.fromkeys(keys, b"")) == BLANK_NODE_HASH
    assert update_trie(db, root, {}) == root


def test_small_root_is_stored() -> None:
    db: dict[bytes, bytes] = {}
    root = update_trie(db, BLANK_NODE_HASH, {b"\x01": b"\x02"})  # a 4-byte root node
    assert root == reference({}, BLANK_NODE_HASH, {b"\x01": b"\x02"})
    assert HexaryTrie(db, root)[b"\x01"] == b"\x02"


def test_missing_node_raises_missing_trie_node() -> None:
    db: dict[bytes, bytes] = {}
    root = update_trie(db, BLANK_NODE_HASH,
                       {bytes([i]) * 32: b"x" * 40 for i in range(0, 256, 16)})
    from poai.chain import state_trie

    state_trie._nodes.clear()  # the process-wide cache would otherwise still know them
    with pytest.raises(MissingTrieNode):
        update_trie({}, root, {b"\x05" * 32: b"y" * 40})


@pytest.mark.parametrize("seed", range(10))
def test_lookup_reads_what_py_trie_reads(seed: int) -> None:
    rng = random.Random(100 + seed)
    keylen = rng.choice([32, 32, 1, 2])
    db: dict[bytes, bytes] = {}
    content = {rng.randbytes(keylen): value(rng) for _ in range(rng.choice([1, 3, 30, 200]))}
    root = update_trie(db, BLANK_NODE_HASH, content)
    t = HexaryTrie(db, root)
    probes = list(content) + [rng.randbytes(keylen) for _ in range(50)]
    probes += [k[:-1] + bytes([k[-1] ^ 1]) for k in list(content)[:20]]  # near misses
    probes += [k[: len(k) // 2] for k in list(content)[:5]] + [b""]  # shorter paths
    for k in probes:
        assert lookup(db, root, k) == t.get(k)
        assert StateTrie(db, root).get(k) == t.get(k)
        assert (k in StateTrie(db, root)) == (k in t)
    assert lookup(db, BLANK_NODE_HASH, b"\x01" * 32) == b""


def test_state_trie_takes_no_writes() -> None:
    t = StateTrie({}, BLANK_NODE_HASH)
    with pytest.raises(TypeError, match="update_trie"):
        t[b"\x01" * 32] = b"x"
    with pytest.raises(TypeError, match="update_trie"):
        del t[b"\x01" * 32]


def test_lookup_of_missing_node_raises_missing_trie_node() -> None:
    db: dict[bytes, bytes] = {}
    key = b"\x07" * 32
    root = update_trie(db, BLANK_NODE_HASH, {bytes([i]) * 32: b"x" * 40 for i in range(8)})
    from poai.chain import state_trie

    state_trie._nodes.clear()
    with pytest.raises(MissingTrieNode) as info:
        lookup({}, root, key)
    assert info.value.requested_key == key
