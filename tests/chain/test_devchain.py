"""poai.chain.devchain: a dev node's state cheats travel in real sealed blocks that the node
re-executes and verifies; a node without the cheats refuses them; the dev clock moves the
future-timestamp rule."""

from __future__ import annotations

import pytest
import rlp
from eth.db.atomic import AtomicDB
from eth_account import Account
from eth_utils import ValidationError
from poai.chain.builder import build_block
from poai.chain.chain import PoaiChain, chain_class_for, create_genesis
from poai.chain.config import ChainConfig
from poai.chain.devaccounts import dev_accounts
from poai.chain.devchain import (
    BALANCE,
    CODE,
    NONCE,
    STORAGE,
    Cheat,
    DevPoaiVM,
    decode_cheats,
    encode_cheats,
    impersonation,
    impersonation_key,
    load_cheats,
    store_cheats,
)
from poai.compat.pyevm import cache_sender
from poai.consensus.rejection import Rejection, rejection_of
from support.poai_tiny import seal_in_process

WHO = b"\x42" * 20
CHEATS = [Cheat(BALANCE, WHO, 12345), Cheat(NONCE, WHO, 7), Cheat(CODE, WHO, b"\x60\x01"),
          Cheat(STORAGE, WHO, 2**255 + 1, slot=9)]


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        import time
        return time.time() + self.offset


def dev_chain(config: ChainConfig, clock: Clock) -> PoaiChain:
    cls = chain_class_for(config, vm_class=DevPoaiVM, dev_clock=clock.now)
    return create_genesis(AtomicDB(), config, cls)


def test_cheats_round_trip_and_bad_ones_are_refused() -> None:
    assert decode_cheats(encode_cheats(CHEATS)) == CHEATS
    db = AtomicDB()
    digest = store_cheats(db, CHEATS)
    assert len(digest) == 32 and load_cheats(db, digest) == CHEATS
    assert load_cheats(db, b"\x00" * 32) == [] and load_cheats(db, b"") == []
    with pytest.raises(ValueError):
        Cheat(BALANCE, WHO, b"\x01")  # a balance is a number
    with pytest.raises(ValueError):
        Cheat(BALANCE, WHO, 2**256)
    with pytest.raises(ValueError):
        Cheat(9, WHO, 1)
    with pytest.raises(ValueError):
        Cheat(CODE, b"\x01", b"")


def test_a_cheat_block_is_sealed_reexecuted_by_its_node_and_refused_without_the_cheats(
    config: ChainConfig,
) -> None:
    clock = Clock()
    node, peer = dev_chain(config, clock), dev_chain(config, clock)
    parent = node.get_canonical_head()
    digest = store_cheats(node.chaindb.db, CHEATS)
    template = build_block(node, parent, b"\x01" * 20, [], extra_data=digest,
                           timestamp=parent.timestamp + config.target_block_time)
    block = seal_in_process(node, template)
    # The node imports it as any block (Node.import_block's path): header rules, seal,
    # re-execution with the cheats, state root.
    node.execute_and_store(block)
    state = node.get_vm(node.get_canonical_head()).state
    assert state.get_balance(WHO) == 12345 and state.get_nonce(WHO) == 7
    assert state.get_code(WHO) == b"\x60\x01" and state.get_storage(WHO, 9) == 2**255 + 1
    # A node that does not hold the cheats cannot re-execute it: a state-root mismatch.
    with pytest.raises(ValidationError) as err:
        peer.execute_and_store(block)
    assert rejection_of(err.value) is Rejection.WRONG_STATE_ROOT
    # Given the cheats, it can.
    store_cheats(peer.chaindb.db, CHEATS)
    peer.execute_and_store(block)
    assert peer.get_canonical_head().hash == block.hash


def test_the_future_rule_reads_the_dev_clock(config: ChainConfig) -> None:
    clock = Clock()
    node = dev_chain(config, clock)
    plain = create_genesis(AtomicDB(), config)
    parent = node.get_canonical_head()
    ahead = parent.timestamp + 10 * 3600  # a developer's evm_increaseTime
    template = build_block(node, parent, b"\x01" * 20, [], timestamp=max(ahead, int(clock.now())
                                                                         + 3600))
    block = seal_in_process(node, template)
    with pytest.raises(ValidationError) as err:
        node.execute_and_store(block)  # the clock has not moved yet
    assert rejection_of(err.value) is Rejection.FUTURE_TIMESTAMP
    with pytest.raises(ValidationError) as err:
        plain.execute_and_store(block)  # a non-dev chain: the wall clock, always
    assert rejection_of(err.value) is Rejection.FUTURE_TIMESTAMP
    clock.offset = block.header.timestamp - clock.now() + 1
    node.execute_and_store(block)
    assert node.get_canonical_head().hash == block.hash


def test_an_impersonated_transfer_reexecutes_through_its_blocks_record(
    config: ChainConfig,
) -> None:
    clock = Clock()
    node, peer, stranger = (dev_chain(config, clock) for _ in range(3))
    sender = dev_accounts()[3].address  # funded; its own key signs nothing here
    signer = Account.from_key(impersonation_key(sender))
    raw = signer.sign_transaction({
        "chainId": config.chain_id, "nonce": 0, "to": "0x" + WHO.hex(), "value": 5,
        "gas": 21000, "maxFeePerGas": 10**11, "maxPriorityFeePerGas": 10**9, "type": 2,
    }).raw_transaction
    tx = node.get_vm().get_transaction_builder().decode(bytes(raw))
    cache_sender(tx, sender)  # what poai.txpool.pool.assume_sender gives the block builder
    records = [impersonation(sender)]
    assert records[0].address == bytes.fromhex(signer.address[2:])
    parent = node.get_canonical_head()
    template = build_block(node, parent, b"\x01" * 20, [tx],
                           extra_data=store_cheats(node.chaindb.db, records),
                           timestamp=parent.timestamp + config.target_block_time)
    assert len(template.block.transactions) == 1, template.skipped
    block = seal_in_process(node, template)
    fresh = rlp.decode(rlp.encode(block), sedes=type(block))  # senders not recovered yet
    store_cheats(peer.chaindb.db, records)
    peer.execute_and_store(fresh)
    state = peer.get_vm(peer.get_canonical_head()).state
    assert state.get_balance(WHO) == 5 and state.get_nonce(sender) == 1
    with pytest.raises(ValidationError):  # without the record the signer sends: no funds
        stranger.execute_and_store(rlp.decode(rlp.encode(block), sedes=type(block)))
