"""Field-sharing copies: the same objects, encodings and hashes as rlp's deep copies."""

from __future__ import annotations

import copy

import pytest
import rlp
from eth.rlp.accounts import Account
from eth.vm.forks.prague.blocks import PragueBlock
from poai.chain.immutable import build_fields, replace, replace_fields
from poai.chain.vm import PoaiBlock, PoaiVM


def _block() -> PoaiBlock:
    header = PoaiVM.create_header_from_parent(
        None, difficulty=7, gas_limit=30_000_000, timestamp=1, base_fee_per_gas=10**9)
    return PoaiBlock(header=header, transactions=[], uncles=[], withdrawals=[])


def test_replace_shares_unchanged_fields_and_equals_rlp_copy() -> None:
    acct = Account(nonce=3, balance=10**20, storage_root=b"\x11" * 32, code_hash=b"\x22" * 32)
    ours, theirs = replace(acct, balance=5), acct.copy(balance=5)
    assert ours == theirs and rlp.encode(ours) == rlp.encode(theirs)
    assert ours.storage_root is acct.storage_root  # shared, not copied
    assert acct.balance == 10**20  # the original is untouched
    with pytest.raises(TypeError, match="no fields"):
        replace(acct, colour=1)


def test_block_copies_share_fields_and_start_without_requests() -> None:
    block = _block()
    block.block_requests.append(b"\x00")
    header = replace(block.header, nonce=b"\x00" * 7 + b"\x05")
    ours = block.copy(header=header)
    theirs = PragueBlock.copy(block, header=header)  # rlp's deep copy, for comparison
    assert rlp.encode(ours) == rlp.encode(theirs) and ours.hash == theirs.hash
    assert ours.transactions is block.transactions
    assert type(ours) is PoaiBlock
    for twin in (copy.copy(block), copy.deepcopy(block), block.copy()):
        assert twin == block and twin is not block
        assert twin.block_requests == []  # a new block, as rlp's copies are
    with pytest.raises(TypeError, match="given twice"):
        block.copy(header, header=header)


def test_replace_fields_equals_rlp_copy_for_headers_and_accounts() -> None:
    header = _block().header
    rlp.encode(header, cache=True)  # caches must not travel to the copy
    _ = hash(header)
    ours = replace_fields(header, gas_used=21_000, bloom=header.bloom | 1 << 100)
    theirs = header.copy(gas_used=21_000, bloom=header.bloom | 1 << 100)
    assert type(ours) is type(header)
    assert rlp.encode(ours) == rlp.encode(theirs) and ours.hash == theirs.hash
    assert ours.parent_hash is header.parent_hash and header.gas_used == 0
    acct = Account(nonce=3, balance=10**20, storage_root=b"\x11" * 32, code_hash=b"\x22" * 32)
    assert rlp.encode(replace_fields(acct, nonce=4)) == rlp.encode(acct.copy(nonce=4))
    with pytest.raises(TypeError, match="no fields"):
        replace_fields(acct, colour=1)


def test_header_and_account_instances_hold_only_their_fields() -> None:
    """What `replace_fields` relies on: an ``__init__`` that stores the fields and nothing else
    (a py-evm upgrade that adds state to these classes must fail here)."""
    header = _block().header
    acct = Account()
    for obj in (header, acct):
        assert set(obj.__dict__) == set(obj._meta.field_attrs)


def test_build_fields_needs_every_field_and_equals_the_constructor() -> None:
    acct = build_fields(Account, nonce=1, balance=2, storage_root=b"\x11" * 32,
                        code_hash=b"\x22" * 32)
    assert rlp.encode(acct) == rlp.encode(Account(1, 2, b"\x11" * 32, b"\x22" * 32))
    with pytest.raises(TypeError, match="exactly the fields"):
        build_fields(Account, nonce=1, balance=2)
