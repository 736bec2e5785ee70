"""Dev-chain rules (`poai node --dev` only): state cheats carried by real blocks, and the time
rule a node whose clock a developer moves (evm_increaseTime) can live with.

A dev chain is still a quiz-sealed chain: anvil_setBalance & co. do not write into the head's
state behind the chain's back.  They are queued as `Cheat`s and the next block carries them:
the block's `extraData` is the Keccak-256 of the cheats' RLP, which the node stores in its
database under that hash, and `DevPoaiVM.block_preprocessing` applies the cheats named by a
block's extraData before its transactions.  So a cheat block is built, sealed, stored and
re-executed (import) by the same rule, and its state root commits to the cheats.  A node that
does not hold the cheats (any non-dev node, a peer) cannot re-execute such a block and refuses
it with a state-root mismatch: cheat blocks never leave a dev chain.

Impersonated senders (anvil_impersonateAccount) sign with a key derived from the impersonated
address (`impersonation_key`), so py-evm's signature checks pass, and the pool takes the
impersonated address as the sender (poai.txpool.pool.assume_sender).  A block built while an
address is impersonated carries an IMPERSONATE record (signer -> address) among its cheats;
re-executing it, `DevPoaiVM` takes that address as the sender of the signer's transactions: the
dev rule through signature recovery.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar

import rlp
from eth.abc import (
    BlockAPI,
    BlockHeaderAPI,
    ComputationAPI,
    DatabaseAPI,
    ReceiptAPI,
    SignedTransactionAPI,
)
from eth_hash.auto import keccak
from eth_keys.datatypes import PrivateKey
from eth_typing import Address
from rlp.sedes import Binary, CountableList, big_endian_int, binary

from poai.chain.vm import PoaiVM
from poai.compat.pyevm import cache_sender

CHEATS_KEY_PREFIX = b"poai-dev-cheats:"
IMPERSONATION_DOMAIN = b"poai-dev-impersonate:"

# kind codes in the RLP (never reorder: stored blocks name them)
BALANCE, NONCE, CODE, STORAGE, IMPERSONATE = 0, 1, 2, 3, 4
_BYTES_KINDS = (CODE, IMPERSONATE)


@dataclass(frozen=True)
class Cheat:
    """One state change: `kind` (BALANCE, NONCE, CODE, STORAGE) on `address`; `slot` for
    STORAGE; `value` is an int (balance, nonce, storage word) or bytes (code).  IMPERSONATE:
    transactions signed by `address` are sent by `value` (20 bytes)."""

    kind: int
    address: bytes
    value: int | bytes
    slot: int = 0

    def __post_init__(self) -> None:
        if self.kind not in (BALANCE, NONCE, CODE, STORAGE, IMPERSONATE):
            raise ValueError(f"unknown cheat kind {self.kind}")
        if len(self.address) != 20:
            raise ValueError("a cheat's address is 20 bytes")
        if (self.kind in _BYTES_KINDS) != isinstance(self.value, bytes):
            raise ValueError("code and impersonation cheats carry bytes, the others integers")
        if self.kind == IMPERSONATE and len(self.value) != 20:  # type: ignore[arg-type]
            raise ValueError("an impersonated address is 20 bytes")
        if isinstance(self.value, int) and not 0 <= self.value < 2**256:
            raise ValueError("cheat value out of uint256 range")


_CHEAT_SEDES = CountableList(rlp.sedes.List([big_endian_int, Binary.fixed_length(20),
                                             big_endian_int, binary]))


def encode_cheats(cheats: Sequence[Cheat]) -> bytes:
    rows = []
    for c in cheats:
        value = c.value if isinstance(c.value, bytes) else c.value.to_bytes(32, "big")
        rows.append([c.kind, c.address, c.slot, value])
    return bytes(rlp.encode(rows, sedes=_CHEAT_SEDES))


def decode_cheats(blob: bytes) -> list[Cheat]:
    out = []
    for kind, address, slot, value in rlp.decode(blob, sedes=_CHEAT_SEDES):
        out.append(Cheat(kind, bytes(address), bytes(value) if kind in _BYTES_KINDS
                         else int.from_bytes(value, "big"), slot))
    return out


def store_cheats(db: DatabaseAPI, cheats: Sequence[Cheat]) -> bytes:
    """Write `cheats` into `db` under their hash; returns the hash (a block's extraData)."""
    blob = encode_cheats(cheats)
    digest = bytes(keccak(blob))
    db[CHEATS_KEY_PREFIX + digest] = blob
    return digest


def load_cheats(db: DatabaseAPI, extra_data: bytes) -> list[Cheat]:
    """The cheats a block's extraData names; [] when it names none this node holds."""
    if len(extra_data) != 32:
        return []
    blob = db.get(CHEATS_KEY_PREFIX + extra_data)
    return decode_cheats(blob) if blob is not None else []


def impersonation(address: bytes) -> Cheat:
    """The record a block carries while `address` is impersonated."""
    signer = bytes(keccak(PrivateKey(impersonation_key(address)).public_key.to_bytes()))
    return Cheat(IMPERSONATE, signer[12:], address)


def apply_cheat(state: Any, cheat: Cheat) -> None:
    address = Address(cheat.address)
    if cheat.kind == BALANCE:
        state.set_balance(address, cheat.value)
    elif cheat.kind == NONCE:
        state.set_nonce(address, cheat.value)
    elif cheat.kind == CODE:
        state.set_code(address, cheat.value)
    else:
        state.set_storage(address, cheat.slot, cheat.value)


def impersonation_key(address: bytes) -> bytes:
    """The private key that signs for an impersonated `address` (public: dev chains only)."""
    return bytes(keccak(IMPERSONATION_DOMAIN + address))


class DevPoaiVM(PoaiVM):
    """PoaiVM plus the dev rules: queued cheats at pre-processing, and the dev clock (moved by
    evm_increaseTime / evm_setNextBlockTimestamp) as the reference of the future-timestamp
    rule, so the node's own time cheats never trip it."""

    fork = "poai-prague-dev"
    # Set per node by poai.devmode.DevMode: () -> the dev clock's now (seconds).
    dev_clock: ClassVar[Any] = None
    # signer -> impersonated sender, from the block's IMPERSONATE records (block_preprocessing)
    _impersonated: Mapping[bytes, bytes] = MappingProxyType({})

    @classmethod
    def now(cls) -> float:
        clock = cls.dev_clock
        return float(clock()) if clock is not None else super().now()

    def block_preprocessing(self, block: BlockAPI) -> None:
        super().block_preprocessing(block)
        impersonated: dict[bytes, bytes] = {}
        for cheat in load_cheats(self.chaindb.db, block.header.extra_data):
            if cheat.kind == IMPERSONATE:
                impersonated[cheat.address] = bytes(cheat.value)
            else:
                apply_cheat(self.state, cheat)
        self._impersonated = impersonated

    def apply_all_transactions(
        self, transactions: Sequence[SignedTransactionAPI], base_header: BlockHeaderAPI
    ) -> tuple[BlockHeaderAPI, tuple[ReceiptAPI, ...], tuple[ComputationAPI, ...]]:
        # Import: a transaction signed by an impersonation key is sent by the address the
        # block's IMPERSONATE record names.
        impersonated = self._impersonated
        for tx in transactions if impersonated else ():
            sender = bytes(tx.sender)
            if sender in impersonated:
                cache_sender(tx, impersonated[sender])
        return super().apply_all_transactions(transactions, base_header)

