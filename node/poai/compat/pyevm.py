"""py-evm (with py-trie and rlp): the one rebinding PoAI makes, and its private names.

- `install(make_trie_root_and_nodes)`: py-evm's block building, import and persistence build
  their ordered tries (transactions, receipts, withdrawals) through the given drop-in
  (poai.chain.ordered_trie: same roots, one pass).  py-evm imports the function by name into
  `eth.vm.base` and `eth.db.chain`, so both names are rebound.
- a transaction's recovered sender, kept where py-evm's `sender` cached_property looks;
- the private utilities PoAI calls (`eth._utils`), the caches it clears, and the one read of
  an account db's unsaved changes.

`RELIES_ON` also lists the private hooks that PoAI's other py-evm subclasses override or read
(poai.chain.receipts, transactions, signing, immutable, vm, computation; the account db's are
in poai.compat.pyevm_state): those classes plug into py-evm's extension points (the
transaction and receipt builders, `computation_class`) but override or read private hooks,
and this list is what an upgrade must keep.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import eth.db.chain
import eth.vm.base
from eth._utils.address import generate_contract_address
from eth._utils.rlp import validate_imported_block_unchanged
from eth.abc import SignedTransactionAPI, StateAPI
from eth.db.chain import ChainDB
from eth_typing import Address
from trie.hexary import HexaryTrie

from poai.compat import Reliance

TrieRootAndNodes = Callable[[Sequence[Any]], tuple[bytes, dict[bytes, bytes]]]

RELIES_ON: tuple[Reliance, ...] = (
    # rebound by install()
    Reliance("eth.db.trie:make_trie_root_and_nodes", "(items)"),
    Reliance("eth.vm.base:make_trie_root_and_nodes", "(items)"),
    Reliance("eth.db.chain:make_trie_root_and_nodes", "(items)"),
    # py-trie's own construction, which tests compare the drop-in against
    Reliance("eth.db.trie:_make_trie_root_and_nodes", "(items)"),
    # private utilities
    Reliance("eth._utils.address:generate_contract_address", "(address, nonce)"),
    Reliance("eth._utils.rlp:validate_imported_block_unchanged",
             "(obj_a, obj_b, obj_a_name=None, obj_b_name=None)"),
    # process-wide lru_caches holding databases (clear_caches)
    Reliance("eth.db.chain:ChainDB._get_block_transactions",
             "(self, transaction_root, transaction_decoder)"),
    Reliance("eth.db.chain:ChainDB._get_block_withdrawals", "(self, withdrawals_root)"),
    Reliance("trie.hexary:HexaryTrie._cached_create_node_to_db_mapping", "(self, node)"),
    # a transaction's sender: a functools.cached_property stored in the instance __dict__
    Reliance("eth.rlp.transactions:SignedTransactionMethods.sender", "(self)"),
    # an account db's unsaved changes (clean_storage_root)
    Reliance("eth.vm.state:BaseState._account_db", instance_attr=True),
    Reliance("eth.db.account:AccountDB._dirty_accounts", instance_attr=True),
    # poai.chain.transactions / receipts / signing: typed envelopes, encoded directly
    Reliance("eth.vm.forks.berlin.transactions:TypedTransaction._type_byte", "(self)"),
    Reliance("eth.vm.forks.berlin.transactions:TypedTransaction._inner", instance_attr=True),
    Reliance("eth.vm.forks.berlin.receipts:TypedReceipt._type_byte", "(self)"),
    Reliance("eth.vm.forks.berlin.receipts:TypedReceipt._inner", instance_attr=True),
    # poai.chain.vm: the state class and the reward hook of a VM
    Reliance("eth.vm.base:VM._state_class"),
    Reliance("eth.vm.base:VM._assign_block_rewards", "(self, block)"),
    # poai.chain.computation: a code stream's jump-destination analysis, shared per code
    Reliance("eth.vm.code_stream:CodeStream.valid_positions", instance_attr=True),
    Reliance("eth.vm.code_stream:CodeStream.invalid_positions", instance_attr=True),
    # poai.chain.immutable / signing / receipts: rlp objects' field metadata and encoding cache
    Reliance("eth.rlp.accounts:Account._meta"),
    Reliance("rlp.sedes.serializable:Serializable._cached_rlp"),
)


def install(make_trie_root_and_nodes: TrieRootAndNodes) -> None:
    """Route py-evm's ordered-trie construction (block building, import, persistence) through
    `make_trie_root_and_nodes`, a drop-in for eth.db.trie's.  Idempotent."""
    eth.vm.base.make_trie_root_and_nodes = make_trie_root_and_nodes  # type: ignore[attr-defined,assignment]
    eth.db.chain.make_trie_root_and_nodes = make_trie_root_and_nodes  # type: ignore[attr-defined,assignment]


def installed_trie_builder() -> Any:
    """The function py-evm's block building uses now (to check `install`)."""
    return eth.vm.base.make_trie_root_and_nodes  # type: ignore[attr-defined]


# -- a transaction's sender ----------------------------------------------------------------
# py-evm's `sender` is a functools.cached_property: a value in the instance __dict__ is what
# it returns without recovering the key again (building or importing the block).

def cached_sender(tx: SignedTransactionAPI) -> bytes | None:
    """The sender recovered for `tx` so far, None before anyone asked."""
    return tx.__dict__.get("sender")


def cache_sender(tx: SignedTransactionAPI, sender: bytes) -> None:
    """Record `sender` (recovered from `tx`'s own signature) as `tx.sender`."""
    tx.__dict__["sender"] = sender


def cache_sender_if_absent(tx: SignedTransactionAPI, sender: bytes) -> None:
    """`cache_sender` unless `tx.sender` is known already."""
    tx.__dict__.setdefault("sender", sender)


# -- rlp objects and typed envelopes -------------------------------------------------------
# rlp keeps a Serializable class's field layout in `_meta` and an object's encoding in
# `_cached_rlp`; py-evm's typed transactions/receipts wrap their payload in `_inner` behind a
# `_type_byte`.  PoAI's encoders read these to skip rlp's generic (slow) paths.

def rlp_fields(cls: type) -> tuple[tuple[str, ...], tuple[str, ...], tuple[Any, ...]] | None:
    """An rlp.Serializable class's (field names, instance attribute names, sedes), or None
    for a class that is not one."""
    meta = getattr(cls, "_meta", None)
    if meta is None:
        return None
    return tuple(meta.field_names), tuple(meta.field_attrs), tuple(meta.sedes)


def cached_rlp(obj: object) -> bytes | None:
    """The encoding rlp cached on `obj` (None until encoded once)."""
    return getattr(obj, "_cached_rlp", None)


def cache_rlp(obj: object, encoded: bytes) -> None:
    """Record `encoded` as `obj`'s rlp encoding, as `rlp.encode` caches it."""
    obj._cached_rlp = encoded  # type: ignore[attr-defined]


def typed_envelope(obj: object) -> tuple[bytes, Any] | None:
    """(type byte, inner payload object) of a py-evm typed transaction or receipt; None for a
    legacy one."""
    inner = getattr(obj, "_inner", None)
    if inner is None:
        return None
    return obj._type_byte, inner  # type: ignore[attr-defined]


def share_jump_analysis(code: Any, valid: set[int], invalid: set[int]) -> None:
    """Make a CodeStream use (and add to) shared jump-destination sets for its bytes."""
    code.valid_positions, code.invalid_positions = valid, invalid


# -- caches and state internals -------------------------------------------------------------

def clear_caches() -> None:
    """Empty py-evm's process-wide lru_caches on ChainDB and HexaryTrie methods: they hold
    their databases (and so a closed node's LevelDB) alive until exit."""
    ChainDB._get_block_transactions.cache_clear()
    ChainDB._get_block_withdrawals.cache_clear()
    HexaryTrie._cached_create_node_to_db_mapping.cache_clear()


def clean_storage_root(state: StateAPI, address: Address) -> bytes | None:
    """The storage root recorded for `address` in `state`, or None when `state` holds unsaved
    storage changes of that account (the recorded root is then stale) or is not py-evm's
    account-backed state."""
    db = getattr(state, "_account_db", None)
    dirty = getattr(db, "_dirty_accounts", None)
    if db is None or dirty is None or address in dirty:
        return None
    return bytes(db._get_storage_root(address))


__all__ = [
    "RELIES_ON", "cache_rlp", "cache_sender", "cache_sender_if_absent", "cached_rlp",
    "cached_sender", "clean_storage_root", "clear_caches", "generate_contract_address", "install",
    "installed_trie_builder", "rlp_fields", "share_jump_analysis", "typed_envelope",
    "validate_imported_block_unchanged",
]
