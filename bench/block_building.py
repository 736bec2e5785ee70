"""Block building and importing throughput (transfers/s) on the PoAI chain over LevelDB.

Signed EIP-1559 transfers from the ten dev accounts (signed beforehand, not timed) go into
blocks of --per-block transfers on the devnet genesis (real genesis model and dataset, difficulty
lowered to 1 so the seal is one forward pass):

- build: `Node.build_template` (batch path: pre-processing system calls, all transactions, tries
  built once, post-processing, finalize), one seal by the quiz Miner (1 worker), then
  `Node.commit_block` (header rules, seal check, one LevelDB write batch).
- import: a second node imports the blocks from their RLP (sender recovery from signatures,
  header rules, seal verification, full re-execution, state root check, one write batch each).

Wall-clock and CPU-time (this process) rates are both reported: on a machine shared with other
work the wall-clock figures drop while the CPU-time ones hold.

Prints one JSON object.

    ETH_HASH_BACKEND=pysha3 .venv/bin/python bench/block_building.py            # 3,000 transfers
    ETH_HASH_BACKEND=pysha3 .venv/bin/python bench/block_building.py --quick    # 500
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def _signed(chain_id: int, count: int) -> list[bytes]:
    from eth_account import Account
    from poai.chain.devaccounts import dev_accounts
    from web3 import Web3

    accts = dev_accounts()
    senders = [Account.from_key(a.private_key) for a in accts]
    to = Web3.to_checksum_address(b"\x99" * 20)
    out = []
    for i in range(count):
        acct = senders[i % len(senders)]
        signed = acct.sign_transaction({
            "chainId": chain_id, "nonce": i // len(senders), "to": to, "value": 1,
            "gas": 21000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "type": 2,
        })
        out.append(bytes(signed.raw_transaction))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--transfers", type=int, default=None, help="total (3000; quick 500)")
    ap.add_argument("--per-block", type=int, default=500)
    args = ap.parse_args()
    total = args.transfers or (500 if args.quick else 3000)

    import rlp
    from poai.chain.config import load_genesis_config
    from poai.node import Node
    from poai.quiz.miner import Miner

    config = dataclasses.replace(load_genesis_config(), initial_difficulty=1, min_difficulty=1)
    raws = _signed(config.chain_id, total)
    tmp = Path(tempfile.mkdtemp(prefix="poai-bench-"))
    builder_node = Node(tmp / "builder", config, coinbase=b"\x77" * 20)
    builder_node.start()
    tx_builder = builder_node.chain.get_vm().get_transaction_builder()
    txs = [tx_builder.decode(r) for r in raws]
    for tx in txs:  # recover senders before timing: the pool does this on admission
        _ = tx.sender

    miner = Miner(workers=1)
    build_s = seal_s = commit_s = build_cpu = commit_cpu = 0.0
    blocks: list[Any] = []
    try:
        warm = builder_node.build_template([])  # loads the model in the miner and here
        seal = miner.mine(warm.quiz, warm.template.seal_hash, 1)
        assert seal is not None
        builder_node.commit_block(warm, seal.nonce, seal.mix_hash)
        for start in range(0, total, args.per_block):
            chunk = txs[start:start + args.per_block]
            t0, c0 = time.perf_counter(), time.process_time()
            pending = builder_node.build_template(chunk)
            t1, c1 = time.perf_counter(), time.process_time()
            seal = miner.mine(pending.quiz, pending.template.seal_hash,
                              pending.template.header.difficulty)
            assert seal is not None
            t2, c2 = time.perf_counter(), time.process_time()
            result = builder_node.commit_block(pending, seal.nonce, seal.mix_hash)
            t3, c3 = time.perf_counter(), time.process_time()
            build_cpu += c1 - c0
            commit_cpu += c3 - c2
            assert result is not None and len(result.block.transactions) == len(chunk)
            build_s += t1 - t0
            seal_s += t2 - t1
            commit_s += t3 - t2
            blocks.append(result.block)
        head = builder_node.head()
        all_blocks = [builder_node.chain.get_canonical_block_by_number(n)  # type: ignore[arg-type]
                      for n in range(1, head.block_number + 1)]
        encoded = [rlp.encode(b) for b in all_blocks]
    finally:
        miner.close()
        builder_node.stop()

    importer = Node(tmp / "importer", config)
    importer.start()
    try:
        block_class = importer.chain.get_vm_class_for_block_number(1).get_block_class()  # type: ignore[arg-type]
        first = rlp.decode(encoded[0], sedes=block_class)
        importer.import_block(first)  # the warm-up block: loads the model for verification
        t0, c0 = time.perf_counter(), time.process_time()
        for data in encoded[1:]:
            importer.import_block(rlp.decode(data, sedes=block_class))
        import_s = time.perf_counter() - t0
        import_cpu = time.process_time() - c0
        assert importer.head().hash == head.hash
    finally:
        importer.stop()

    out = {
        "transfers": total,
        "per_block": args.per_block,
        "blocks": len(blocks),
        "build_transfers_per_s": round(total / build_s, 1),
        "build_incl_commit_transfers_per_s": round(total / (build_s + commit_s), 1),
        "seal_ms_per_block": round(1000 * seal_s / len(blocks), 1),
        "import_transfers_per_s": round(total / import_s, 1),
        # CPU time of this process: the same work, less sensitive to other load on the machine.
        "build_transfers_per_cpu_s": round(total / build_cpu, 1),
        "build_incl_commit_transfers_per_cpu_s": round(total / (build_cpu + commit_cpu), 1),
        "import_transfers_per_cpu_s": round(total / import_cpu, 1),
        "import_ms_per_block": round(1000 * import_s / len(blocks), 1),
        "goal_transfers_per_s": 1000,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
