"""PoaiVM's state class: the same states as py-evm's Prague state, and import still checks
every result of the state transition."""

from __future__ import annotations

from typing import Any

import pytest
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague.state import PragueState
from eth_utils import keccak
from eth_utils.exceptions import ValidationError
from poai.chain.chain import PoaiChain, chain_class_for, create_genesis
from poai.chain.config import ChainConfig
from poai.chain.devaccounts import dev_accounts
from poai.chain.vm import PoaiState, PoaiVM
from support.poai_tiny import mine_on, signed_transfers

ACCTS = dev_accounts(count=2)


def transfers(chain: PoaiChain, n: int, start: int = 0) -> list[Any]:
    builder = chain.get_vm().get_transaction_builder()
    raws = signed_transfers(chain.chain_id, ACCTS[0].private_key, ACCTS[1].address, n,
                            start_nonce=start)
    return [builder.decode(r) for r in raws]


def prague_state_chain(config: ChainConfig) -> PoaiChain:
    """The same chain with py-evm's own Prague state class (system-contract setup included)."""
    cls = chain_class_for(config)
    vm = cls.vm_configuration[0][1].configure(_state_class=PragueState)
    chain = create_genesis(AtomicDB(), config, cls.configure(vm_configuration=((0, vm),)))
    assert chain.get_vm().get_state_class() is PragueState
    return chain


def test_poai_state_gives_the_same_blocks_as_the_prague_state(config: ChainConfig) -> None:
    assert PoaiVM.get_state_class() is PoaiState
    ours = create_genesis(AtomicDB(), config)
    theirs = prague_state_chain(config)
    assert ours.get_canonical_head() == theirs.get_canonical_head()
    head = ours.get_canonical_head()
    for i in range(3):  # empty and non-empty blocks, each way round
        block = mine_on(ours, head, transfers(ours, 2 * i, start=i * (i - 1)))
        theirs.import_block(block)  # re-executes with PragueState: identical roots or raises
        head = block.header
    back = mine_on(theirs, head, transfers(theirs, 3, start=6))  # built by py-evm's state
    ours.import_block(back)
    assert ours.get_canonical_head() == theirs.get_canonical_head() == back.header


def test_a_wrong_state_root_is_still_rejected(config: ChainConfig) -> None:
    miner, other = create_genesis(AtomicDB(), config), create_genesis(AtomicDB(), config)
    block = mine_on(miner, miner.get_canonical_head(), transfers(miner, 2))
    bad = block.copy(header=block.header.copy(state_root=keccak(b"not the state")))
    other.consensus_context.remember(bad.hash, ())  # only the state root is wrong
    with pytest.raises(ValidationError, match="state_root"):
        other.execute_and_store(bad)
    assert other.get_canonical_head().block_number == 0
