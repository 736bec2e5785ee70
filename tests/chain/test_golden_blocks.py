"""Golden consensus values: the devnet genesis block hash and one sealed block on the devnet
rules (difficulty 1, so sealing takes one forward pass), so an accidental consensus change
(genesis state, header fields, state transition, quiz or seal) fails here.

A deliberate change (e.g. new quiz parameters in node/poai/assets/devnet.json) regenerates
them, and the diff of golden/devnet_blocks.json goes into the commit:

    ETH_HASH_BACKEND=pysha3 .venv/bin/python tests/chain/test_golden_blocks.py --regenerate
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

GOLDEN = Path(__file__).resolve().parent / "golden" / "devnet_blocks.json"
COINBASE = bytes.fromhex("00000000000000000000000000000000000000c0")


def compute() -> dict[str, Any]:
    from eth.db.atomic import AtomicDB
    from eth_account import Account
    from eth_utils import to_checksum_address
    from poai.chain.builder import build_block
    from poai.chain.chain import chain_class_for, create_genesis, genesis_hash
    from poai.chain.config import load_genesis_config
    from poai.chain.devaccounts import DEV_MNEMONIC, dev_accounts
    from poai.quiz.context import losses_for
    from poai.quiz.miner import DEFAULT_MARGIN
    from poai.quiz.reduce import claimable_values, find_ticket
    from poai.txpool.pool import decode_transaction

    devnet = load_genesis_config()
    easy = dataclasses.replace(devnet, initial_difficulty=1, min_difficulty=1)
    chain = create_genesis(AtomicDB(), easy, chain_class_for(easy))
    genesis = chain.get_canonical_head()
    sender, receiver = dev_accounts(devnet.dev_mnemonic or DEV_MNEMONIC, 2)
    raw = Account.sign_transaction(
        {"chainId": devnet.chain_id, "type": 2, "nonce": 0, "gas": 21_000, "value": 10**18,
         "maxFeePerGas": 10 * devnet.genesis_base_fee, "maxPriorityFeePerGas": 10**9,
         "to": to_checksum_address(receiver.address)},
        sender.private_key,
    ).raw_transaction
    tx = decode_transaction(chain.get_vm_class(genesis).get_transaction_builder(), bytes(raw))
    template = build_block(chain, genesis, COINBASE, [tx],
                           timestamp=genesis.timestamp + easy.target_block_time)
    assert len(template.block.transactions) == 1, template
    quiz = chain.consensus_context.quiz_for(template.header)
    for nonce in range(1000):  # the miner's own ticket rule; at difficulty 1 the first nonce
        losses = losses_for(quiz, template.seal_hash, nonce)
        choices = [claimable_values(v, quiz.params.grid_bits, DEFAULT_MARGIN) for v in losses]
        mix = find_ticket(template.seal_hash, nonce, choices, template.header.difficulty)
        if mix is not None:
            break
    else:
        raise RuntimeError("no seal found")
    block = template.seal(nonce, mix)
    chain.store_block(block)  # header rules and the seal check, as a node imports it
    return {
        "devnetGenesisHash": "0x" + genesis_hash(devnet).hex(),
        "sealedBlock": {
            "comment": "devnet rules at difficulty 1: block #1, one 1-POAI transfer",
            "hash": "0x" + block.hash.hex(),
            "stateRoot": "0x" + block.header.state_root.hex(),
            "nonce": nonce,
            "mixHash": "0x" + block.header.mix_hash.hex(),
        },
    }


def test_devnet_genesis_and_a_sealed_block_match_the_golden_values() -> None:
    golden = json.loads(GOLDEN.read_text())
    got = compute()
    assert got == golden, (
        "consensus values changed; if on purpose, regenerate: python "
        "tests/chain/test_golden_blocks.py --regenerate"
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        raise SystemExit(f"usage: test_golden_blocks.py --regenerate  (rewrites {GOLDEN})")
    GOLDEN.write_text(json.dumps(compute(), indent=2) + "\n")
    print(f"wrote {GOLDEN}")
