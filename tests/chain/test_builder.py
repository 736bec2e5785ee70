"""poai.chain.builder: the header fold per transaction and the seal, against py-evm's own steps."""

from __future__ import annotations

from typing import Any

import pytest
from eth.db.atomic import AtomicDB
from eth_account import Account
from poai.chain.builder import build_block
from poai.chain.chain import PoaiChain, create_genesis
from poai.chain.config import ChainConfig
from poai.chain.devaccounts import dev_accounts
from support.poai_tiny import seal_in_process, signed_transfers

ACCTS = dev_accounts()


def fresh(config: ChainConfig) -> PoaiChain:
    return create_genesis(AtomicDB(), config)


def log_emitting_creations(chain: PoaiChain, count: int, start_nonce: int) -> list[Any]:
    """Contract creations whose init code emits LOG1 with topic i (and deploys nothing), so
    every receipt has its own bloom bits."""
    acct = Account.from_key(ACCTS[0].private_key)
    builder = chain.get_vm().get_transaction_builder()
    out = []
    for i in range(count):
        # MSTORE(0, 42); LOG1(offset 0, size 32, topic i + 1); STOP
        init = bytes.fromhex(f"602a60005260{i + 1:02x}60206000a100")
        raw = acct.sign_transaction({
            "chainId": chain.chain_id, "nonce": start_nonce + i, "to": b"", "value": 0,
            "gas": 100_000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9,
            "type": 2, "data": init,
        }).raw_transaction
        out.append(builder.decode(bytes(raw)))
    return out


def mixed_transactions(chain: PoaiChain) -> list[Any]:
    builder = chain.get_vm().get_transaction_builder()
    transfers = [builder.decode(r) for r in signed_transfers(
        chain.chain_id, ACCTS[0].private_key, ACCTS[1].address, 3, start_nonce=4)]
    return log_emitting_creations(chain, 4, 0) + transfers


def test_header_folds_every_receipt_as_py_evm_does(config: ChainConfig) -> None:
    chain = fresh(config)
    parent = chain.get_canonical_head()
    template = build_block(chain, parent, b"\x01" * 20, mixed_transactions(chain),
                           timestamp=parent.timestamp + config.target_block_time)
    assert len(template.block.transactions) == 7 and not template.skipped
    # py-evm's own fold (Byzantium's add_receipt_to_header, a copy per transaction)
    vm = chain.get_vm(template.header)
    expected = template.header.copy(bloom=0, gas_used=0)
    for receipt in template.receipts:
        expected = vm.add_receipt_to_header(expected, receipt)
    assert template.header.bloom != 0
    assert template.header.bloom == expected.bloom
    assert template.header.gas_used == expected.gas_used == template.receipts[-1].gas_used


def test_built_block_with_logs_imports_elsewhere(config: ChainConfig) -> None:
    miner, other = fresh(config), fresh(config)
    parent = miner.get_canonical_head()
    template = build_block(miner, parent, b"\x01" * 20, mixed_transactions(miner),
                           timestamp=parent.timestamp + config.target_block_time)
    block = seal_in_process(miner, template)
    # import re-executes and checks bloom, gas used, receipts root and state root
    result = other.import_block(block)
    assert result.imported_block == block
    assert other.get_canonical_head().hash == block.hash


def test_seal_equals_rlp_copy_and_shares_the_transactions(config: ChainConfig) -> None:
    chain = fresh(config)
    parent = chain.get_canonical_head()
    template = build_block(chain, parent, b"\x01" * 20, mixed_transactions(chain),
                           timestamp=parent.timestamp + config.target_block_time)
    nonce, mix = 0x0102030405060708, b"\x09" * 32
    sealed = template.seal(nonce, mix)
    reference = template.block.copy(header=template.header.copy(
        nonce=nonce.to_bytes(8, "big"), mix_hash=mix))
    assert sealed == reference
    assert sealed.hash == reference.hash
    assert sealed.header.nonce == nonce.to_bytes(8, "big") and sealed.header.mix_hash == mix
    assert all(a is b for a, b in zip(sealed.transactions, template.block.transactions,
                                      strict=True))
    # the template itself is unchanged, and the seal hash ignores the seal fields
    assert template.header.mix_hash != mix
    from poai.consensus.seal_hash import seal_hash
    assert seal_hash(sealed.header) == template.seal_hash


def test_draft_takes_transactions_in_several_rounds(config: ChainConfig) -> None:
    from poai.chain.builder import BlockDraft

    chain, other = fresh(config), fresh(config)
    parent = chain.get_canonical_head()
    builder = chain.get_vm().get_transaction_builder()
    txs = [builder.decode(r) for r in signed_transfers(
        chain.chain_id, ACCTS[0].private_key, ACCTS[1].address, 4)]
    draft = BlockDraft(chain, parent, b"\x01" * 20,
                       timestamp=parent.timestamp + config.target_block_time)
    assert draft.add([txs[0], txs[2]]) == 1  # nonce 2 has a gap: skipped for now
    assert draft.add(txs) == 3  # 0 is not applied twice; 2 now follows 1
    template = draft.finish()
    assert [tx.hash for tx in template.block.transactions] == [
        txs[0].hash, txs[1].hash, txs[2].hash, txs[3].hash]
    assert template.skipped == []
    assert template.header.gas_used == 4 * 21000
    other.import_block(seal_in_process(chain, template))
    with pytest.raises(RuntimeError, match="finished"):
        draft.add(txs)
