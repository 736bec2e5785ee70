"""Declared parameters of every JSON-RPC method, checked before a handler runs (as geth's
reflection-based argument decoding does): the count, each required argument's presence and each
argument's JSON type and hex shape. A violation is -32602 naming the argument; the handlers then
parse values they know are well-formed.

A namespace module declares its methods' arguments in a `PARAMS` dict beside `METHODS`:
`"eth_getBalance": (Arg("address", ADDRESS), Arg("block", BLOCK_OR_HASH, optional=True))`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from poai.rpc.errors import InvalidParams
from poai.rpc.hexutil import parse_address, parse_data, parse_hash, parse_qty

Check = Callable[[Any, str], None]  # raises InvalidParams with the argument's description


@dataclass(frozen=True)
class Arg:
    name: str
    check: Check
    optional: bool = False


BLOCK_TAGS = frozenset({"latest", "earliest", "pending", "safe", "finalized"})


def QTY(value: Any, name: str) -> None:
    parse_qty(value, name)


def DATA(value: Any, name: str) -> None:
    parse_data(value, name)


def ADDRESS(value: Any, name: str) -> None:
    parse_address(value, name)


def HASH(value: Any, name: str) -> None:
    parse_hash(value, name)


def BOOL(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise InvalidParams(f"invalid {name}: expected true or false, got {_show(value)}")


def STRING(value: Any, name: str) -> None:
    if not isinstance(value, str):
        raise InvalidParams(f"invalid {name}: expected a string, got {_show(value)}")


def ANY(value: Any, name: str) -> None:
    return None


def BLOCK(value: Any, name: str) -> None:
    """A block tag or number (geth's BlockNumber)."""
    if isinstance(value, str) and not value.startswith(("0x", "0X")):
        if value not in BLOCK_TAGS:
            raise InvalidParams(f"invalid {name}: unknown block tag {value!r}")
        return
    parse_qty(value, name)


def BLOCK_OR_HASH(value: Any, name: str) -> None:
    """A tag, a number, a block hash or an EIP-1898 object (geth's BlockNumberOrHash)."""
    if isinstance(value, dict):
        _object(value, name, {"blockNumber": BLOCK, "blockHash": HASH,
                              "requireCanonical": BOOL})
        if ("blockHash" in value) == ("blockNumber" in value):
            raise InvalidParams(f"invalid {name}: give exactly one of blockHash, blockNumber")
        return
    if isinstance(value, str) and len(value) == 66:
        parse_hash(value, name)
        return
    BLOCK(value, name)


def ADDRESSES(value: Any, name: str) -> None:
    """One address or a list of them (a log filter's `address`)."""
    if isinstance(value, list):
        for i, item in enumerate(value):
            parse_address(item, f"{name}[{i}]")
    else:
        parse_address(value, name)


def TOPICS(value: Any, name: str) -> None:
    if not isinstance(value, list):
        raise InvalidParams(f"invalid {name}: expected an array, got {_show(value)}")
    if len(value) > 4:
        raise InvalidParams(f"invalid {name}: at most 4 positions")
    for i, position in enumerate(value):
        if position is None:
            continue
        if isinstance(position, list):
            for j, topic in enumerate(position):
                if topic is not None:
                    parse_hash(topic, f"{name}[{i}][{j}]")
        else:
            parse_hash(position, f"{name}[{i}]")


def ACCESS_LIST(value: Any, name: str) -> None:
    if not isinstance(value, list):
        raise InvalidParams(f"invalid {name}: expected an array, got {_show(value)}")
    for i, entry in enumerate(value):
        _object(entry, f"{name}[{i}]", {"address": ADDRESS, "storageKeys": _list_of(HASH)})


def _list_of(check: Check) -> Check:
    def check_list(value: Any, name: str) -> None:
        if not isinstance(value, list):
            raise InvalidParams(f"invalid {name}: expected an array, got {_show(value)}")
        for i, item in enumerate(value):
            check(item, f"{name}[{i}]")
    return check_list


TX_FIELDS: Mapping[str, Check] = {
    "from": ADDRESS, "to": ADDRESS, "gas": QTY, "gasPrice": QTY, "maxFeePerGas": QTY,
    "maxPriorityFeePerGas": QTY, "maxFeePerBlobGas": QTY, "value": QTY, "nonce": QTY,
    "data": DATA, "input": DATA, "accessList": ACCESS_LIST, "chainId": QTY, "type": QTY,
    "blobVersionedHashes": _list_of(HASH),
}


def TRANSACTION(value: Any, name: str) -> None:
    """A call or transaction object (geth's TransactionArgs); unknown fields are ignored."""
    _object(value, name, TX_FIELDS)


def FILTER(value: Any, name: str) -> None:
    _object(value, name, {"fromBlock": BLOCK, "toBlock": BLOCK, "blockHash": HASH,
                          "address": ADDRESSES, "topics": TOPICS})


def STATE_OVERRIDES(value: Any, name: str) -> None:
    if not isinstance(value, dict):
        raise InvalidParams(f"invalid {name}: expected an object, got {_show(value)}")
    for address, spec in value.items():
        parse_address(address, f"{name} address")
        _object(spec, f"{name}[{address}]", {
            "balance": QTY, "nonce": QTY, "code": DATA, "state": _slots, "stateDiff": _slots})


def _slots(value: Any, name: str) -> None:
    if not isinstance(value, dict):
        raise InvalidParams(f"invalid {name}: expected an object, got {_show(value)}")
    for slot, word in value.items():
        parse_hash(slot, f"{name} slot")
        parse_hash(word, f"{name}[{slot}]")


def PERCENTILES(value: Any, name: str) -> None:
    if not isinstance(value, list):
        raise InvalidParams(f"invalid {name}: expected an array, got {_show(value)}")
    for i, p in enumerate(value):
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100:
            raise InvalidParams(f"invalid {name}[{i}]: expected a number from 0 to 100")


def _object(value: Any, name: str, fields: Mapping[str, Check]) -> None:
    if not isinstance(value, dict):
        raise InvalidParams(f"invalid {name}: expected an object, got {_show(value)}")
    for key, check in fields.items():
        field = value.get(key)
        if field is not None:
            check(field, f"{name}.{key}")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def check_params(signature: tuple[Arg, ...], params: list[Any]) -> None:
    """Raise InvalidParams unless `params` fits `signature` (trailing optionals may be absent or
    null, as in geth)."""
    if len(params) > len(signature):
        raise InvalidParams(f"too many arguments, want at most {len(signature)}")
    for index, arg in enumerate(signature):
        value = params[index] if index < len(params) else None
        if value is None:
            if not arg.optional:
                raise InvalidParams(
                    f"missing value for required argument {index} ({arg.name})")
            continue
        arg.check(value, f"argument {index} ({arg.name})")


NO_PARAMS: tuple[Arg, ...] = ()
