"""txpool_* namespace (geth's txpool API)."""

from __future__ import annotations

from typing import Any

from poai.rpc import format
from poai.rpc.context import RpcContext
from poai.rpc.hexutil import addr, qty
from poai.rpc.params import NO_PARAMS, Arg


def status(ctx: RpcContext, params: list[Any]) -> dict[str, str]:
    return {k: qty(v) for k, v in ctx.node.txpool.status().items()}


def content(ctx: RpcContext, params: list[Any]) -> dict[str, Any]:
    raw = ctx.node.txpool.content()
    return {
        section: {addr(sender): {str(n): format.tx_json(tx) for n, tx in txs.items()}
                  for sender, txs in raw[section].items()}
        for section in ("pending", "queued")
    }


def inspect(ctx: RpcContext, params: list[Any]) -> dict[str, Any]:
    raw = ctx.node.txpool.content()

    def line(tx: Any) -> str:
        to = addr(tx.to) if tx.to else "contract creation"
        return f"{to}: {tx.value} wei + {tx.gas} gas × {tx.max_fee_per_gas} wei"

    return {section: {addr(s): {str(n): line(tx) for n, tx in txs.items()}
                      for s, txs in raw[section].items()}
            for section in ("pending", "queued")}


METHODS = {"txpool_status": status, "txpool_content": content, "txpool_inspect": inspect}
PARAMS: dict[str, tuple[Arg, ...]] = {name: NO_PARAMS for name in METHODS}
