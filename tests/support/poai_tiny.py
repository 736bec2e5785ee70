"""Small real quiz assets and chain configs for the chain, consensus, db and node tests.

A seeded 2-layer model in a temporary blob store and an encrypted dataset of random records:
real seals (mined by the quiz engine's Miner, checked by verify_seal) at a low difficulty, in
seconds.  Shared by tests/chain, tests/db, tests/p2p and tests/test_node.py.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from poai.chain.config import AccountAlloc, ChainConfig, DatasetConfig
from poai.chain.devaccounts import DEV_MNEMONIC, dev_accounts
from poai.quiz.params import QuizParams

ETHER = 10**18


def build_tiny_assets(root: Path) -> tuple[str, Path, Path, bytes, str]:
    """(manifest hash, model dir, dataset path, dataset key, dataset sha256)."""
    import torch
    from poai.model.config import ModelSpec, build_model
    from poai.model.dataset import encrypt_records, file_sha256
    from poai.model.snapshot import save_model
    from poai.model.store import BlobStore

    torch.manual_seed(4321)
    spec = ModelSpec(hidden_size=32, intermediate_size=32, num_hidden_layers=1,
                     num_local_experts=4, num_attention_heads=2, num_key_value_heads=2)
    model_dir = root / "model"
    manifest = save_model(BlobStore(model_dir), build_model(spec))
    rng = random.Random(7)
    text = b"proof of ai chain blocks sealed by quiz losses; "
    records = [bytes(rng.choice(text) for _ in range(16)) for _ in range(40)]
    key = bytes(range(1, 33))
    data = root / "data.poaids"
    data.write_bytes(encrypt_records(key, 16, records))
    return manifest, model_dir, data, key, file_sha256(data)


def tiny_config(root: Path, **overrides: object) -> ChainConfig:
    manifest, model_dir, data, key, sha = build_tiny_assets(root)
    alloc = {a.address: AccountAlloc(balance=10_000 * ETHER) for a in dev_accounts()}
    cfg = ChainConfig(
        chain_id=7337,
        quiz=QuizParams(k=4, salt_len=4, grid_bits=12, sample_len=16, epoch_blocks=4),
        model_manifest=manifest,
        model_dir=model_dir,
        dataset=DatasetConfig(data, sha, key),
        initial_difficulty=1,
        min_difficulty=1,
        target_block_time=4,
        block_subsidy_wei=5 * ETHER,
        halving_blocks=1000,
        gas_limit=30_000_000,
        alloc=alloc,
        genesis_timestamp=1_700_000_000,
        dev_mnemonic=DEV_MNEMONIC,
        dev_accounts=10,
        genesis_contracts=None,  # a tiny model: the devnet contracts name the genesis one
    )
    return dataclasses.replace(cfg, **overrides)  # type: ignore[arg-type]


def signed_transfers(
    chain_id: int, private_key: bytes, to: bytes, count: int, *, start_nonce: int = 0,
    value: int = 1, tip: int = 10**9, max_fee: int = 10**11,
) -> list[bytes]:
    """Raw signed EIP-1559 transfers (consecutive nonces), as a wallet would send them."""
    from eth_account import Account
    from web3 import Web3

    acct = Account.from_key(private_key)
    out = []
    for i in range(count):
        signed = acct.sign_transaction({
            "chainId": chain_id, "nonce": start_nonce + i, "to": Web3.to_checksum_address(to),
            "value": value, "gas": 21000, "maxFeePerGas": max_fee,
            "maxPriorityFeePerGas": tip, "type": 2,
        })
        out.append(bytes(signed.raw_transaction))
    return out


def seal_in_process(chain: object, template: object) -> object:
    """Grind a template's seal in this process (the quiz engine's functions, no workers): the
    same tickets the Miner would find, for the low difficulties of unit tests."""
    from poai.quiz.context import losses_for
    from poai.quiz.miner import DEFAULT_MARGIN
    from poai.quiz.reduce import claimable_values, find_ticket

    header = template.header  # type: ignore[attr-defined]
    ctx = chain.consensus_context.source.quiz_context_for(header)  # type: ignore[attr-defined]
    for nonce in range(100_000):
        losses = losses_for(ctx, template.seal_hash, nonce)  # type: ignore[attr-defined]
        choices = [claimable_values(v, ctx.params.grid_bits, DEFAULT_MARGIN) for v in losses]
        mix = find_ticket(template.seal_hash, nonce, choices, header.difficulty)  # type: ignore[attr-defined]
        if mix is not None:
            return template.seal(nonce, mix)  # type: ignore[attr-defined]
    raise RuntimeError("no seal found")


def mine_on(chain: object, parent: object, txs: list[object] | None = None, *,
            coinbase: bytes = b"\x01" * 20, gap: int | None = None, persist: bool = True) -> object:
    """Build, seal and (optionally) persist a block on `parent`, `gap` seconds after it
    (default: the target block time, so the difficulty stays put)."""
    from poai.chain.builder import build_block

    cfg = chain.config  # type: ignore[attr-defined]
    ts = parent.timestamp + (cfg.target_block_time if gap is None else gap)  # type: ignore[attr-defined]
    template = build_block(chain, parent, coinbase, txs or [], timestamp=ts)  # type: ignore[arg-type]
    block = seal_in_process(chain, template)
    if persist:
        chain.persist_block(block)  # type: ignore[attr-defined]
    return block
