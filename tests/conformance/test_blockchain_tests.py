"""ethereum/tests BlockchainTests (ValidBlocks, InvalidBlocks, and the corrected cases' block
form) imported by a chain of PoAI's components on Cancun rules (ethtests_forks.PoaiCancunVM):
multi-transaction blocks, transaction and receipt tries, blooms, withdrawals, blob gas,
invalid-block rejection, side chains."""

from __future__ import annotations

import pytest
from support.ethtests import block_test, block_tests, run_block_test
from support.ethtests_forks import POAI

TESTS = block_tests()


@pytest.mark.parametrize(("path", "name"), [
    pytest.param(p, n, id=f"{p.removeprefix('BlockchainTests/')}::{n}") for p, n in TESTS])
def test_poai_imports_the_fixture_chain(path: str, name: str) -> None:
    run_block_test(POAI["Cancun"], block_test(path, name))
