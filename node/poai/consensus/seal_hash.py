"""The seal hash: what a quiz seal commits to.

Keccak-256 of the RLP header with `mixHash` and `nonce` left out, as geth's `SealHash`: the seal
(nonce, packed q values) cannot be part of what it seals.  Every other field, including the
post-London ones (base fee, withdrawals root, blob gas, beacon root, requests hash), is covered.
"""

from __future__ import annotations

import rlp
from eth.abc import BlockHeaderAPI
from eth_hash.auto import keccak

# Positions of mixHash and nonce in every Ethereum header layout (frontier through Prague).
MIX_HASH_INDEX = 13
NONCE_INDEX = 14


def seal_hash(header: BlockHeaderAPI) -> bytes:
    """Keccak-256 of the header's RLP fields without mixHash and nonce."""
    fields = list(type(header).serialize(header))
    if len(fields) <= NONCE_INDEX:
        raise ValueError(f"header has {len(fields)} fields, too few for a sealed header")
    del fields[MIX_HASH_INDEX : NONCE_INDEX + 1]
    digest: bytes = keccak(rlp.encode(fields))
    return digest
