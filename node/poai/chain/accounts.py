"""The account database of PoAI states: py-evm's AccountDB with cheaper account updates.

Every balance or nonce change replaces the account object and writes its RLP into the journal
trie (a transfer changes three or four accounts).  py-evm deep-copies the unchanged fields for
the new object and encodes it through rlp's generic sedes walk; here the new object shares the
(immutable) unchanged fields and the four-field account list is encoded directly.  Same checks,
same objects, same bytes (tests/chain/test_accounts.py compares both ways).

State roots: a block's account changes, and each account's storage changes, go into their
tries in one `update_trie` walk (poai.chain.state_trie) instead of py-trie's one set per key
with in-batch pruning; the same roots, and only the final nodes are written.

The classes are assembled from these pieces by poai.compat.pyevm_state, where py-evm's private
hooks they override live.
"""

from __future__ import annotations

from typing import Any

from eth.rlp.accounts import Account
from lru import LRU

from poai.chain.immutable import replace_fields
from poai.chain.rlpcodec import encode_uint
from poai.chain.state_trie import StateTrie, update_trie
from poai.compat.pyevm_state import batched_account_db


def encode_account(account: Account) -> bytes:
    """``rlp.encode(account, sedes=Account)``: [nonce, balance, storageRoot, codeHash]."""
    root, code = account.storage_root, account.code_hash
    if len(root) != 32 or len(code) != 32:
        raise ValueError("an account's storage root and code hash are 32 bytes")
    payload = (encode_uint(account.nonce) + encode_uint(account.balance)
               + b"\xa0" + root + b"\xa0" + code)
    n = len(payload)  # 68..108 bytes: a long list with a one-byte length
    return bytes((0xF8, n)) + payload


# Contract code by code hash, shared by every state of the process: a hash names its code, so
# an entry never goes stale.  py-evm reads it from the db for every call into a contract (the
# EIP-4788 and EIP-2935 system calls of every block, each eth_call).
CODE_CACHE_SIZE = 256  # at most 256 x 64 KB resident
CODE_CACHE_MAX_BYTES = 64 * 1024  # bigger than any contract (EIP-170: 24,576 bytes)
_code: Any = LRU(CODE_CACHE_SIZE)


PoaiAccountDB, PoaiAccountStorageDB, PoaiStorageLookup = batched_account_db(
    StateTrie, update_trie, encode_account, replace_fields, _code, CODE_CACHE_MAX_BYTES)


__all__ = ["PoaiAccountDB", "PoaiAccountStorageDB", "PoaiStorageLookup", "encode_account"]
