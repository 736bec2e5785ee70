"""py-evm private names PoAI's corrected transaction rules rely on (poai.chain.corrections).

A py-evm upgrade that renames one of these fails here, at import or in
tests/conformance/test_corrections.py, instead of silently dropping a consensus rule.
"""

from __future__ import annotations

from eth.abc import StateAPI
from eth.db.account import AccountDB
from eth.vm.state import BaseState
from eth_typing import Address, Hash32

# The names, as "Class.attribute", each checked below when this module is imported.
PRIVATE_NAMES = ["BaseState._account_db", "AccountDB._get_storage_root"]

if not hasattr(AccountDB, "_get_storage_root"):
    raise ImportError("py-evm's AccountDB._get_storage_root is gone: see poai.compat.pyevm_rules")


def storage_root(state: StateAPI, address: Address) -> Hash32:
    """The storage root the state's account record holds for `address` (BLANK_ROOT_HASH for no
    storage).  Within a block it is the root as of the last state-root computation; storage
    can only appear at an address without code or nonce through genesis or an earlier block,
    which is what EIP-7610 is about."""
    if not isinstance(state, BaseState):
        raise TypeError(f"expected a py-evm state, got {type(state).__name__}")
    root: Hash32 = state._account_db._get_storage_root(address)  # type: ignore[attr-defined]
    return root


__all__ = ["PRIVATE_NAMES", "storage_root"]
