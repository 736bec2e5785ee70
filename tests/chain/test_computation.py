"""Shared jump-destination analysis: the same outcomes as py-evm's fresh one, call after call."""

from __future__ import annotations

import pytest
from eth.db.atomic import AtomicDB
from eth.vm.forks.prague.computation import PragueComputation
from eth.vm.message import Message
from poai.chain.chain import create_genesis
from poai.chain.computation import PoaiComputation
from poai.chain.config import ChainConfig
from poai.chain.vm import PoaiState

VALID_JUMP = bytes.fromhex("600456fe5b00")  # PUSH1 4, JUMP, INVALID, JUMPDEST, STOP
INTO_PUSH_DATA = bytes.fromhex("600456615b5b00")  # JUMP to 4: a 0x5b inside PUSH2's data
BACK_AND_FORTH = bytes.fromhex("6009565b6007565b00" "5b600356")  # jumps 9 -> 3 -> 7, STOP


def _run(cls: type, state: PoaiState, code: bytes) -> PragueComputation:
    msg = Message(gas=100_000, to=b"\x01" * 20, sender=b"\x02" * 20, value=0, data=b"",
                  code=code)
    ctx = state.get_transaction_context_class()(gas_price=1, origin=b"\x02" * 20)
    return cls.apply_computation(state, msg, ctx)  # type: ignore[no-any-return,attr-defined]


@pytest.mark.parametrize("code", [VALID_JUMP, INTO_PUSH_DATA, BACK_AND_FORTH])
def test_outcomes_match_py_evm_on_every_call(config: ChainConfig, code: bytes) -> None:
    state = create_genesis(AtomicDB(), config).get_vm().state
    assert state.computation_class is PoaiComputation
    expected = _run(PragueComputation, state, code)
    for _ in range(3):  # first call fills the shared analysis, later ones reuse it
        ours = _run(PoaiComputation, state, code)
        assert ours.is_error == expected.is_error
        assert ours.get_gas_used() == expected.get_gas_used()
    assert expected.is_error == (code == INTO_PUSH_DATA)


def test_analysis_is_shared_per_code(config: ChainConfig) -> None:
    state = create_genesis(AtomicDB(), config).get_vm().state
    first, second = (_run(PoaiComputation, state, INTO_PUSH_DATA) for _ in range(2))
    assert first.code.invalid_positions is second.code.invalid_positions  # type: ignore[attr-defined]
    assert 4 in second.code.invalid_positions  # type: ignore[attr-defined]
    other = _run(PoaiComputation, state, VALID_JUMP)
    assert other.code.valid_positions is not first.code.valid_positions  # type: ignore[attr-defined]
    assert 4 in other.code.valid_positions  # type: ignore[attr-defined]
