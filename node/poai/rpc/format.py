"""Blocks, transactions, receipts and logs as geth returns them over JSON-RPC."""

from __future__ import annotations

from typing import Any

import rlp
from eth.abc import BlockAPI, BlockHeaderAPI, ReceiptAPI, SignedTransactionAPI
from eth.constants import BLANK_ROOT_HASH

from poai.compat.pyevm import generate_contract_address
from poai.rpc.hexutil import addr, data, qty
from poai.txpool.pool import sender_of


def header_json(header: BlockHeaderAPI, total_difficulty: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "number": qty(header.block_number),
        "hash": data(header.hash),
        "parentHash": data(header.parent_hash),
        "nonce": data(header.nonce),
        "mixHash": data(header.mix_hash),
        "sha3Uncles": data(header.uncles_hash),
        "logsBloom": data(header.bloom.to_bytes(256, "big")),
        "transactionsRoot": data(header.transaction_root),
        "stateRoot": data(header.state_root),
        "receiptsRoot": data(header.receipt_root),
        "miner": addr(header.coinbase),
        "difficulty": qty(header.difficulty),
        "extraData": data(header.extra_data),
        "gasLimit": qty(header.gas_limit),
        "gasUsed": qty(header.gas_used),
        "timestamp": qty(header.timestamp),
    }
    if total_difficulty is not None:
        out["totalDifficulty"] = qty(total_difficulty)
    for field, name, fmt in (
        ("base_fee_per_gas", "baseFeePerGas", qty),
        ("withdrawals_root", "withdrawalsRoot", data),
        ("blob_gas_used", "blobGasUsed", qty),
        ("excess_blob_gas", "excessBlobGas", qty),
        ("parent_beacon_block_root", "parentBeaconBlockRoot", data),
        ("requests_hash", "requestsHash", data),
    ):
        value = getattr(header, field, None)
        if value is not None:
            out[name] = fmt(value)
    return out


def block_json(block: BlockAPI, full: bool, total_difficulty: int | None) -> dict[str, Any]:
    header = block.header
    out = header_json(header, total_difficulty)
    out["size"] = qty(len(rlp.encode(block)))
    if full:
        out["transactions"] = [tx_json(tx, header, i) for i, tx in enumerate(block.transactions)]
    else:
        out["transactions"] = [data(tx.hash) for tx in block.transactions]
    out["uncles"] = [data(u.hash) for u in block.uncles]
    if getattr(header, "withdrawals_root", None) is not None:
        out["withdrawals"] = [
            {"index": qty(w.index), "validatorIndex": qty(w.validator_index),
             "address": addr(w.address), "amount": qty(w.amount)}
            for w in getattr(block, "withdrawals", ())
        ]
    return out


def tx_json(tx: SignedTransactionAPI, header: BlockHeaderAPI | None = None,
            index: int | None = None) -> dict[str, Any]:
    type_id = tx.type_id or 0
    out: dict[str, Any] = {
        "type": qty(type_id),
        "hash": data(tx.hash),
        "nonce": qty(tx.nonce),
        "blockHash": data(header.hash) if header else None,
        "blockNumber": qty(header.block_number) if header else None,
        "transactionIndex": qty(index) if header is not None and index is not None else None,
        "from": addr(sender_of(tx)),
        "to": addr(tx.to) if tx.to else None,
        "value": qty(tx.value),
        "gas": qty(tx.gas),
        "input": data(tx.data),
        "r": qty(tx.r),
        "s": qty(tx.s),
    }
    if type_id == 0:
        out["gasPrice"] = qty(tx.gas_price)
        out["v"] = qty(tx.v)  # type: ignore[attr-defined]  # (legacy transactions only)
        if tx.chain_id is not None:
            out["chainId"] = qty(tx.chain_id)
    else:
        out["chainId"] = qty(tx.chain_id or 0)  # (typed transactions always carry one)
        out["v"] = qty(tx.y_parity)
        out["yParity"] = qty(tx.y_parity)
        out["accessList"] = [
            {"address": addr(a), "storageKeys": [data(s.to_bytes(32, "big")) for s in slots]}
            for a, slots in tx.access_list
        ]
        if type_id == 1:
            out["gasPrice"] = qty(tx.gas_price)
        else:
            out["maxFeePerGas"] = qty(tx.max_fee_per_gas)
            out["maxPriorityFeePerGas"] = qty(tx.max_priority_fee_per_gas)
            out["gasPrice"] = qty(effective_gas_price(tx, header) if header
                                  else tx.max_fee_per_gas)
        if type_id == 3:
            out["maxFeePerBlobGas"] = qty(tx.max_fee_per_blob_gas)
            out["blobVersionedHashes"] = [data(h) for h in tx.blob_versioned_hashes]
        if type_id == 4:
            out["authorizationList"] = [
                {"chainId": qty(a.chain_id), "address": addr(a.address), "nonce": qty(a.nonce),
                 "yParity": qty(a.y_parity), "r": qty(a.r), "s": qty(a.s)}
                for a in tx.authorization_list
            ]
    return out


def effective_gas_price(tx: SignedTransactionAPI, header: BlockHeaderAPI | None) -> int:
    base_fee = getattr(header, "base_fee_per_gas", None) if header else None
    if base_fee is None:
        price: int = tx.gas_price if (tx.type_id or 0) < 2 else tx.max_fee_per_gas
        return price
    return min(tx.max_fee_per_gas, int(base_fee) + tx.max_priority_fee_per_gas)


def logs_json(receipt: ReceiptAPI, tx: SignedTransactionAPI, header: BlockHeaderAPI,
              tx_index: int, first_log_index: int, removed: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "address": addr(log.address),
            "topics": [data(t.to_bytes(32, "big")) for t in log.topics],
            "data": data(log.data),
            "blockNumber": qty(header.block_number),
            "blockHash": data(header.hash),
            "blockTimestamp": qty(header.timestamp),
            "transactionHash": data(tx.hash),
            "transactionIndex": qty(tx_index),
            "logIndex": qty(first_log_index + i),
            "removed": removed,
        }
        for i, log in enumerate(receipt.logs)
    ]


def receipts_json(block: BlockAPI, receipts: tuple[ReceiptAPI, ...] | list[ReceiptAPI]
                  ) -> list[dict[str, Any]]:
    if len(receipts) != len(block.transactions):
        raise ValueError(f"{len(receipts)} receipts for {len(block.transactions)} transactions")
    out = []
    prev_cumulative = 0
    log_index = 0
    for i, receipt in enumerate(receipts):
        out.append(_receipt_json(block, receipts, i, prev_cumulative, log_index))
        prev_cumulative = receipt.gas_used
        log_index += len(receipt.logs)
    return out


def receipt_json(block: BlockAPI, receipts: tuple[ReceiptAPI, ...] | list[ReceiptAPI],
                 index: int, log_index: int | None = None) -> dict[str, Any]:
    """receipts_json(block, receipts)[index], without formatting the other receipts (a client
    polling one transaction's receipt in a block of hundreds).  `log_index`: the number of
    logs of the receipts before it, when the caller keeps those counts."""
    if len(receipts) != len(block.transactions):
        raise ValueError(f"{len(receipts)} receipts for {len(block.transactions)} transactions")
    prev_cumulative = receipts[index - 1].gas_used if index else 0
    if log_index is None:
        log_index = sum(len(r.logs) for r in receipts[:index])
    return _receipt_json(block, receipts, index, prev_cumulative, log_index)


def _receipt_json(block: BlockAPI, receipts: tuple[ReceiptAPI, ...] | list[ReceiptAPI],
                  i: int, prev_cumulative: int, log_index: int) -> dict[str, Any]:
    header = block.header
    tx, receipt = block.transactions[i], receipts[i]
    sender = sender_of(tx)  # no ECDSA recovery for transactions the pool checked
    contract = generate_contract_address(sender, tx.nonce) if not tx.to else None
    return {
        "transactionHash": data(tx.hash),
        "transactionIndex": qty(i),
        "blockHash": data(header.hash),
        "blockNumber": qty(header.block_number),
        "from": addr(sender),
        "to": addr(tx.to) if tx.to else None,
        "cumulativeGasUsed": qty(receipt.gas_used),
        "gasUsed": qty(receipt.gas_used - prev_cumulative),
        "effectiveGasPrice": qty(effective_gas_price(tx, header)),
        "contractAddress": addr(contract) if contract else None,
        "logs": logs_json(receipt, tx, header, i, log_index),
        "logsBloom": data(receipt.bloom.to_bytes(256, "big")),
        "type": qty(tx.type_id or 0),
        "status": qty(1 if receipt.state_root == b"\x01" else 0),
    }


EMPTY_ROOT = BLANK_ROOT_HASH
