"""py-evm's account and storage databases, re-plumbed for batched trie updates.

py-evm has one extension point here, a state's `account_db_class`; what a faster account db
changes (how an account is written to the journal, which trie backs the account pipe, when
storage writes reach their trie) sits in AccountDB's and StorageLookup's private methods and
attributes.  `batched_account_db` builds the subclasses from PoAI's pieces
(poai.chain.accounts passes them: the read-only trie, the whole-block trie update, the account
encoder and the field-sharing copy), so every private name they touch is here and listed in
RELIES_ON.  The pieces are closed over, not looked up on the class: the same cost per call as
the module globals they were.

Same checks, same objects, same state roots as py-evm's (tests/chain/test_accounts.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
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
from eth_hash.auto import keccak
from eth_typing import Address, Hash32
from trie.hexary import HexaryTrie

from poai.compat import Reliance

RELIES_ON: tuple[Reliance, ...] = (
    Reliance("eth.db.account:AccountDB._trie", instance_attr=True),
    Reliance("eth.db.account:AccountDB._batchtrie", instance_attr=True),
    Reliance("eth.db.account:AccountDB._trie_logger", instance_attr=True),
    Reliance("eth.db.account:AccountDB._trie_cache", instance_attr=True),
    Reliance("eth.db.account:AccountDB._journaltrie", instance_attr=True),
    Reliance("eth.db.account:AccountDB._journaldb", instance_attr=True),
    Reliance("eth.db.account:AccountDB._account_cache", instance_attr=True),
    Reliance("eth.db.account:AccountDB._account_stores", instance_attr=True),
    Reliance("eth.db.account:AccountDB._raw_store_db", instance_attr=True),
    Reliance("eth.db.account:AccountDB._get_account", "(self, address, from_journal=True)"),
    Reliance("eth.db.account:AccountDB._set_account", "(self, address, account)"),
    Reliance("eth.db.account:AccountDB._get_address_store", "(self, address)"),
    Reliance("eth.db.account:AccountDB._set_storage_root", "(self, address, new_storage_root)"),
    Reliance("eth.db.account:AccountDB._get_storage_root", "(self, address)"),
    Reliance("eth.db.account:AccountDB._dirty_account_stores", "(self)"),
    Reliance("eth.db.account:AccountDB._get_changed_roots", "(self)"),
    Reliance("eth.db.account:AccountDB.make_state_root", "(self)"),
    Reliance("eth.db.storage:StorageLookup._db", instance_attr=True),
    Reliance("eth.db.storage:StorageLookup._trie_nodes_batch", instance_attr=True),
    Reliance("eth.db.storage:StorageLookup._write_trie", instance_attr=True),
    Reliance("eth.db.storage:StorageLookup._starting_root_hash", instance_attr=True),
    Reliance("eth.db.storage:StorageLookup._initialize_to_root_hash", "(self, root_hash)"),
    Reliance("eth.db.storage:StorageLookup._get_write_trie", "(self)"),
    Reliance("eth.db.storage:StorageLookup._get_read_trie", "(self)"),
    Reliance("eth.db.storage:StorageLookup._decode_key", "(self, key)"),
    Reliance("eth.db.storage:StorageLookup._exists", "(self, key)"),
    Reliance("eth.db.storage:StorageLookup.get_changed_root", "(self)"),
    Reliance("eth.db.storage:StorageLookup.commit_to", "(self, db)"),
    Reliance("eth.db.storage:StorageLookup.new_trie", "(self)"),
    Reliance("eth.db.storage:StorageLookup.rollback_trie", "(self, trie_index)"),
    Reliance("eth.db.storage:AccountStorageDB._storage_lookup", instance_attr=True),
    Reliance("eth.db.storage:AccountStorageDB._storage_cache", instance_attr=True),
    Reliance("eth.db.storage:AccountStorageDB._locked_changes", instance_attr=True),
    Reliance("eth.db.storage:AccountStorageDB._journal_storage", instance_attr=True),
)

TrieClass = Callable[[Any, bytes], HexaryTrie]  # (node db, root hash) -> a trie for reads
UpdateTrie = Callable[[MutableMapping[bytes, bytes], bytes, Mapping[bytes, bytes]], bytes]
EncodeAccount = Callable[[Account], bytes]
ReplaceFields = Callable[..., Account]  # (account, **changed fields) -> a new account


def batched_account_db(
    trie_class: TrieClass,
    update_trie: UpdateTrie,
    encode_account: EncodeAccount,
    replace_fields: ReplaceFields,
    code_cache: MutableMapping[bytes, bytes],
    code_cache_max_bytes: int,
) -> tuple[type[AccountDB], type[AccountStorageDB], type[StorageLookup]]:
    """(account db, account storage db, storage lookup) classes:

    - accounts are written as `encode_account(account)` into the journal trie, and changed
      with `replace_fields` (py-evm deep-copies the unchanged fields and walks rlp's sedes);
    - the account trie and each storage trie are `trie_class` for reads; a block's account
      changes, and each account's storage changes, are applied with one `update_trie` call
      each (py-trie sets one key at a time and prunes in batch);
    - contract code is kept in `code_cache` by code hash (a hash names its code), up to
      `code_cache_max_bytes` per contract."""

    class BatchedStorageLookup(StorageLookup):
        """py-evm's StorageLookup with its slot writes kept until the storage root is needed,
        then applied in one trie walk.  Reads see the kept writes (a deleted slot reads b"",
        as the trie gives for an absent key)."""

        _pending: dict[bytes, bytes]

        def _initialize_to_root_hash(self, root_hash: Hash32) -> None:
            super()._initialize_to_root_hash(root_hash)
            self._pending = {}

        def _get_write_trie(self) -> HexaryTrie:
            if self._trie_nodes_batch is None:
                self._trie_nodes_batch = BatchDB(self._db, read_through_deletes=True)
            if self._write_trie is None:
                self._write_trie = trie_class(self._trie_nodes_batch, self._starting_root_hash)
            return self._write_trie

        def _get_read_trie(self) -> HexaryTrie:
            if self._write_trie is not None:
                return self._write_trie
            return trie_class(self._db, self._starting_root_hash)

        def _flush(self) -> None:
            if self._pending:
                trie = self._get_write_trie()
                batch = self._trie_nodes_batch
                assert batch is not None  # made by _get_write_trie
                trie.root_hash = update_trie(batch, trie.root_hash, self._pending)
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

    class BatchedAccountStorageDB(AccountStorageDB):
        def __init__(self, db: Any, storage_root: Hash32, address: Address) -> None:
            super().__init__(db, storage_root, address)
            # py-evm's pipe (lookup -> cache -> locked changes -> journal) on the batching
            # lookup.
            self._storage_lookup = BatchedStorageLookup(db, storage_root, address)
            self._storage_cache = CacheDB(self._storage_lookup)
            self._locked_changes = JournalDB(self._storage_cache)
            self._journal_storage = JournalDB(self._locked_changes)

    class BatchedAccountDB(AccountDB):
        def __init__(self, db: Any, state_root: Hash32 = BLANK_ROOT_HASH) -> None:
            super().__init__(db, state_root)
            # py-evm's account pipe (trie -> access log -> cache -> journal) on `trie_class`.
            self._trie = HashTrie(trie_class(self._batchtrie, state_root))  # type: ignore[arg-type]
            self._trie_logger = KeyAccessLoggerDB(self._trie, log_missing_keys=False)
            self._trie_cache = CacheDB(self._trie_logger)
            self._journaltrie = JournalDB(self._trie_cache)

        def get_code(self, address: Address) -> bytes:
            validate_canonical_address(address, title="Storage Address")
            code_hash = self._get_account(address).code_hash
            if code_hash == EMPTY_SHA3:
                return b""
            code = code_cache.get(code_hash)
            if code is None:
                code = super().get_code(address)
                if len(code) <= code_cache_max_bytes:
                    code_cache[code_hash] = code
            return code

        def set_balance(self, address: Address, balance: int) -> None:
            validate_canonical_address(address, title="Storage Address")
            validate_uint256(balance, title="Account Balance")
            self._set_account(address, replace_fields(self._get_account(address),
                                                      balance=balance))

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
            self._set_account(address, replace_fields(self._get_account(address),
                                                      code_hash=EMPTY_SHA3))

        def _set_storage_root(self, address: Address, new_storage_root: Hash32) -> None:
            account = self._get_account(address)
            self._set_account(address, replace_fields(account, storage_root=new_storage_root))

        def _set_account(self, address: Address, account: Account) -> None:
            self._account_cache[address] = account
            self._journaltrie[address] = encode_account(account)

        def _get_address_store(self, address: Address) -> AccountStorageDatabaseAPI:
            store = self._account_stores.get(address)
            if store is None:
                store = BatchedAccountStorageDB(self._raw_store_db,
                                                self._get_storage_root(address), address)
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
                self._trie.root_hash = update_trie(self._batchtrie, self._trie.root_hash,
                                                   changes)
            self._journaltrie.reset()
            self._trie_cache.reset_cache()
            return self.state_root

    return BatchedAccountDB, BatchedAccountStorageDB, BatchedStorageLookup


__all__ = ["RELIES_ON", "batched_account_db"]
