"""The message a transaction's sender signed, encoded from its fields without py-evm's detour.

py-evm builds an `Unsigned...Transaction` object (keyword merging, validation) for each typed
transaction only to RLP-encode it again, which costs a third as much as recovering the key
itself: it runs for every transaction a node admits or imports.  For a typed transaction
(EIP-2718) the signed payload is ``type || rlp(fields without y_parity, r, s)``; here those
fields go through their own sedes straight into the bytes.  Legacy transactions keep py-evm's
path.  tests/chain/test_signing.py compares both on every transaction type.
"""

from __future__ import annotations

from typing import Any

from eth.abc import SignedTransactionAPI
from rlp.sedes import BigEndianInt, Binary

from poai.chain.rlpcodec import encode_item, encode_list_payload, encode_string, encode_uint
from poai.compat.pyevm import rlp_fields, typed_envelope

SIGNATURE_FIELDS = ("y_parity", "r", "s")

# inner transaction class -> (encoder, sedes, attribute) per signed field; None: py-evm's path
_Plan = tuple[tuple[Any, Any, str], ...]
_plans: dict[type, _Plan | None] = {}


def _encode_uint(sedes: BigEndianInt, value: Any) -> bytes:
    if type(value) is int and value >= 0:
        return encode_uint(value)
    return encode_item(sedes.serialize(value))  # raises as rlp does


def _encode_bytes(sedes: Binary, value: Any) -> bytes:
    if type(value) is bytes and sedes.is_valid_length(len(value)):
        return encode_string(value)
    return encode_item(sedes.serialize(value))  # raises as rlp does


def _encode_other(sedes: Any, value: Any) -> bytes:
    return encode_item(sedes.serialize(value))


def _encoder(sedes: Any) -> Any:
    if type(sedes) is BigEndianInt and sedes.length is None:
        return _encode_uint
    if type(sedes) is Binary:
        return _encode_bytes
    return _encode_other


def _plan(cls: type) -> _Plan | None:
    if cls not in _plans:
        layout = rlp_fields(cls)
        plan = None
        if layout is not None and layout[0][-3:] == SIGNATURE_FIELDS:
            names, attrs, sedes_list = layout
            plan = tuple((_encoder(sedes), sedes, attr) for sedes, attr
                         in zip(sedes_list[:-3], attrs[:-3], strict=True))
        _plans[cls] = plan
    return _plans[cls]


def signing_message(tx: SignedTransactionAPI) -> bytes:
    """``tx.get_message_for_signing()``: the same bytes."""
    envelope = typed_envelope(tx)
    plan = _plan(type(envelope[1])) if envelope is not None else None
    if envelope is None or plan is None:
        return tx.get_message_for_signing()
    type_byte, inner = envelope
    fields = inner.__dict__
    payload = b"".join([encode(sedes, fields[attr]) for encode, sedes, attr in plan])
    return type_byte + encode_list_payload(payload)


__all__ = ["signing_message"]
