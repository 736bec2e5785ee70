"""The shared jump-destination analysis belongs to exact code bytes: contracts alike in length,
prefix or jump target but not in bytes never see each other's answers (in either order)."""

from __future__ import annotations

import pytest
from eth.constants import BLANK_ROOT_HASH, EMPTY_UNCLE_HASH, ZERO_HASH32
from eth.db.atomic import AtomicDB
from eth.vm.chain_context import ChainContext
from eth.vm.forks.prague.blocks import PragueBlockHeader
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.message import Message
from poai.chain.computation import PoaiComputation
from poai.chain.vm import PoaiState, PoaiVM

# Both 7 bytes, both PUSH1 4 JUMP: position 4 is a JUMPDEST in one, PUSH2 data in the other.
# (The trailing byte differs from tests/chain/test_computation.py's codes: fresh cache entries.)
JUMPDEST_AT_4 = bytes.fromhex("600456fe5b0001")  # PUSH1 4, JUMP, INVALID, JUMPDEST, STOP, ..
PUSH_DATA_AT_4 = bytes.fromhex("600456615b0002")  # PUSH1 4, JUMP, PUSH2 0x5b00, ..


def _state() -> PoaiState:
    header = PragueBlockHeader(
        parent_hash=ZERO_HASH32, uncles_hash=EMPTY_UNCLE_HASH, coinbase=b"\x03" * 20,
        state_root=BLANK_ROOT_HASH, transaction_root=BLANK_ROOT_HASH,
        receipt_root=BLANK_ROOT_HASH, bloom=0, difficulty=1, block_number=1,
        gas_limit=30_000_000, gas_used=0, timestamp=1, extra_data=b"", mix_hash=ZERO_HASH32,
        nonce=b"\x00" * 8, base_fee_per_gas=7, withdrawals_root=BLANK_ROOT_HASH,
        blob_gas_used=0, excess_blob_gas=0, parent_beacon_block_root=ZERO_HASH32,
        requests_hash=ZERO_HASH32)
    state: PoaiState = PoaiVM.build_state(AtomicDB(), header, ChainContext(1))
    return state


def _run(cls: type, state: PoaiState, code: bytes) -> PragueComputation:
    msg = Message(gas=100_000, to=b"\x01" * 20, sender=b"\x02" * 20, value=0, data=b"",
                  code=code)
    ctx = state.get_transaction_context_class()(gas_price=1, origin=b"\x02" * 20)
    return cls.apply_computation(state, msg, ctx)  # type: ignore[no-any-return,attr-defined]


@pytest.mark.parametrize("order", [(JUMPDEST_AT_4, PUSH_DATA_AT_4),
                                   (PUSH_DATA_AT_4, JUMPDEST_AT_4)])
def test_same_length_codes_keep_their_own_answers(order: tuple[bytes, bytes]) -> None:
    state = _state()
    assert state.computation_class is PoaiComputation
    for code in order * 2:
        expected = _run(PragueComputation, state, code)
        ours = _run(PoaiComputation, state, code)
        assert ours.is_error == expected.is_error == (code == PUSH_DATA_AT_4)
        assert ours.get_gas_used() == expected.get_gas_used()
