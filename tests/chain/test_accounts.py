"""PoaiAccountDB: the same state roots as py-evm's AccountDB, and encode_account the same
bytes as rlp's sedes encoding."""

from __future__ import annotations

import random
from typing import Any

import pytest
import rlp
from eth.constants import BLANK_ROOT_HASH
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.rlp.accounts import Account
from eth_utils import keccak
from poai.chain.accounts import PoaiAccountDB, encode_account


def test_encode_account_is_rlp_of_the_account() -> None:
    rng = random.Random(7)
    cases = [Account(), Account(nonce=2**64 - 1, balance=2**256 - 1)]
    for _ in range(500):
        cases.append(Account(
            nonce=rng.choice([0, 1, 127, 128, 255, 256, rng.getrandbits(64)]),
            balance=rng.choice([0, 1, 0x7F, 0x80, 10**18, rng.getrandbits(rng.randint(1, 256))]),
            storage_root=rng.randbytes(32), code_hash=rng.randbytes(32)))
    for acct in cases:
        assert encode_account(acct) == rlp.encode(acct, sedes=Account)
        assert rlp.decode(encode_account(acct), sedes=Account) == acct
    short = Account(storage_root=b"\x01" * 31)
    with pytest.raises(ValueError, match="32 bytes"):
        encode_account(short)
    with pytest.raises(rlp.exceptions.SerializationError):
        rlp.encode(short, sedes=Account)  # rlp refuses it too


def test_poai_account_db_gives_py_evm_state_roots() -> None:
    """The same updates through both account DBs: identical roots at every step."""
    dbs = [cls(AtomicDB(), BLANK_ROOT_HASH) for cls in (AccountDB, PoaiAccountDB)]
    a, b = b"\x01" * 20, b"\x02" * 20
    steps = [
        lambda d: d.set_balance(a, 10**18),
        lambda d: d.increment_nonce(a),
        lambda d: d.set_nonce(b, 2**64 - 1),
        lambda d: d.set_code(b, b"\x60\x00"),
        lambda d: d.set_storage(b, 1, 42),
        lambda d: d.delete_code(b),
        lambda d: d.delete_storage(b),
        lambda d: d.set_balance(b, 0),
        lambda d: d.delete_account(a),
    ]
    for step in steps:
        roots = []
        for d in dbs:
            step(d)
            roots.append(d.make_state_root())
        assert roots[0] == roots[1]
    assert dbs[1].get_code_hash(b) == keccak(b"")
    for d in dbs:
        with pytest.raises(Exception, match="Balance"):
            d.set_balance(a, -1)


def test_code_cache_is_keyed_by_hash_and_never_stale() -> None:
    """Code read through the process-wide cache equals py-evm's reads, across states with
    different code at the same address, overwrites, deletions and reverts."""
    from poai.chain import accounts

    a = b"\x05" * 20
    ours = [PoaiAccountDB(AtomicDB(), BLANK_ROOT_HASH) for _ in range(2)]
    theirs = [AccountDB(AtomicDB(), BLANK_ROOT_HASH) for _ in range(2)]
    for i, (o, t) in enumerate(zip(ours, theirs, strict=True)):
        for db in (o, t):
            db.set_code(a, bytes([0x60, i, 0x00]))
    for o, t in zip(ours, theirs, strict=True):
        assert o.get_code(a) == t.get_code(a)  # same address, different code per state
    assert keccak(bytes([0x60, 0, 0x00])) in accounts._code
    o, t = ours[0], theirs[0]
    checkpoints = [db.record() for db in (o, t)]
    for db in (o, t):
        db.set_code(a, b"\x60\x07\x00")
    assert o.get_code(a) == t.get_code(a) == b"\x60\x07\x00"
    for db, cp in zip((o, t), checkpoints, strict=True):
        db.discard(cp)
    assert o.get_code(a) == t.get_code(a) == bytes([0x60, 0, 0x00])
    for db in (o, t):
        db.delete_code(a)
    assert o.get_code(a) == t.get_code(a) == b""


@pytest.mark.parametrize("seed", range(12))
def test_random_state_changes_give_py_evm_roots_and_storage(seed: int) -> None:
    """Random balances, nonces, slot writes and zeroings, storage wipes and account deletions,
    with checkpoints kept or reverted (also across a wipe) and persists between blocks: our
    batched tries give py-evm's roots at every step, the same slot reads, and a state reopened
    from our database at the last root reads the same."""
    rng = random.Random(seed)
    raw = [AtomicDB(), AtomicDB()]
    dbs = [cls(r, BLANK_ROOT_HASH) for cls, r in zip((AccountDB, PoaiAccountDB), raw,
                                                       strict=True)]
    addrs = [bytes([i + 1]) * 20 for i in range(6)]
    slots = list(range(12)) + [2**255]

    def step() -> Any:
        a, r = rng.choice(addrs), rng.random()
        if r < 0.35:
            v = rng.choice([0, 0, 1, rng.getrandbits(256)])
            s = rng.choice(slots)
            return lambda d: d.set_storage(a, s, v)
        if r < 0.5:
            v = rng.getrandbits(64)
            return lambda d: d.set_balance(a, v)
        if r < 0.6:
            return lambda d: d.increment_nonce(a)
        if r < 0.72 and a not in wiped:  # py-evm reverts across one wipe per account and tx
            wiped.add(a)
            if r < 0.68:
                return lambda d: d.delete_storage(a)
            return lambda d: d.delete_account(a)
        if r < 0.8:
            code = rng.randbytes(rng.randint(1, 40))
            return lambda d: d.set_code(a, code)
        return None

    for _block in range(8):
        for _tx in range(rng.randint(1, 6)):
            cps = [d.record() for d in dbs]
            wiped: set[bytes] = set()
            for _ in range(rng.randint(1, 8)):
                op = step()
                if op is not None:
                    for d in dbs:
                        op(d)
            keep = rng.random() < 0.7
            for d, cp in zip(dbs, cps, strict=True):
                d.commit(cp) if keep else d.discard(cp)
            for d in dbs:
                d.lock_changes()
            if rng.random() < 0.3:
                assert dbs[0].make_state_root() == dbs[1].make_state_root()
        roots = [d.make_state_root() for d in dbs]
        assert roots[0] == roots[1]
        for d in dbs:
            d.persist()
        for a in addrs:
            for s in slots:
                assert dbs[0].get_storage(a, s) == dbs[1].get_storage(a, s)
    reopened = PoaiAccountDB(raw[1], roots[1])
    for a in addrs:
        assert reopened.get_balance(a) == dbs[0].get_balance(a)
        for s in slots:
            assert reopened.get_storage(a, s) == dbs[0].get_storage(a, s)
