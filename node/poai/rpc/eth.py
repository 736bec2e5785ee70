"""The eth_* namespace (execution-apis), except filters and subscriptions (filters.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from eth.vm.forks.london.headers import calculate_expected_base_fee_per_gas

from poai.rpc import execution, format
from poai.rpc.context import RpcContext
from poai.rpc.errors import InvalidParams, RpcError, ServerError
from poai.rpc.hexutil import (
    addr,
    data,
    param,
    parse_address,
    parse_data,
    parse_hash,
    parse_qty,
    qty,
)
from poai.rpc.params import (
    ADDRESS,
    BLOCK,
    BLOCK_OR_HASH,
    BOOL,
    DATA,
    HASH,
    NO_PARAMS,
    PERCENTILES,
    QTY,
    STATE_OVERRIDES,
    TRANSACTION,
    Arg,
)
from poai.txpool.pool import TxPoolError, verify_raw

Handler = Callable[[RpcContext, list[Any]], Any]
MIN_TIP = 10**9  # 1 gwei: the tip we suggest when recent blocks paid none (geth's default)
FEE_HISTORY_MAX_BLOCKS = 1024


def chain_id(ctx: RpcContext, params: list[Any]) -> str:
    return qty(ctx.chain_id)


def block_number(ctx: RpcContext, params: list[Any]) -> str:
    return qty(ctx.node.head().block_number)


SYNC_FIELDS = ("startingBlock", "currentBlock", "highestBlock")


def syncing(ctx: RpcContext, params: list[Any]) -> Any:
    network = ctx.node.network
    return sync_result(network.sync_progress() if network is not None else None)


def sync_result(progress: Mapping[str, Any] | None) -> Any:
    """eth_syncing's answer from a sync progress (`poai.p2p.sync.Syncer.progress()`): false
    unless a sync runs, else geth's {startingBlock, currentBlock, highestBlock} as hex."""
    if not progress or not progress.get("syncing", True):
        return False
    missing = [k for k in SYNC_FIELDS if k not in progress]
    if missing:
        raise ValueError(f"sync progress lacks {', '.join(missing)}")
    return {k: qty(int(progress[k])) for k in SYNC_FIELDS}


def mining(ctx: RpcContext, params: list[Any]) -> bool:
    return bool(ctx.node.mine)


def hashrate(ctx: RpcContext, params: list[Any]) -> str:
    return qty(int(ctx.node.mining_stats().hashrate))


def accounts(ctx: RpcContext, params: list[Any]) -> list[str]:
    return [addr(a) for a in ctx.accounts]


def coinbase(ctx: RpcContext, params: list[Any]) -> str:
    return addr(ctx.node.coinbase)


def _state(ctx: RpcContext, block_id: Any) -> Any:
    header = ctx.resolve_block(block_id)
    return ctx.chain.get_vm(header).state


def get_balance(ctx: RpcContext, params: list[Any]) -> str:
    address = parse_address(param(params, 0, "address"))
    return qty(_state(ctx, param(params, 1, "block", "latest")).get_balance(address))


def get_code(ctx: RpcContext, params: list[Any]) -> str:
    address = parse_address(param(params, 0, "address"))
    return data(_state(ctx, param(params, 1, "block", "latest")).get_code(address))


def get_storage_at(ctx: RpcContext, params: list[Any]) -> str:
    address = parse_address(param(params, 0, "address"))
    raw_slot = param(params, 1, "slot")
    slot = (int.from_bytes(parse_hash(raw_slot, "slot"), "big")
            if isinstance(raw_slot, str) and len(raw_slot) == 66 else parse_qty(raw_slot, "slot"))
    value = _state(ctx, param(params, 2, "block", "latest")).get_storage(address, slot)
    return data(value.to_bytes(32, "big"))


def get_transaction_count(ctx: RpcContext, params: list[Any]) -> str:
    address = parse_address(param(params, 0, "address"))
    block_id = param(params, 1, "block", "latest")
    nonce = _state(ctx, block_id).get_nonce(address)
    if block_id == "pending":
        pooled = ctx.node.txpool.pending_nonce(address)
        if pooled is not None:
            nonce = max(nonce, pooled)
    return qty(nonce)


def _block_result(ctx: RpcContext, header: Any, full: bool) -> Any:
    if header is None:
        return None
    return format.block_json(ctx.block(header), full, ctx.total_difficulty(header))


def get_block_by_number(ctx: RpcContext, params: list[Any]) -> Any:
    header = ctx.resolve_block(param(params, 0, "block"), required=False)
    return _block_result(ctx, header, bool(param(params, 1, "fullTransactions", False)))


def get_block_by_hash(ctx: RpcContext, params: list[Any]) -> Any:
    header = ctx.header_by_hash(parse_hash(param(params, 0, "blockHash")))
    return _block_result(ctx, header, bool(param(params, 1, "fullTransactions", False)))


def _tx_count(ctx: RpcContext, header: Any) -> Any:
    if header is None:
        return None
    return qty(len(ctx.chain.chaindb.get_block_transaction_hashes(header)))


def get_block_tx_count_by_number(ctx: RpcContext, params: list[Any]) -> Any:
    return _tx_count(ctx, ctx.resolve_block(param(params, 0, "block"), required=False))


def get_block_tx_count_by_hash(ctx: RpcContext, params: list[Any]) -> Any:
    return _tx_count(ctx, ctx.header_by_hash(parse_hash(param(params, 0, "blockHash"))))


def get_uncle_count(ctx: RpcContext, params: list[Any]) -> Any:
    return qty(0)


def _tx_at(ctx: RpcContext, header: Any, index: int) -> Any:
    if header is None:
        return None
    block = ctx.block(header)
    if index >= len(block.transactions):
        return None
    return format.tx_json(block.transactions[index], header, index)


def get_tx_by_block_hash_and_index(ctx: RpcContext, params: list[Any]) -> Any:
    header = ctx.header_by_hash(parse_hash(param(params, 0, "blockHash")))
    return _tx_at(ctx, header, parse_qty(param(params, 1, "index"), "index"))


def get_tx_by_block_number_and_index(ctx: RpcContext, params: list[Any]) -> Any:
    header = ctx.resolve_block(param(params, 0, "block"), required=False)
    return _tx_at(ctx, header, parse_qty(param(params, 1, "index"), "index"))


def get_transaction_by_hash(ctx: RpcContext, params: list[Any]) -> Any:
    tx_hash = parse_hash(param(params, 0, "transactionHash"))
    found = ctx.locate_transaction(tx_hash)
    if found is not None:
        return _tx_at(ctx, found[0], found[1])
    pooled = ctx.node.txpool.get(tx_hash)
    return format.tx_json(pooled) if pooled is not None else None


def get_transaction_receipt(ctx: RpcContext, params: list[Any]) -> Any:
    tx_hash = parse_hash(param(params, 0, "transactionHash"))
    found = ctx.locate_transaction(tx_hash)
    if found is None:
        return None
    header, index = found
    return ctx.receipt_json(header, index)


def get_block_receipts(ctx: RpcContext, params: list[Any]) -> Any:
    header = ctx.resolve_block(param(params, 0, "block"), required=False)
    if header is None:
        return None
    return ctx.receipts_json(header)


def send_raw_transaction(ctx: RpcContext, params: list[Any]) -> str:
    raw = parse_data(param(params, 0, "data"), "transaction")
    try:
        return data(ctx.node.submit_raw_transaction(raw))
    except TxPoolError as exc:
        raise RpcError(exc.code, str(exc)) from exc


def prepare_send_raw_transaction(ctx: RpcContext, params: list[Any]) -> None:
    """Before Node.lock: decode and check the signature; both are memoised, so the locked
    `send_raw_transaction` finds them done.  Errors are left for that call to report."""
    raw = parse_data(param(params, 0, "data"), "transaction")
    verify_raw(ctx.transaction_builder(), raw)


def send_transaction(ctx: RpcContext, params: list[Any]) -> Any:
    raise ServerError("unknown account: this node holds no keys; sign locally and use "
                      "eth_sendRawTransaction")


def call(ctx: RpcContext, params: list[Any]) -> str:
    req = execution.CallRequest.parse(param(params, 0, "transaction"))
    header = ctx.resolve_block(param(params, 1, "block", "latest"))
    return data(execution.eth_call(ctx.chain, header, req, param(params, 2, "overrides", None),
                                   ctx.call_states))


def estimate_gas(ctx: RpcContext, params: list[Any]) -> str:
    req = execution.CallRequest.parse(param(params, 0, "transaction"))
    header = ctx.resolve_block(param(params, 1, "block", "latest"))
    return qty(execution.estimate_gas(ctx.chain, header, req,
                                      param(params, 2, "overrides", None), ctx.call_states))


def _next_base_fee(ctx: RpcContext) -> int:
    head = ctx.node.head()
    if getattr(head, "base_fee_per_gas", None) is None:
        return 0
    return calculate_expected_base_fee_per_gas(head)


def _suggested_tip(ctx: RpcContext) -> int:
    """geth's oracle, simplified: the 60th percentile tip of the last 20 blocks, >= 1 gwei."""
    head = ctx.node.head()
    tips: list[int] = []
    number = int(head.block_number)
    while number >= 0 and number > head.block_number - 20:
        header = ctx.header_by_number(number)
        if header is None:
            break
        base = getattr(header, "base_fee_per_gas", 0) or 0
        tips.extend(min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base)
                    for tx in ctx.block(header).transactions)
        number -= 1
    if not tips:
        return MIN_TIP
    tips.sort()
    return max(MIN_TIP, tips[(len(tips) - 1) * 60 // 100])


def max_priority_fee(ctx: RpcContext, params: list[Any]) -> str:
    return qty(_suggested_tip(ctx))


def gas_price(ctx: RpcContext, params: list[Any]) -> str:
    # MetaMask uses this on unknown chains: base fee of the next block plus the tip.
    return qty(_next_base_fee(ctx) + _suggested_tip(ctx))


def blob_base_fee(ctx: RpcContext, params: list[Any]) -> str:
    return qty(1)


def fee_history(ctx: RpcContext, params: list[Any]) -> dict[str, Any]:
    count = parse_qty(param(params, 0, "blockCount"), "blockCount")
    newest = ctx.resolve_block(param(params, 1, "newestBlock"))
    percentiles = param(params, 2, "rewardPercentiles", None)
    if percentiles is not None:
        if not isinstance(percentiles, list) or not all(
                isinstance(p, int | float) and 0 <= p <= 100 for p in percentiles):
            raise InvalidParams("invalid reward percentiles: numbers in [0, 100] expected")
        if any(b < a for a, b in zip(percentiles, percentiles[1:], strict=False)):
            raise InvalidParams("invalid reward percentiles: not in ascending order")
    count = min(count, FEE_HISTORY_MAX_BLOCKS, newest.block_number + 1)
    oldest = newest.block_number - count + 1
    base_fees: list[str] = []
    ratios: list[float] = []
    rewards: list[list[str]] = []
    for number in range(oldest, newest.block_number + 1):
        header = ctx.header_by_number(number) if number != newest.block_number else newest
        assert header is not None
        base = getattr(header, "base_fee_per_gas", 0) or 0
        base_fees.append(qty(base))
        ratios.append(header.gas_used / header.gas_limit if header.gas_limit else 0.0)
        if percentiles is not None:
            rewards.append([qty(r) for r in _block_rewards(ctx, header, base, percentiles)])
    base_fees.append(qty(calculate_expected_base_fee_per_gas(newest)
                         if getattr(newest, "base_fee_per_gas", None) is not None else 0))
    out: dict[str, Any] = {"oldestBlock": qty(max(oldest, 0)), "baseFeePerGas": base_fees,
                           "gasUsedRatio": ratios}
    if percentiles is not None:
        out["reward"] = rewards
    return out


def _block_rewards(ctx: RpcContext, header: Any, base: int, percentiles: list[float]
                   ) -> list[int]:
    """Tip at each gas-weighted percentile of the block's transactions (geth's method)."""
    if not percentiles:
        return []
    block = ctx.block(header)
    if not block.transactions:
        return [0] * len(percentiles)
    receipts = ctx.receipts(header)
    used, prev = [], 0
    for r in receipts:
        used.append(r.gas_used - prev)
        prev = r.gas_used
    tips = sorted(
        ((min(tx.max_priority_fee_per_gas, tx.max_fee_per_gas - base), g)
         for tx, g in zip(block.transactions, used, strict=True)),
        key=lambda t: t[0])
    out: list[int] = []
    idx, acc = 0, tips[0][1]
    for p in percentiles:
        threshold = header.gas_used * p / 100
        while acc < threshold and idx < len(tips) - 1:
            idx += 1
            acc += tips[idx][1]
        out.append(tips[idx][0])
    return out


PREPARE: dict[str, Handler] = {
    "eth_sendRawTransaction": prepare_send_raw_transaction,
}

METHODS: dict[str, Handler] = {
    "eth_chainId": chain_id,
    "eth_blockNumber": block_number,
    "eth_syncing": syncing,
    "eth_mining": mining,
    "eth_hashrate": hashrate,
    "eth_accounts": accounts,
    "eth_coinbase": coinbase,
    "eth_getBalance": get_balance,
    "eth_getCode": get_code,
    "eth_getStorageAt": get_storage_at,
    "eth_getTransactionCount": get_transaction_count,
    "eth_getBlockByNumber": get_block_by_number,
    "eth_getBlockByHash": get_block_by_hash,
    "eth_getBlockTransactionCountByNumber": get_block_tx_count_by_number,
    "eth_getBlockTransactionCountByHash": get_block_tx_count_by_hash,
    "eth_getUncleCountByBlockNumber": get_uncle_count,
    "eth_getUncleCountByBlockHash": get_uncle_count,
    "eth_getTransactionByHash": get_transaction_by_hash,
    "eth_getTransactionByBlockHashAndIndex": get_tx_by_block_hash_and_index,
    "eth_getTransactionByBlockNumberAndIndex": get_tx_by_block_number_and_index,
    "eth_getTransactionReceipt": get_transaction_receipt,
    "eth_getBlockReceipts": get_block_receipts,
    "eth_sendRawTransaction": send_raw_transaction,
    "eth_sendTransaction": send_transaction,
    "eth_call": call,
    "eth_estimateGas": estimate_gas,
    "eth_gasPrice": gas_price,
    "eth_maxPriorityFeePerGas": max_priority_fee,
    "eth_blobBaseFee": blob_base_fee,
    "eth_feeHistory": fee_history,
}

_AT_BLOCK = Arg("block", BLOCK_OR_HASH, optional=True)
_CALL = (Arg("transaction", TRANSACTION), _AT_BLOCK, Arg("overrides", STATE_OVERRIDES, True))

PARAMS: dict[str, tuple[Arg, ...]] = {
    **{name: NO_PARAMS for name in (
        "eth_chainId", "eth_blockNumber", "eth_syncing", "eth_mining", "eth_hashrate",
        "eth_accounts", "eth_coinbase", "eth_gasPrice", "eth_maxPriorityFeePerGas",
        "eth_blobBaseFee")},
    "eth_getBalance": (Arg("address", ADDRESS), _AT_BLOCK),
    "eth_getCode": (Arg("address", ADDRESS), _AT_BLOCK),
    "eth_getStorageAt": (Arg("address", ADDRESS), Arg("slot", QTY), _AT_BLOCK),
    "eth_getTransactionCount": (Arg("address", ADDRESS), _AT_BLOCK),
    "eth_getBlockByNumber": (Arg("block", BLOCK), Arg("fullTransactions", BOOL)),
    "eth_getBlockByHash": (Arg("blockHash", HASH), Arg("fullTransactions", BOOL)),
    "eth_getBlockTransactionCountByNumber": (Arg("block", BLOCK),),
    "eth_getBlockTransactionCountByHash": (Arg("blockHash", HASH),),
    "eth_getUncleCountByBlockNumber": (Arg("block", BLOCK),),
    "eth_getUncleCountByBlockHash": (Arg("blockHash", HASH),),
    "eth_getTransactionByHash": (Arg("transactionHash", HASH),),
    "eth_getTransactionByBlockHashAndIndex": (Arg("blockHash", HASH), Arg("index", QTY)),
    "eth_getTransactionByBlockNumberAndIndex": (Arg("block", BLOCK), Arg("index", QTY)),
    "eth_getTransactionReceipt": (Arg("transactionHash", HASH),),
    "eth_getBlockReceipts": (Arg("block", BLOCK_OR_HASH),),
    "eth_sendRawTransaction": (Arg("transaction", DATA),),
    "eth_sendTransaction": (Arg("transaction", TRANSACTION),),
    "eth_call": _CALL,
    "eth_estimateGas": _CALL,
    "eth_feeHistory": (Arg("blockCount", QTY), Arg("newestBlock", BLOCK),
                       Arg("rewardPercentiles", PERCENTILES, optional=True)),
}
