"""PoaiAccountDB: the same state roots as py-evm's AccountDB, and encode_account the same
bytes as rlp's sedes encoding."""

from __future__ import annotations

import random

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
