"""A development node's methods (`poai node --dev`), named, shaped and answered as anvil's (and
`hardhat node`'s aliases), so existing scripts run unchanged: unlocked dev accounts
(eth_sendTransaction, eth_sign, personal_sign, eth_signTypedData_v4), mining on request
(evm_mine, anvil_mine), time (evm_increaseTime, evm_setNextBlockTimestamp), snapshots
(evm_snapshot / evm_revert), state cheats (anvil_setBalance, _setCode, _setStorageAt, _setNonce),
impersonation and the mining mode (automine, interval).

Every block these methods make is a real quiz-sealed block (poai.chain.devchain,
poai.devmode).  On any other node each method is refused with -32601 and a line saying why;
the signing methods answer "unknown account" as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_hash.auto import keccak
from eth_typing import Address
from eth_utils.address import to_checksum_address

from poai.chain.devaccounts import DEV_MNEMONIC, dev_accounts
from poai.chain.devchain import BALANCE, CODE, NONCE, STORAGE, Cheat, impersonation_key
from poai.devmode import MINE_TIMEOUT_S, DevMode, DevModeError, MineRequest
from poai.rpc import eth, execution
from poai.rpc.context import RpcContext
from poai.rpc.errors import METHOD_NOT_FOUND, InvalidParams, RpcError, ServerError
from poai.rpc.hexutil import data, param, parse_address, parse_data, parse_hash, parse_qty, qty
from poai.rpc.params import ADDRESS, ANY, BOOL, DATA, NO_PARAMS, QTY, TRANSACTION, Arg
from poai.txpool.pool import TxPoolError, assume_sender

Handler = Callable[[RpcContext, list[Any]], Any]
MAX_MINE_BLOCKS = 10_000  # blocks one anvil_mine may ask for (each is a sealed block)


class NotDevNode(RpcError):
    def __init__(self, method: str) -> None:
        super().__init__(METHOD_NOT_FOUND, f"{method} is only available on a development node "
                                           "(start it with `poai node --dev`)")


def _dev(ctx: RpcContext, method: str) -> DevMode:
    dev = ctx.node.dev
    if dev is None:
        raise NotDevNode(method)
    return dev  # type: ignore[no-any-return]


def _wait(dev: DevMode, req: MineRequest) -> Any:
    try:
        return dev.request(req).result(timeout=MINE_TIMEOUT_S)
    except DevModeError as exc:
        raise InvalidParams(str(exc)) from exc
    except TimeoutError as exc:
        raise ServerError(f"no block mined within {MINE_TIMEOUT_S:.0f} s") from exc


# ---------------------------------------------------------------------- accounts
@lru_cache(maxsize=4)
def _keys(mnemonic: str, count: int) -> dict[bytes, bytes]:
    return {a.address: a.private_key for a in dev_accounts(mnemonic, count)}


def _account_key(ctx: RpcContext, address: bytes) -> bytes:
    """The key of an unlocked dev account (one `eth_accounts` lists); "unknown account"
    otherwise, as geth answers (an impersonated account sends, but signs nothing)."""
    if ctx.node.dev is not None and address in ctx.accounts:
        config = ctx.node.config
        keys = _keys(config.dev_mnemonic or DEV_MNEMONIC, max(10, len(ctx.accounts)))
        if address in keys:
            return keys[address]
    raise ServerError("unknown account")


def _signing_key(ctx: RpcContext, address: bytes) -> bytes:
    """The key a transaction from `address` is signed with: a dev account's, or the derived
    key of an impersonated account (poai.chain.devchain.impersonation_key)."""
    dev = ctx.node.dev
    if dev is not None and address not in ctx.accounts and address in dev.impersonated:
        return impersonation_key(address)
    return _account_key(ctx, address)


def send_transaction(ctx: RpcContext, params: list[Any]) -> str:
    if ctx.node.dev is None:
        return eth.send_transaction(ctx, params)  # type: ignore[no-any-return]
    obj = dict(param(params, 0, "transaction"))
    if not obj.get("from"):
        raise InvalidParams('missing "from": the account to send from')
    sender = parse_address(obj["from"], "from")
    key = _signing_key(ctx, sender)
    tx = _fill(ctx, obj, sender)
    raw = bytes(Account.sign_transaction(tx, key).raw_transaction)
    if sender in ctx.node.dev.impersonated and sender not in ctx.accounts:
        assume_sender(bytes(keccak(raw)), sender)
    try:
        return data(ctx.node.submit_raw_transaction(raw))
    except TxPoolError as exc:
        raise RpcError(exc.code, str(exc)) from exc


def _fill(ctx: RpcContext, obj: dict[str, Any], sender: Address) -> dict[str, Any]:
    """The transaction with what the caller left out filled in as geth and anvil do: the
    pending nonce, estimated gas, EIP-1559 fees (max fee = 2 x next base fee + tip) unless a
    gasPrice asks for a legacy transaction."""
    head = ctx.node.head()
    tx: dict[str, Any] = {"chainId": ctx.chain_id}
    if obj.get("to"):
        tx["to"] = to_checksum_address(parse_address(obj["to"], "to"))
    tx["value"] = parse_qty(obj["value"], "value") if obj.get("value") is not None else 0
    payload = obj.get("input", obj.get("data"))
    tx["data"] = parse_data(payload, "input") if payload is not None else b""
    if obj.get("nonce") is not None:
        tx["nonce"] = parse_qty(obj["nonce"], "nonce")
    else:
        nonce = ctx.chain.get_vm(head).state.get_nonce(sender)
        pooled = ctx.node.txpool.pending_nonce(sender)
        tx["nonce"] = max(nonce, pooled) if pooled is not None else nonce
    if obj.get("accessList"):
        tx["accessList"] = obj["accessList"]
    if obj.get("gas") is not None:
        tx["gas"] = parse_qty(obj["gas"], "gas")
    else:
        req = execution.CallRequest.parse({**obj, "from": "0x" + sender.hex()})
        tx["gas"] = execution.estimate_gas(ctx.chain, head, req, None, ctx.call_states)
    if obj.get("gasPrice") is not None and obj.get("maxFeePerGas") is None:
        tx["gasPrice"] = parse_qty(obj["gasPrice"], "gasPrice")
        return tx
    tip = (parse_qty(obj["maxPriorityFeePerGas"], "maxPriorityFeePerGas")
           if obj.get("maxPriorityFeePerGas") is not None else eth._suggested_tip(ctx))
    tx["maxPriorityFeePerGas"] = tip
    tx["maxFeePerGas"] = (parse_qty(obj["maxFeePerGas"], "maxFeePerGas")
                          if obj.get("maxFeePerGas") is not None
                          else 2 * eth._next_base_fee(ctx) + tip)
    tx["type"] = 2
    return tx


def _sign_message(ctx: RpcContext, address: bytes, message: bytes) -> str:
    key = _account_key(ctx, address)
    return data(bytes(Account.sign_message(encode_defunct(primitive=message), key).signature))


def eth_sign(ctx: RpcContext, params: list[Any]) -> str:
    """geth's eth_sign: the EIP-191 personal message signature of `data` by `address`."""
    return _sign_message(ctx, parse_address(param(params, 0, "address")),
                         parse_data(param(params, 1, "data"), "data"))


def personal_sign(ctx: RpcContext, params: list[Any]) -> str:
    return _sign_message(ctx, parse_address(param(params, 1, "address")),
                         parse_data(param(params, 0, "data"), "data"))


def sign_typed_data_v4(ctx: RpcContext, params: list[Any]) -> str:
    address = parse_address(param(params, 0, "address"))
    typed = param(params, 1, "typedData")
    if isinstance(typed, str):
        try:
            typed = json.loads(typed)
        except ValueError as exc:
            raise InvalidParams(f"invalid typedData: not JSON ({exc})") from exc
    if not isinstance(typed, dict):
        raise InvalidParams("invalid typedData: expected an object")
    key = _account_key(ctx, address)
    try:
        message = encode_typed_data(full_message=typed)
    except Exception as exc:  # eth_account raises several types for malformed typed data
        raise InvalidParams(f"invalid typedData: {exc}") from exc
    return data(bytes(Account.sign_message(message, key).signature))


# ---------------------------------------------------------------------- mining and time
def evm_mine(ctx: RpcContext, params: list[Any]) -> str:
    """Mine one block now (anvil: an optional timestamp, or {timestamp, blocks})."""
    dev = _dev(ctx, "evm_mine")
    arg = param(params, 0, "timestamp", None)
    timestamp, blocks = None, 1
    if isinstance(arg, dict):
        if arg.get("timestamp") is not None:
            timestamp = parse_qty(arg["timestamp"], "timestamp")
        if arg.get("blocks") is not None:
            blocks = parse_qty(arg["blocks"], "blocks")
    elif arg is not None:
        timestamp = parse_qty(arg, "timestamp")
    _mine(dev, blocks, timestamp, None)
    return "0x0"


def _mine(dev: DevMode, blocks: int, timestamp: int | None, spacing: int | None) -> None:
    if not 0 <= blocks <= MAX_MINE_BLOCKS:
        raise InvalidParams(f"invalid block count {blocks}: at most {MAX_MINE_BLOCKS}")
    for i in range(blocks):
        if timestamp is None:  # `spacing` seconds apart, or the clock's
            _wait(dev, MineRequest(spacing=spacing))
        else:  # from `timestamp` on, a second apart
            _wait(dev, MineRequest(timestamp=timestamp) if i == 0 else MineRequest(spacing=1))


def anvil_mine(ctx: RpcContext, params: list[Any]) -> None:
    """anvil_mine / hardhat_mine(count = 1, interval): `interval` seconds between the blocks'
    timestamps (0 or absent: the clock's, one second at least, as blocks need)."""
    dev = _dev(ctx, "anvil_mine")
    blocks = parse_qty(param(params, 0, "blocks", "0x1"), "blocks")
    interval = param(params, 1, "interval", None)
    step = parse_qty(interval, "interval") if interval is not None else 0
    _mine(dev, blocks, None, step or None)


def increase_time(ctx: RpcContext, params: list[Any]) -> int:
    dev = _dev(ctx, "evm_increaseTime")
    return dev.increase_time(parse_qty(param(params, 0, "seconds"), "seconds"))


def set_next_block_timestamp(ctx: RpcContext, params: list[Any]) -> None:
    dev = _dev(ctx, "evm_setNextBlockTimestamp")
    try:
        dev.set_next_timestamp(parse_qty(param(params, 0, "timestamp"), "timestamp"),
                               ctx.node.head())
    except DevModeError as exc:
        raise InvalidParams(str(exc)) from exc


def set_automine(ctx: RpcContext, params: list[Any]) -> None:
    dev = _dev(ctx, "evm_setAutomine")
    dev.automine = bool(param(params, 0, "enabled"))
    if dev.automine:
        dev.interval = 0.0
    dev.wake()


def get_automine(ctx: RpcContext, params: list[Any]) -> bool:
    return bool(_dev(ctx, "anvil_getAutomine").automine)


def set_interval_mining(ctx: RpcContext, params: list[Any]) -> None:
    """Seconds between blocks mined without a request (anvil); 0 turns interval mining off."""
    dev = _dev(ctx, "evm_setIntervalMining")
    seconds = parse_qty(param(params, 0, "interval"), "interval")
    dev.interval = float(seconds)
    if seconds:
        dev.automine = False
    dev.wake()


def get_interval_mining(ctx: RpcContext, params: list[Any]) -> int | None:
    dev = _dev(ctx, "anvil_getIntervalMining")
    return int(dev.interval) if dev.interval else None


# ---------------------------------------------------------------------- snapshots
def snapshot(ctx: RpcContext, params: list[Any]) -> str:
    return qty(_dev(ctx, "evm_snapshot").take_snapshot(ctx.node.head()))


def revert(ctx: RpcContext, params: list[Any]) -> bool:
    """Rewind the canonical head to the snapshot's block; false for an unknown (or used up)
    snapshot, as anvil answers."""
    dev = _dev(ctx, "evm_revert")
    block_hash = dev.pop_snapshot(parse_qty(param(params, 0, "snapshotId"), "snapshotId"))
    if block_hash is None:
        return False
    with ctx.node.lock:  # a chain read: this method runs without the lock (WITHOUT_LOCK)
        header = ctx.header_by_hash(block_hash)
        if header is None:
            return False
        try:
            ctx.node.rewind_to(header)
        except ValueError:  # the snapshot's block left the canonical chain meanwhile
            return False
    return True


# ---------------------------------------------------------------------- state cheats
def _cheat(ctx: RpcContext, method: str, cheat: Cheat) -> None:
    """Queue a state change and wait for the block that carries it (mined at once)."""
    dev = _dev(ctx, method)
    seq = dev.queue_cheats([cheat])
    _wait(dev, MineRequest(cheat_seq=seq, block=False))


def set_balance(ctx: RpcContext, params: list[Any]) -> None:
    _cheat(ctx, "anvil_setBalance", Cheat(BALANCE, parse_address(param(params, 0, "address")),
                                          parse_qty(param(params, 1, "balance"), "balance")))


def set_nonce(ctx: RpcContext, params: list[Any]) -> None:
    _cheat(ctx, "anvil_setNonce", Cheat(NONCE, parse_address(param(params, 0, "address")),
                                        parse_qty(param(params, 1, "nonce"), "nonce")))


def set_code(ctx: RpcContext, params: list[Any]) -> None:
    _cheat(ctx, "anvil_setCode", Cheat(CODE, parse_address(param(params, 0, "address")),
                                       parse_data(param(params, 1, "code"), "code")))


def set_storage_at(ctx: RpcContext, params: list[Any]) -> bool:
    address = parse_address(param(params, 0, "address"))
    raw_slot = param(params, 1, "slot")
    slot = (int.from_bytes(parse_hash(raw_slot, "slot"), "big")
            if isinstance(raw_slot, str) and len(raw_slot) == 66 else parse_qty(raw_slot, "slot"))
    value = int.from_bytes(parse_hash(param(params, 2, "value"), "value"), "big")
    _cheat(ctx, "anvil_setStorageAt", Cheat(STORAGE, address, value, slot))
    return True


def _impersonation(method: str, on: bool, result: Any) -> Handler:
    def handler(ctx: RpcContext, params: list[Any]) -> Any:
        dev = _dev(ctx, method)
        address = parse_address(param(params, 0, "address"))
        if on:
            dev.impersonated.add(address)
        else:
            dev.impersonated.discard(address)
        return result
    return handler


def _alias(method: str, handler: Handler) -> Handler:
    """`handler` answering under another name (its refusal names `method`)."""
    def aliased(ctx: RpcContext, params: list[Any]) -> Any:
        _dev(ctx, method)
        return handler(ctx, params)
    return aliased


# Methods run without Node.lock: those that wait for a block (the mining thread needs the
# lock), and the rest, which read the node only through head() and DevMode's own lock.
WITHOUT_LOCK = frozenset({
    "evm_mine", "anvil_mine", "hardhat_mine", "anvil_setBalance", "hardhat_setBalance",
    "anvil_setCode", "hardhat_setCode", "anvil_setStorageAt", "hardhat_setStorageAt",
    "anvil_setNonce", "hardhat_setNonce", "evm_revert", "evm_increaseTime",
    "evm_setNextBlockTimestamp", "anvil_setNextBlockTimestamp", "evm_setAutomine",
    "anvil_setAutomine", "anvil_getAutomine", "hardhat_getAutomine", "evm_setIntervalMining",
    "anvil_setIntervalMining", "anvil_getIntervalMining", "evm_snapshot",
    "anvil_impersonateAccount", "hardhat_impersonateAccount",
    "anvil_stopImpersonatingAccount", "hardhat_stopImpersonatingAccount",
})

METHODS: dict[str, Handler] = {
    "eth_sendTransaction": send_transaction,
    "eth_sign": eth_sign,
    "personal_sign": personal_sign,
    "eth_signTypedData_v4": sign_typed_data_v4,
    "evm_mine": evm_mine,
    "anvil_mine": anvil_mine,
    "hardhat_mine": _alias("hardhat_mine", anvil_mine),
    "evm_increaseTime": increase_time,
    "evm_setNextBlockTimestamp": set_next_block_timestamp,
    "anvil_setNextBlockTimestamp": _alias("anvil_setNextBlockTimestamp",
                                          set_next_block_timestamp),
    "evm_snapshot": snapshot,
    "evm_revert": revert,
    "evm_setAutomine": set_automine,
    "anvil_setAutomine": _alias("anvil_setAutomine", set_automine),
    "anvil_getAutomine": get_automine,
    "hardhat_getAutomine": _alias("hardhat_getAutomine", get_automine),
    "evm_setIntervalMining": set_interval_mining,
    "anvil_setIntervalMining": _alias("anvil_setIntervalMining", set_interval_mining),
    "anvil_getIntervalMining": get_interval_mining,
    "anvil_setBalance": set_balance,
    "hardhat_setBalance": _alias("hardhat_setBalance", set_balance),
    "anvil_setNonce": set_nonce,
    "hardhat_setNonce": _alias("hardhat_setNonce", set_nonce),
    "anvil_setCode": set_code,
    "hardhat_setCode": _alias("hardhat_setCode", set_code),
    "anvil_setStorageAt": set_storage_at,
    "hardhat_setStorageAt": _alias("hardhat_setStorageAt", set_storage_at),
    "anvil_impersonateAccount": _impersonation("anvil_impersonateAccount", True, None),
    "hardhat_impersonateAccount": _impersonation("hardhat_impersonateAccount", True, True),
    "anvil_stopImpersonatingAccount": _impersonation("anvil_stopImpersonatingAccount",
                                                     False, None),
    "hardhat_stopImpersonatingAccount": _impersonation("hardhat_stopImpersonatingAccount",
                                                       False, True),
}

_ADDRESS = Arg("address", ADDRESS)
PARAMS: dict[str, tuple[Arg, ...]] = {
    "eth_sendTransaction": (Arg("transaction", TRANSACTION),),
    "eth_sign": (_ADDRESS, Arg("data", DATA)),
    "personal_sign": (Arg("data", DATA), _ADDRESS, Arg("password", ANY, optional=True)),
    "eth_signTypedData_v4": (_ADDRESS, Arg("typedData", ANY)),
    "evm_mine": (Arg("timestamp", ANY, optional=True),),
    "anvil_mine": (Arg("blocks", QTY, optional=True), Arg("interval", QTY, optional=True)),
    "hardhat_mine": (Arg("blocks", QTY, optional=True), Arg("interval", QTY, optional=True)),
    "evm_increaseTime": (Arg("seconds", QTY),),
    "evm_setNextBlockTimestamp": (Arg("timestamp", QTY),),
    "anvil_setNextBlockTimestamp": (Arg("timestamp", QTY),),
    "evm_snapshot": NO_PARAMS,
    "evm_revert": (Arg("snapshotId", QTY),),
    "evm_setAutomine": (Arg("enabled", BOOL),),
    "anvil_setAutomine": (Arg("enabled", BOOL),),
    "anvil_getAutomine": NO_PARAMS,
    "hardhat_getAutomine": NO_PARAMS,
    "evm_setIntervalMining": (Arg("interval", QTY),),
    "anvil_setIntervalMining": (Arg("interval", QTY),),
    "anvil_getIntervalMining": NO_PARAMS,
    **{f"{ns}_setBalance": (_ADDRESS, Arg("balance", QTY)) for ns in ("anvil", "hardhat")},
    **{f"{ns}_setNonce": (_ADDRESS, Arg("nonce", QTY)) for ns in ("anvil", "hardhat")},
    **{f"{ns}_setCode": (_ADDRESS, Arg("code", DATA)) for ns in ("anvil", "hardhat")},
    **{f"{ns}_setStorageAt": (_ADDRESS, Arg("slot", QTY), Arg("value", DATA))
       for ns in ("anvil", "hardhat")},
    **{f"{ns}_{verb}": (_ADDRESS,) for ns in ("anvil", "hardhat")
       for verb in ("impersonateAccount", "stopImpersonatingAccount")},
}
