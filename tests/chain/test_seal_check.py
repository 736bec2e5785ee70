"""The one seal check (QuizConsensusContext.check_seal / settle / validate_seal_extension) and
the rejection reasons block errors carry (tiny real quiz assets, difficulty 1)."""

from __future__ import annotations

import pickle

import pytest
from eth.db.atomic import AtomicDB
from eth.exceptions import HeaderNotFound
from eth_utils.exceptions import ValidationError
from poai.chain.builder import build_block
from poai.chain.chain import create_genesis
from poai.chain.config import ChainConfig
from poai.consensus.rejection import (
    BlockRejected,
    Rejection,
    SealRejected,
    check_not_in_future,
    rejection_of,
)
from poai.consensus.seal_hash import seal_hash
from poai.quiz.reduce import pack_q, unpack_q
from poai.quiz.seal import InvalidSeal
from support.poai_tiny import mine_on, seal_in_process


def test_a_valid_seal_is_checked_once_and_remembered(config: ChainConfig) -> None:
    chain = create_genesis(AtomicDB(), config)
    block = mine_on(chain, chain.get_canonical_head(), persist=False)
    cc = chain.consensus_context
    losses = cc.check_seal(block.header)
    assert len(losses) == config.quiz.values and cc.verified_losses(block.hash) == losses
    assert cc.check_seal(block.header) == losses  # from the cache


def test_wrong_q_and_bad_seal_are_told_apart(config: ChainConfig) -> None:
    chain = create_genesis(AtomicDB(), config)
    block = mine_on(chain, chain.get_canonical_head(), persist=False)
    qs = list(unpack_q(block.header.mix_hash, config.quiz.values))
    qs[0] += 7  # neither the floor nor the ceiling of the verifier's loss
    wrong = block.header.copy(mix_hash=pack_q(qs))
    with pytest.raises(SealRejected) as info:
        chain.consensus_context.check_seal(wrong)
    assert info.value.reason is Rejection.WRONG_Q and isinstance(info.value, ValidationError)
    off_target = block.header.copy(difficulty=2**255)  # its loss hash misses this target
    with pytest.raises(SealRejected) as info:
        chain.validate_seal(off_target)  # py-evm's entry point: the same check
    assert info.value.reason is Rejection.BAD_SEAL
    assert chain.consensus_context.verified_losses(wrong.hash) is None


def test_seal_extension_finds_the_epoch_seed_among_unstored_parents(config: ChainConfig) -> None:
    """A block whose epoch seed is only a header (not stored) is checked through
    validate_seal_extension(header, parents), as sync checks downloaded batches."""
    miner = create_genesis(AtomicDB(), config)
    blocks = []
    parent = miner.get_canonical_head()
    for _ in range(config.quiz.epoch_blocks + 1):  # past the first epoch's seed
        parent = mine_on(miner, parent).header
        blocks.append(parent)
    other = create_genesis(AtomicDB(), config)
    consensus = other.get_vm_class(blocks[-1]).consensus_class(other.consensus_context)
    with pytest.raises(HeaderNotFound):  # its ancestry is unknown without the parents
        other.consensus_context.check_seal(blocks[-1])
    consensus.validate_seal_extension(blocks[-1], blocks[:-1])
    assert other.consensus_context.verified_losses(blocks[-1].hash) is not None


def test_a_batched_result_is_settled_like_a_single_check(config: ChainConfig) -> None:
    chain = create_genesis(AtomicDB(), config)
    genesis = chain.get_canonical_head()
    template = build_block(chain, genesis, b"\x01" * 20, [], timestamp=genesis.timestamp + 4)
    block = seal_in_process(chain, template)
    cc = chain.consensus_context
    with pytest.raises(SealRejected) as info:
        cc.settle(block.header, InvalidSeal("sample 0: claimed q=1", wrong_q=True))
    assert info.value.reason is Rejection.WRONG_Q
    cc.settle(block.header, None)
    assert cc.verified_losses(block.hash) == ()


def test_reasons_cross_processes_and_default_to_invalid_block() -> None:
    again = pickle.loads(pickle.dumps(InvalidSeal("claimed q=3", wrong_q=True)))
    assert again.wrong_q and str(again) == "claimed q=3"
    assert rejection_of(again) is Rejection.WRONG_Q
    assert rejection_of(InvalidSeal("loss hash above target")) is Rejection.BAD_SEAL
    # The message never decides: a state-root word in the text of a plain error is not read.
    assert rejection_of(ValidationError("state root mismatch, seal, timestamp future")) is (
        Rejection.INVALID_BLOCK)
    assert rejection_of(BlockRejected(Rejection.WRONG_STATE_ROOT, "x")) is (
        Rejection.WRONG_STATE_ROOT)


def test_future_timestamp_rule(config: ChainConfig) -> None:
    header = create_genesis(AtomicDB(), config).get_canonical_head()
    check_not_in_future(header, 15, now=header.timestamp - 15)
    with pytest.raises(BlockRejected) as info:
        check_not_in_future(header, 15, now=header.timestamp - 16)
    assert info.value.reason is Rejection.FUTURE_TIMESTAMP


def test_a_wrong_state_root_is_named(config: ChainConfig) -> None:
    miner, other = create_genesis(AtomicDB(), config), create_genesis(AtomicDB(), config)
    genesis = miner.get_canonical_head()
    template = build_block(miner, genesis, b"\x01" * 20, [], timestamp=genesis.timestamp + 4)
    forged = template.block.copy(header=template.block.header.copy(state_root=b"\x01" * 32))
    template = type(template)(forged, template.receipts, seal_hash(forged.header),
                              template.skipped)
    block = seal_in_process(miner, template)
    with pytest.raises(BlockRejected) as info:
        other.execute_and_store(block)
    assert info.value.reason is Rejection.WRONG_STATE_ROOT
