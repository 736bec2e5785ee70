"""ethereum/tests GeneralStateTests (Cancun posts) on PoAI's execution machinery.

- PoAI's components on the fork rules the fixtures were filled for (forks.PoaiCancunVM): the
  post-state root, the logs' hash and the transaction's acceptance must be the fixture's.
- PoaiVM (Prague, for which no fixture exists) beside stock py-evm Prague: the same state
  root, logs, receipt bytes and acceptance, except where PoAI corrects py-evm (CORRECTED:
  there PoAI's acceptance must be the fixture's).
"""

from __future__ import annotations

import pytest
from support.ethtests import (
    CORRECTED,
    StateCase,
    check_against_fixture,
    run_state_case,
    state_cases,
)
from support.ethtests_forks import POAI, STOCK

CASES = state_cases()


def _params(cases: list[StateCase]) -> list[object]:
    return [pytest.param(c, id=c.id) for c in cases]


@pytest.mark.parametrize("case", _params(CASES))
def test_poai_on_cancun_rules_matches_the_fixture(case: StateCase) -> None:
    check_against_fixture(case, run_state_case(POAI["Cancun"], case))


@pytest.mark.parametrize("case", _params(CASES))
def test_poai_prague_matches_stock_prague(case: StateCase) -> None:
    poai = run_state_case(POAI["Prague"], case)
    stock = run_state_case(STOCK["Prague"], case)
    if case.path in CORRECTED:
        expected = "expectException" in case.post
        assert (poai.refused is not None) == expected, (
            f"{case.id}: PoAI {'accepted' if expected else 'refused'} a transaction the "
            f"fixture {'refuses' if expected else 'accepts'} ({poai.refused})")
        return
    assert (poai.refused is None) == (stock.refused is None), (
        f"{case.id}: PoAI refused={poai.refused!r}, py-evm refused={stock.refused!r}")
    assert poai.state_root == stock.state_root, f"{case.id}: state roots differ"
    assert poai.logs_hash == stock.logs_hash, f"{case.id}: logs differ"
    assert poai.receipt == stock.receipt, f"{case.id}: receipts differ"
