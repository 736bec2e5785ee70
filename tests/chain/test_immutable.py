"""Field-sharing copies: the same objects, encodings and hashes as rlp's deep copies, and the
same state roots from PoaiAccountDB as from py-evm's AccountDB."""

from __future__ import annotations

import copy

import pytest
import rlp
from eth.constants import BLANK_ROOT_HASH
from eth.db.account import AccountDB
from eth.db.atomic import AtomicDB
from eth.rlp.accounts import Account
from eth.vm.forks.prague.blocks import PragueBlock
from eth_utils import keccak
from poai.chain.immutable import replace
from poai.chain.vm import PoaiAccountDB, PoaiBlock, PoaiVM


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
