"""Block building and importing throughput (transfers/s) on the PoAI chain over LevelDB.

Signed EIP-1559 transfers from the ten dev accounts (signed beforehand, not timed) go into
blocks of --per-block transfers on the devnet genesis (real genesis model and dataset, difficulty
lowered to 1 so the seal is one forward pass):

- build: `Node.build_template` (batch path: pre-processing system calls, all transactions, tries
  built once, post-processing, finalize), one seal by the quiz Miner (1 worker), then
  `Node.commit_block` (header rules, seal check, one LevelDB write batch).
- import: a second node imports the blocks from their RLP (sender recovery from signatures,
  header rules, seal verification, full re-execution, state root check, one write batch each).
- writes (extra, beside the issue's transfer figures): the same for --writes calls of a
  counter contract's `increment()` (an SLOAD, an SSTORE and an event each;
  tests/support/Counter.sol, deployed in an untimed block after the transfers), in blocks of
  --per-block.

Wall-clock and CPU-time (this process) rates are both reported: on a machine shared with other
work the wall-clock figures drop while the CPU-time ones hold.

Prints one JSON object.

    ETH_HASH_BACKEND=pysha3 .venv/bin/python bench/block_building.py  # 3000 transfers, 1000 writes
    ETH_HASH_BACKEND=pysha3 .venv/bin/python bench/block_building.py --quick  # 500, no writes
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


def _signed(chain_id: int, count: int, *, to: bytes = b"\x99" * 20, data: bytes = b"",
            gas: int = 21000, first_nonce: int = 0, accounts: range = range(10)) -> list[bytes]:
    from eth_account import Account
    from poai.chain.devaccounts import dev_accounts
    from web3 import Web3

    accts = dev_accounts()
    senders = [Account.from_key(accts[i].private_key) for i in accounts]
    out = []
    for i in range(count):
        acct = senders[i % len(senders)]
        signed = acct.sign_transaction({
            "chainId": chain_id, "nonce": first_nonce + i // len(senders),
            "to": Web3.to_checksum_address(to), "value": 0 if data else 1, "data": data,
            "gas": gas, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "type": 2,
        })
        out.append(bytes(signed.raw_transaction))
    return out


def _counter_txs(chain_id: int, count: int, first_nonce: int) -> tuple[bytes, list[bytes]]:
    """The counter's deployment (dev account 0) and `count` increment() calls after it."""
    import rlp
    from eth_account import Account
    from eth_utils import function_signature_to_4byte_selector, keccak
    from poai.chain.devaccounts import dev_accounts

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/support
    from support.contract import counter

    deployer = Account.from_key(dev_accounts()[0].private_key)
    deploy = deployer.sign_transaction({
        "chainId": chain_id, "nonce": first_nonce, "to": None, "value": 0, "gas": 500_000,
        "data": counter()["bytecode"], "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9,
        "type": 2})
    address = keccak(rlp.encode([bytes.fromhex(deployer.address[2:]), first_nonce]))[12:]
    calls = _signed(chain_id, count, to=address, data=function_signature_to_4byte_selector(
        "increment()"), gas=80_000, first_nonce=first_nonce, accounts=range(1, 10))
    return bytes(deploy.raw_transaction), calls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--transfers", type=int, default=None, help="total (3000; quick 500)")
    ap.add_argument("--per-block", type=int, default=500)
    ap.add_argument("--writes", type=int, default=None,
                    help="counter increment() calls after the transfers (1000; quick 0)")
    args = ap.parse_args()
    total = args.transfers or (500 if args.quick else 3000)
    writes = args.writes if args.writes is not None else (0 if args.quick else 1000)
    if total < 1 or writes < 0 or args.per_block < 1:
        ap.error("--transfers and --per-block must be positive, --writes not negative")
    if writes and total % 10:
        ap.error("--writes needs --transfers to be a multiple of 10 (the dev accounts' nonces)")

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
    build_s = seal_s = commit_s = build_cpu = commit_cpu = writes_build_s = 0.0
    blocks: list[Any] = []
    try:
        warm = builder_node.build_template([])  # loads the model in the miner and here
        seal = miner.mine(warm.quiz, warm.template.seal_hash, 1)
        assert seal is not None
        builder_node.commit_block(warm, seal.nonce, seal.mix_hash)
        def build(chunk: list[Any]) -> tuple[float, float, float, float, float]:
            t0, c0 = time.perf_counter(), time.process_time()
            pending = builder_node.build_template(chunk)
            t1, c1 = time.perf_counter(), time.process_time()
            seal = miner.mine(pending.quiz, pending.template.seal_hash,
                              pending.template.header.difficulty)
            assert seal is not None
            t2, c2 = time.perf_counter(), time.process_time()
            result = builder_node.commit_block(pending, seal.nonce, seal.mix_hash)
            t3, c3 = time.perf_counter(), time.process_time()
            assert result is not None and len(result.block.transactions) == len(chunk)
            blocks.append(result.block)
            return t1 - t0, t2 - t1, t3 - t2, c1 - c0, c3 - c2

        for start in range(0, total, args.per_block):
            b, s_, c, bc, cc = build(txs[start:start + args.per_block])
            build_s, seal_s, commit_s = build_s + b, seal_s + s_, commit_s + c
            build_cpu, commit_cpu = build_cpu + bc, commit_cpu + cc
        transfer_blocks = len(blocks)
        if writes:
            deploy, calls = _counter_txs(config.chain_id, writes, total // 10)
            build([tx_builder.decode(deploy)])
            call_txs = [tx_builder.decode(r) for r in calls]
            for tx in call_txs:
                _ = tx.sender
            for start in range(0, writes, args.per_block):
                b, *_rest = build(call_txs[start:start + args.per_block])
                writes_build_s += b
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
        for data in encoded[1:1 + transfer_blocks]:
            importer.import_block(rlp.decode(data, sedes=block_class))
        import_s = time.perf_counter() - t0
        import_cpu = time.process_time() - c0
        if writes:  # the counter's deployment, untimed
            importer.import_block(rlp.decode(encoded[1 + transfer_blocks], sedes=block_class))
        t0 = time.perf_counter()
        for data in encoded[2 + transfer_blocks:]:
            importer.import_block(rlp.decode(data, sedes=block_class))
        writes_import_s = time.perf_counter() - t0
        assert importer.head().hash == head.hash
    finally:
        importer.stop()

    out = {
        "transfers": total,
        "per_block": args.per_block,
        "blocks": transfer_blocks,
        "build_transfers_per_s": round(total / build_s, 1),
        "build_incl_commit_transfers_per_s": round(total / (build_s + commit_s), 1),
        "seal_ms_per_block": round(1000 * seal_s / transfer_blocks, 1),
        "import_transfers_per_s": round(total / import_s, 1),
        # CPU time of this process: the same work, less sensitive to other load on the machine.
        "build_transfers_per_cpu_s": round(total / build_cpu, 1),
        "build_incl_commit_transfers_per_cpu_s": round(total / (build_cpu + commit_cpu), 1),
        "import_transfers_per_cpu_s": round(total / import_cpu, 1),
        "import_ms_per_block": round(1000 * import_s / transfer_blocks, 1),
        "goal_transfers_per_s": 1000,
        "writes": writes,
        "build_writes_per_s": round(writes / writes_build_s, 1) if writes else None,
        "import_writes_per_s": round(writes / writes_import_s, 1) if writes else None,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
