"""The official cases py-evm 0.12.1b1 fails and PoAI corrects (poai.chain.corrections): PoAI
follows every post of each, stock py-evm misses at least one (when a py-evm upgrade fixes one,
this says so, and the correction can go)."""

from __future__ import annotations

import pytest
from eth.vm.forks.cancun import CancunVM
from support.ethtests import (
    CORRECTED,
    NO_BLOCK_FORM,
    StateCase,
    block_test,
    check_against_fixture,
    load,
    run_block_test,
    run_state_case,
    state_cases,
)
from support.ethtests_forks import POAI


def _cases(path: str) -> list[StateCase]:
    return [c for c in state_cases(everything=True) if c.path == path]


def _fails(check: object, *args: object) -> bool:
    try:
        check(*args)  # type: ignore[operator]
    except AssertionError:
        return True
    except Exception:  # noqa: BLE001  # py-evm failing its own way counts as failing
        return True
    return False


def _stock_fails(case: StateCase) -> bool:
    outcome = run_state_case(CancunVM, case)
    # A VM error out of the state is no refusal a block import handles (EIP-3860's OutOfGas).
    return outcome.vm_error or _fails(check_against_fixture, case, outcome)


@pytest.mark.parametrize("path", sorted(CORRECTED), ids=lambda p: p.rsplit("/", 1)[-1])
def test_poai_follows_the_official_case_that_py_evm_fails(path: str) -> None:
    cases = _cases(path)
    assert cases, f"{path} is not in the data"
    for case in cases:
        check_against_fixture(case, run_state_case(POAI["Cancun"], case))
    stock_failures = [c.id for c in cases if _stock_fails(c)]
    assert stock_failures, f"py-evm now passes {path} ({CORRECTED[path]}): drop the correction?"


@pytest.mark.parametrize("path", sorted(set(CORRECTED) - NO_BLOCK_FORM),
                         ids=lambda p: p.rsplit("/", 1)[-1])
def test_poai_follows_the_block_form_of_the_case(path: str) -> None:
    # (Stock py-evm refuses some of these blocks too, for the wrong reason: its execution of
    # the invalid transaction gives another state root than the header's.)
    block_path = "BlockchainTests/" + path
    tests = load("BlockchainTests").get(block_path)
    assert tests, f"{block_path} is not in the data"
    for name in sorted(tests):
        run_block_test(POAI["Cancun"], block_test(block_path, name))

