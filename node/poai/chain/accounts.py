"""The account database of PoAI states: py-evm's AccountDB with cheaper account updates.

Every balance or nonce change replaces the account object and writes its RLP into the journal
trie (a transfer changes three or four accounts).  py-evm deep-copies the unchanged fields for
the new object and encodes it through rlp's generic sedes walk; here the new object shares the
(immutable) unchanged fields and the four-field account list is encoded directly.  Same checks,
same objects, same bytes (tests/chain/test_accounts.py compares both ways).

State roots: a block's account changes, and each account's storage changes, go into their
tries in one `update_trie` walk (poai.chain.state_trie) instead of py-trie's one set per key
with in-batch pruning; the same roots, and only the final nodes are written.
"""

from __future__ import annotations

from typing import Any

from eth.abc import AccountStorageDatabaseAPI
from eth.constants import BLANK_ROOT_HASH, EMPTY_SHA3
from eth.db.accesslog import KeyAccessLoggerDB
from eth.db.account import AccountDB
from eth.db.batch import BatchDB
from eth.db.cache import CacheDB
from eth.db.hash_trie import HashTrie
from eth.db.journal import JournalDB
from eth.db.storage import AccountStorageDB, StorageLookup
from eth.rlp.accounts import Account
from eth.validation import (
    validate_canonical_address,
    validate_is_bytes,
    validate_uint64,
    validate_uint256,
)
from eth_typing import Address, Hash32
from eth_utils.crypto import keccak
from lru import LRU
from trie.hexary import HexaryTrie

from poai.chain.immutable import replace_fields
from poai.chain.rlpcodec import encode_uint
from poai.chain.state_trie import StateTrie, update_trie


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


class PoaiAccountDB(AccountDB):
    def __init__(self, db: Any, state_root: Hash32 = BLANK_ROOT_HASH) -> None:
        super().__init__(db, state_root)
        # py-evm's account pipe (trie -> access log -> cache -> journal) on a StateTrie.
        # (py-evm types HashTrie over a DatabaseAPI; a StateTrie is the same mapping)
        self._trie = HashTrie(StateTrie(self._batchtrie, state_root))  # type: ignore[arg-type]
        self._trie_logger = KeyAccessLoggerDB(self._trie, log_missing_keys=False)
        self._trie_cache = CacheDB(self._trie_logger)
        self._journaltrie = JournalDB(self._trie_cache)

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
        self._set_account(address, replace_fields(self._get_account(address), balance=balance))

    def set_nonce(self, address: Address, nonce: int) -> None:
        validate_canonical_address(address, title="Storage Address")
        validate_uint64(nonce, title="Nonce")  # 2**64 - 1 allowed, as py-evm does
        self._set_account(address, replace_fields(self._get_account(address), nonce=nonce))

    def set_code(self, address: Address, code: bytes) -> None:
        validate_canonical_address(address, title="Storage Address")
        validate_is_bytes(code, title="Code")
        account = self._get_account(address)
        code_hash = keccak(code)
        self._journaldb[code_hash] = code
        self._set_account(address, replace_fields(account, code_hash=code_hash))

    def delete_code(self, address: Address) -> None:
        validate_canonical_address(address, title="Storage Address")
        self._set_account(address, replace_fields(self._get_account(address), code_hash=EMPTY_SHA3))

    def _set_storage_root(self, address: Address, new_storage_root: Hash32) -> None:
        account = self._get_account(address)
        self._set_account(address, replace_fields(account, storage_root=new_storage_root))

    def _set_account(self, address: Address, account: Account) -> None:
        self._account_cache[address] = account
        self._journaltrie[address] = encode_account(account)

    def _get_address_store(self, address: Address) -> AccountStorageDatabaseAPI:
        store = self._account_stores.get(address)
        if store is None:
            store = PoaiAccountStorageDB(self._raw_store_db, self._get_storage_root(address),
                                         address)
            self._account_stores[address] = store
        return store

    def make_state_root(self) -> Hash32:
        """py-evm's make_state_root, with the account changes applied in one trie walk."""
        for _address, store in self._dirty_account_stores():
            store.make_storage_root()
        for address, storage_root in self._get_changed_roots():
            if self.account_exists(address) or storage_root != BLANK_ROOT_HASH:
                self._set_storage_root(address, storage_root)
        self._journaldb.persist()
        diff = self._journaltrie.diff()
        changes = {keccak(k): b"" for k in diff.deleted_keys()}
        changes.update((keccak(k), v) for k, v in diff.pending_items())
        if changes:
            self._trie.root_hash = update_trie(self._batchtrie, self._trie.root_hash, changes)
        self._journaltrie.reset()
        self._trie_cache.reset_cache()
        return self.state_root


class PoaiStorageLookup(StorageLookup):
    """py-evm's StorageLookup with its slot writes kept until the storage root is needed, then
    applied in one trie walk.  Reads see the kept writes (a deleted slot reads b"", as the trie
    gives for an absent key)."""

    _pending: dict[bytes, bytes]

    def _initialize_to_root_hash(self, root_hash: Hash32) -> None:
        super()._initialize_to_root_hash(root_hash)
        self._pending = {}

    def _get_write_trie(self) -> HexaryTrie:
        if self._trie_nodes_batch is None:
            self._trie_nodes_batch = BatchDB(self._db, read_through_deletes=True)
        if self._write_trie is None:
            self._write_trie = StateTrie(self._trie_nodes_batch, self._starting_root_hash)
        return self._write_trie

    def _get_read_trie(self) -> HexaryTrie:
        if self._write_trie is not None:
            return self._write_trie
        return StateTrie(self._db, self._starting_root_hash)

    def _flush(self) -> None:
        if self._pending:
            trie = self._get_write_trie()
            trie.root_hash = update_trie(self._trie_nodes_batch, trie.root_hash, self._pending)
            self._pending = {}

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._get_write_trie()  # marks the root changed, as a trie write does
        self._pending[self._decode_key(key)] = value

    def __delitem__(self, key: bytes) -> None:
        self._get_write_trie()
        self._pending[self._decode_key(key)] = b""

    def __getitem__(self, key: bytes) -> bytes:
        pending = self._pending.get(self._decode_key(key))
        return super().__getitem__(key) if pending is None else pending

    def _exists(self, key: bytes) -> bool:
        pending = self._pending.get(self._decode_key(key))
        return super()._exists(key) if pending is None else pending != b""

    def get_changed_root(self) -> Hash32:
        self._flush()
        return super().get_changed_root()

    def commit_to(self, db: Any) -> None:
        self._flush()
        super().commit_to(db)

    def new_trie(self) -> int:
        self._flush()  # the writes before a wipe belong to the trie kept for a revert
        return super().new_trie()

    def rollback_trie(self, trie_index: int) -> None:
        self._pending = {}  # writes since the wipe belonged to the trie being dropped
        super().rollback_trie(trie_index)


class PoaiAccountStorageDB(AccountStorageDB):
    def __init__(self, db: Any, storage_root: Hash32, address: Address) -> None:
        super().__init__(db, storage_root, address)
        # The same pipe as py-evm's (lookup -> cache -> locked changes -> journal), on the
        # batching lookup.
        self._storage_lookup = PoaiStorageLookup(db, storage_root, address)
        self._storage_cache = CacheDB(self._storage_lookup)
        self._locked_changes = JournalDB(self._storage_cache)
        self._journal_storage = JournalDB(self._locked_changes)


__all__ = ["PoaiAccountDB", "PoaiAccountStorageDB", "PoaiStorageLookup", "encode_account"]
