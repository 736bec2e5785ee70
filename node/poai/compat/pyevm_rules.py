"""py-evm private names PoAI's corrected transaction rules rely on (poai.chain.corrections).

A py-evm upgrade that renames one of these fails in tests/compat (RELIES_ON) and in
tests/conformance/test_corrections.py, instead of silently dropping a consensus rule.
"""

from __future__ import annotations

from eth.abc import StateAPI
from eth.vm.state import BaseState
from eth_typing import Address, Hash32

from poai.compat import Reliance

RELIES_ON: tuple[Reliance, ...] = (
    Reliance("eth.vm.state:BaseState._account_db", instance_attr=True),
    Reliance("eth.db.account:AccountDB._get_storage_root", "(self, address)"),
)


def storage_root(state: StateAPI, address: Address) -> Hash32:
    """The storage root the state's account record holds for `address` (BLANK_ROOT_HASH for no
    storage).  Within a block it is the root as of the last state-root computation; storage
    can only appear at an address without code or nonce through genesis or an earlier block,
    which is what EIP-7610 is about."""
    if not isinstance(state, BaseState):
        raise TypeError(f"expected a py-evm state, got {type(state).__name__}")
    root: Hash32 = state._account_db._get_storage_root(address)  # type: ignore[attr-defined]
    return root


__all__ = ["RELIES_ON", "storage_root"]
