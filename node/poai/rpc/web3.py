"""web3_* and net_* namespaces."""

from __future__ import annotations

from typing import Any

from eth_hash.auto import keccak

from poai.rpc.context import RpcContext
from poai.rpc.hexutil import data, param, parse_data, qty
from poai.rpc.params import DATA, NO_PARAMS, Arg


def client_version(ctx: RpcContext, params: list[Any]) -> str:
    return ctx.client_version


def sha3(ctx: RpcContext, params: list[Any]) -> str:
    return data(keccak(parse_data(param(params, 0, "data"))))


def net_version(ctx: RpcContext, params: list[Any]) -> str:
    return str(ctx.chain_id)  # a decimal string, as geth; MetaMask needs it


def net_listening(ctx: RpcContext, params: list[Any]) -> bool:
    return True


def net_peer_count(ctx: RpcContext, params: list[Any]) -> str:
    network = ctx.node.network  # None: no networking, no peers
    return qty(network.peer_count() if network is not None else 0)


METHODS = {
    "web3_clientVersion": client_version,
    "web3_sha3": sha3,
    "net_version": net_version,
    "net_listening": net_listening,
    "net_peerCount": net_peer_count,
}

PARAMS: dict[str, tuple[Arg, ...]] = {
    "web3_clientVersion": NO_PARAMS,
    "web3_sha3": (Arg("data", DATA),),
    "net_version": NO_PARAMS,
    "net_listening": NO_PARAMS,
    "net_peerCount": NO_PARAMS,
}
