"""Every registered method keeps the public contract (dataworth.testing.check_valuation):
declared constraints, clone, get/set_params, refusal of bad parameters, seeds, n_jobs, budget,
result round trip (issue 17, items 3 and 6)."""

from __future__ import annotations

import pytest

from dataworth.methods import METHODS, get_method
from dataworth.testing.contract import check_valuation, contract_utility


@pytest.fixture(scope="module")
def utility():
    return contract_utility()


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_keeps_the_contract(name, utility) -> None:
    check_valuation(get_method(name), utility)
