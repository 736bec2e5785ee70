"""The account database of PoAI states: py-evm's AccountDB with cheaper account updates.

Every balance or nonce change replaces the account object and writes its RLP into the journal
trie (a transfer changes three or four accounts).  py-evm deep-copies the unchanged fields for
the new object and encodes it through rlp's generic sedes walk; here the new object shares the
(immutable) unchanged fields and the four-field account list is encoded directly.  Same checks,
same objects, same bytes (tests/chain/test_accounts.py compares both ways).
"""

from __future__ import annotations

from typing import Any

from eth.constants import EMPTY_SHA3
from eth.db.account import AccountDB
from eth.rlp.accounts import Account
from eth.validation import (
    validate_canonical_address,
    validate_is_bytes,
    validate_uint64,
    validate_uint256,
)
from eth_typing import Address, Hash32
from eth_utils import keccak
from lru import LRU

from poai.chain.immutable import replace


def _rlp_string(b: bytes) -> bytes:
    n = len(b)
    if n == 1 and b[0] < 0x80:
        return b
    if n < 56:
        return bytes((0x80 + n,)) + b
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0xB7 + len(size),)) + size + b


def _rlp_uint(value: int) -> bytes:
    if value < 0:
        raise ValueError(f"cannot encode negative integer {value}")
    return _rlp_string(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def encode_account(account: Account) -> bytes:
    """``rlp.encode(account, sedes=Account)``: [nonce, balance, storageRoot, codeHash]."""
    root, code = account.storage_root, account.code_hash
    if len(root) != 32 or len(code) != 32:
        raise ValueError("an account's storage root and code hash are 32 bytes")
    payload = (_rlp_uint(account.nonce) + _rlp_uint(account.balance)
               + b"\xa0" + root + b"\xa0" + code)
    n = len(payload)  # 68..108 bytes: a long list with a one-byte length
    return bytes((0xF8, n)) + payload


# Contract code by code hash, shared by every state of the process: a hash names its code, so
# an entry never goes stale.  py-evm reads it from the db for every call into a contract (the
# EIP-4788 and EIP-2935 system calls of every block, each eth_call).
CODE_CACHE_SIZE = 256  # at most 256 x 64 KB resident
CODE_CACHE_MAX_BYTES = 64 * 1024  # bigger than any contract (EIP-170: 24,576 bytes)
_code: Any = LRU(CODE_CACHE_SIZE)


class PoaiAccountDB(AccountDB):
    def get_code(self, address: Address) -> bytes:
        validate_canonical_address(address, title="Storage Address")
        code_hash = self._get_account(address).code_hash
        if code_hash == EMPTY_SHA3:
            return b""
        code = _code.get(code_hash)
        if code is None:
            code = super().get_code(address)
            if len(code) <= CODE_CACHE_MAX_BYTES:
                _code[code_hash] = code
        return code  # type: ignore[no-any-return]

    def set_balance(self, address: Address, balance: int) -> None:
        validate_canonical_address(address, title="Storage Address")
        validate_uint256(balance, title="Account Balance")
        self._set_account(address, replace(self._get_account(address), balance=balance))

    def set_nonce(self, address: Address, nonce: int) -> None:
        validate_canonical_address(address, title="Storage Address")
        validate_uint64(nonce, title="Nonce")  # 2**64 - 1 allowed, as py-evm does
        self._set_account(address, replace(self._get_account(address), nonce=nonce))

    def set_code(self, address: Address, code: bytes) -> None:
        validate_canonical_address(address, title="Storage Address")
        validate_is_bytes(code, title="Code")
        account = self._get_account(address)
        code_hash = keccak(code)
        self._journaldb[code_hash] = code
        self._set_account(address, replace(account, code_hash=code_hash))

    def delete_code(self, address: Address) -> None:
        validate_canonical_address(address, title="Storage Address")
        self._set_account(address, replace(self._get_account(address), code_hash=EMPTY_SHA3))

    def _set_storage_root(self, address: Address, new_storage_root: Hash32) -> None:
        account = self._get_account(address)
        self._set_account(address, replace(account, storage_root=new_storage_root))

    def _set_account(self, address: Address, account: Account) -> None:
        self._account_cache[address] = account
        self._journaltrie[address] = encode_account(account)


__all__ = ["PoaiAccountDB", "encode_account"]
