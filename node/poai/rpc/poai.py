"""poai_* namespace: quiz parameters, epochs, recent seals with their losses, mining rate."""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address

from poai.quiz.epoch import epoch_index, epoch_key, seed_block_number
from poai.quiz.reduce import MalformedMixHash, unpack_q
from poai.rpc.context import RpcContext
from poai.rpc.errors import InvalidParams
from poai.rpc.hexutil import addr, data, param, parse_qty, qty
from poai.rpc.params import BLOCK_OR_HASH, NO_PARAMS, QTY, Arg

MAX_SEALS = 256


def _quiz(ctx: RpcContext) -> Any:
    return ctx.node.config.quiz


def quiz_params(ctx: RpcContext, params: list[Any]) -> dict[str, Any]:
    return dict(_quiz(ctx).to_dict())


def quality_gate(ctx: RpcContext, params: list[Any]) -> dict[str, Any]:
    """The quality gate's chain parameters: minimum improvement (exact decimal, nats/byte),
    validation windows per claim, and the grid claims are quantized on."""
    gate = ctx.node.config.quality_gate
    f = gate.min_delta
    return {"minDelta": f"{f.numerator}/{f.denominator}" if f.denominator != 1 else
            str(f.numerator), "windows": gate.windows, "gridBits": _quiz(ctx).grid_bits}


def epoch(ctx: RpcContext, params: list[Any]) -> dict[str, Any]:
    """The epoch of the head (or of the given block), its seed block and its key."""
    header = ctx.resolve_block(param(params, 0, "block", "latest"))
    blocks = _quiz(ctx).epoch_blocks
    index = epoch_index(header.block_number, blocks)
    seed_number = seed_block_number(index, blocks)
    seed = ctx.header_by_number(seed_number)
    out: dict[str, Any] = {"epoch": qty(index), "epochBlocks": qty(blocks),
                           "firstBlock": qty(index * blocks), "seedBlock": qty(seed_number)}
    if seed is not None:
        out["seedHash"] = data(seed.hash)
        out["epochKey"] = data(epoch_key(seed.hash, index))
        model = ctx.node.epoch_governance(bytes(seed.hash))
        if model is not None:  # the snapshot used, and the quality gate's word on the scheduled
            out["model"] = model
    return out


def last_seals(ctx: RpcContext, params: list[Any]) -> list[dict[str, Any]]:
    """Seals of the last N canonical blocks; losses are the claimed q_j / 2**B (nats/token)."""
    count = parse_qty(param(params, 0, "count", "0x10"), "count")
    if count > MAX_SEALS:
        raise InvalidParams(f"count too large: at most {MAX_SEALS}")
    quiz = _quiz(ctx)
    head = ctx.node.head()
    # Blocks this node mined also carry the miner's unrounded per-sample losses.
    mined = {bytes(r.block_hash): r for r in ctx.node.mining_stats().last_seals}
    out = []
    for number in range(head.block_number, max(0, head.block_number - count + 1) - 1, -1):
        if number == 0:
            break
        header = ctx.header_by_number(number)
        if header is None:
            break
        try:
            qs = unpack_q(header.mix_hash, quiz.values)
        except MalformedMixHash:
            qs = ()
        out.append({
            "number": qty(number), "hash": data(header.hash), "miner": addr(header.coinbase),
            "difficulty": qty(header.difficulty), "nonce": data(header.nonce),
            "mixHash": data(header.mix_hash), "q": [qty(q) for q in qs],
            "losses": [q / quiz.grid_scale for q in qs],
            "meanLoss": (sum(qs) / len(qs) / quiz.grid_scale) if qs else None,
        })
        record = mined.get(bytes(header.hash))
        if record is not None:
            out[-1].update({"minerLosses": list(record.losses), "attempts": record.attempts,
                            "sealSeconds": record.seconds})
    return out


def mining(ctx: RpcContext, params: list[Any]) -> dict[str, Any]:
    stats = ctx.node.mining_stats()
    return {"hashrate": float(stats.hashrate), "blocksMined": int(stats.blocks_mined),
            "mining": bool(ctx.node.mine)}


def model_manifest(ctx: RpcContext, params: list[Any]) -> dict[str, Any]:
    """The model and dataset the next block on the head must answer (governance may have
    replaced the genesis ones)."""
    genesis_dataset = ctx.node.config.dataset
    quiz = ctx.node.current_quiz()
    out: dict[str, Any] = {"manifest": quiz.manifest_hash,
           "epoch": qty(epoch_index(ctx.node.head().block_number + 1, quiz.params.epoch_blocks)),
           "dataset": {"path": str(quiz.dataset_path), "key": quiz.dataset_key.hex()}}
    if genesis_dataset is not None and str(genesis_dataset.path) == str(quiz.dataset_path):
        out["dataset"]["sha256"] = genesis_dataset.sha256  # known for the genesis dataset
    return out


def contracts(ctx: RpcContext, params: list[Any]) -> dict[str, str]:
    """Governance contracts in genesis, name -> checksum address ({} on a chain without)."""
    found = ctx.node.contracts
    return {name: to_checksum_address(bytes(address)) for name, address in found.items()}


METHODS = {
    "poai_quizParams": quiz_params,
    "poai_epoch": epoch,
    "poai_qualityGate": quality_gate,
    "poai_lastSeals": last_seals,
    "poai_mining": mining,
    "poai_attemptsPerSecond": lambda ctx, params: mining(ctx, params)["hashrate"],
    "poai_modelManifest": model_manifest,
    "poai_contracts": contracts,
}

PARAMS: dict[str, tuple[Arg, ...]] = {
    "poai_quizParams": NO_PARAMS,
    "poai_epoch": (Arg("block", BLOCK_OR_HASH, optional=True),),
    "poai_qualityGate": NO_PARAMS,
    "poai_lastSeals": (Arg("count", QTY, optional=True),),
    "poai_mining": NO_PARAMS,
    "poai_attemptsPerSecond": NO_PARAMS,
    "poai_modelManifest": NO_PARAMS,
    "poai_contracts": NO_PARAMS,
}
