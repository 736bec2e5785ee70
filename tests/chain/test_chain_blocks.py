"""Building, sealing, importing blocks on the PoAI VM (tiny real quiz assets, difficulty ~1)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague.constants import HISTORY_SERVE_WINDOW, HISTORY_STORAGE_ADDRESS
from eth_utils.exceptions import ValidationError
from poai.chain.builder import build_block
from poai.chain.chain import PoaiChain, create_genesis
from poai.chain.config import ChainConfig
from poai.chain.devaccounts import dev_accounts
from poai.chain.forkchoice import reorg_diff
from support.poai_tiny import mine_on, seal_in_process, signed_transfers

ACCTS = dev_accounts()


def fresh(config: ChainConfig) -> PoaiChain:
    return create_genesis(AtomicDB(), config)


def transfers(chain: PoaiChain, n: int, *, start: int = 0, tip: int = 10**9) -> list[Any]:
    builder = chain.get_vm().get_transaction_builder()
    raws = signed_transfers(chain.chain_id, ACCTS[0].private_key, ACCTS[1].address, n,
                            start_nonce=start, tip=tip)
    return [builder.decode(r) for r in raws]


def test_built_block_imports_identically_elsewhere(config: ChainConfig) -> None:
    miner, other = fresh(config), fresh(config)
    assert miner.get_canonical_head() == other.get_canonical_head()
    txs = transfers(miner, 30)
    block = mine_on(miner, miner.get_canonical_head(), txs)
    assert len(block.transactions) == 30
    # `import_block` re-executes everything, incl. the EIP-4788/2935 system calls, and
    # compares the result with the block: state root, receipts root, requests hash...
    result = other.import_block(block)
    assert result.imported_block == block
    assert other.get_canonical_head().hash == block.hash
    # EIP-2935: the parent hash is in the history contract's ring buffer.
    state = other.get_vm(block.header).state
    slot = (block.number - 1) % HISTORY_SERVE_WINDOW
    stored = state.get_storage(HISTORY_STORAGE_ADDRESS, slot)
    assert stored == int.from_bytes(block.header.parent_hash, "big")


def test_subsidy_tips_to_coinbase_and_base_fee_burnt(config: ChainConfig) -> None:
    chain = fresh(config)
    coinbase = b"\x42" * 20
    tip = 2 * 10**9
    parent = chain.get_canonical_head()
    block = mine_on(chain, parent, transfers(chain, 5, tip=tip), coinbase=coinbase)
    state = chain.get_vm(block.header).state
    gas = 5 * 21000
    assert block.header.gas_used == gas
    assert state.get_balance(coinbase) == config.block_subsidy_wei + gas * tip
    # Sender paid value + (base fee + tip) * gas; the base fee part went nowhere (burnt).
    spent = 10_000 * 10**18 - state.get_balance(ACCTS[0].address)
    assert spent == 5 * 1 + gas * (block.header.base_fee_per_gas + tip)


def test_gas_limit_does_not_drift_and_timestamps_follow(config: ChainConfig) -> None:
    chain = fresh(config)
    head = chain.get_canonical_head()
    for _ in range(4):
        block = mine_on(chain, head)
        assert block.header.gas_limit == config.gas_limit
        assert block.header.timestamp == head.timestamp + config.target_block_time
        head = block.header
    assert chain.get_canonical_head().block_number == 4


def test_default_timestamp_is_not_ahead_of_the_clock(config: ChainConfig) -> None:
    chain = fresh(config)
    template = build_block(chain, chain.get_canonical_head(), b"\x01" * 20, [])
    now = int(time.time())
    assert now <= template.header.timestamp <= now + 1


def test_invalid_transactions_are_skipped(config: ChainConfig) -> None:
    chain = fresh(config)
    txs = transfers(chain, 3)
    gap = transfers(chain, 1, start=7)  # nonce gap: not executable
    template = build_block(chain, chain.get_canonical_head(), b"\x01" * 20, txs[:2] + gap + txs[2:])
    assert [t.hash for t in template.block.transactions] == [t.hash for t in txs]
    assert [t.hash for t, _ in template.skipped] == [gap[0].hash]


def _tampered(chain: PoaiChain, **fields: Any) -> Any:
    parent = chain.get_canonical_head()
    block = mine_on(chain, parent, persist=False)
    return block.copy(header=block.header.copy(**fields))


def test_bad_seal_is_rejected(config: ChainConfig) -> None:
    chain = fresh(config)
    block = mine_on(chain, chain.get_canonical_head(), persist=False)
    mix = bytearray(block.header.mix_hash)
    mix[7] ^= 0x40  # q_1 off by 64 grid steps
    bad = block.copy(header=block.header.copy(mix_hash=bytes(mix)))
    with pytest.raises(ValidationError, match="quiz seal"):
        fresh(config).import_block(bad)


@pytest.mark.parametrize("field, value, message", [
    ("difficulty", 7, "difficulty"),
    ("gas_limit", 29_990_000, "gas limit"),
])
def test_header_rules(config: ChainConfig, field: str, value: int, message: str) -> None:
    chain = fresh(config)
    parent = chain.get_canonical_head()
    template = build_block(chain, parent, b"\x01" * 20, [], timestamp=parent.timestamp + 4)
    header = template.header.copy(**{field: value})
    with pytest.raises(ValidationError, match=message):
        chain.get_vm_class(header).validate_header(header, parent)


def test_future_timestamp_rejected(config: ChainConfig) -> None:
    chain = fresh(config)
    parent = chain.get_canonical_head()
    ts = int(time.time()) + config.max_future_drift + 30
    template = build_block(chain, parent, b"\x01" * 20, [], timestamp=ts)
    with pytest.raises(ValidationError, match="future"):
        chain.get_vm_class(template.header).validate_header(template.header, parent)


def test_greatest_total_difficulty_wins(config: ChainConfig) -> None:
    chain = fresh(config)
    genesis = chain.get_canonical_head()
    # Branch A: three blocks at the target time, difficulty stays 1 (TD 1 + 3).
    a = genesis
    for _ in range(3):
        a = mine_on(chain, a).header
    assert chain.get_canonical_head() == a
    # Branch B: two fast blocks; difficulty rises 1 -> 2 -> 3 (TD 1 + 5): shorter but heavier.
    b1 = mine_on(chain, genesis, gap=1, persist=False)
    assert b1.header.difficulty == 2
    res1 = chain.import_block(b1)
    assert res1.new_canonical_blocks == ()  # TD 3 < 4: side chain
    b2 = mine_on(chain, b1.header, gap=1, persist=False)
    assert b2.header.difficulty == 3
    old_head = chain.get_canonical_head()
    res2 = chain.import_block(b2)
    assert [blk.hash for blk in res2.new_canonical_blocks] == [b1.hash, b2.hash]
    assert chain.get_canonical_head().hash == b2.hash
    assert chain.get_score(b2.hash) == 1 + 2 + 3
    assert chain.get_canonical_block_header_by_number(2).hash == b2.hash  # type: ignore[arg-type]
    # py-evm reports only the replaced heights; reorg_diff finds all three removed blocks.
    removed, added = reorg_diff(chain, old_head, b2.header)
    assert [blk.number for blk in removed] == [1, 2, 3]
    assert removed[-1].hash == a.hash
    assert [blk.hash for blk in added] == [b1.hash, b2.hash]


def test_sealing_a_template_keeps_its_seal_hash(config: ChainConfig) -> None:
    from poai.consensus.seal_hash import seal_hash

    chain = fresh(config)
    template = build_block(chain, chain.get_canonical_head(), b"\x01" * 20, [])
    block = seal_in_process(chain, template)
    assert seal_hash(block.header) == template.seal_hash
