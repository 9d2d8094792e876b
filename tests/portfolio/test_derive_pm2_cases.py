"""Acceptance: Derive's (ex-Lyra) 112 PM2 reference cases, reproduced figure by figure.

The cases are derivexyz/v2-core ``test/risk-managers/unit-tests/PMRM_2/portfolio_cases/*.json``
(commit 7736900d), read from ``../shared/reference/derive_pm2/`` beside the project; the tests
skip with a reason when that folder is absent (a fresh clone). Each case's ``Result`` holds
Derive's own figures: the final ``MM`` and ``IM``, the PnL of every scenario, the forward
(basis) contingency, the vol-shock multipliers, the static discount factors, the option
mark-to-market per expiry and every contingency.

Tolerance: ``|ours - ref| <= 1e-6 * max(|ref|, 1 USD)``, i.e. 1e-6 relative, and an absolute
floor of 1e-6 USD for figures below 1 USD in magnitude (zero-loss scenarios, for instance).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from crossmargin.portfolio import (
    PortfolioMarginResult,
    compare_with_reference,
    derive_case_to_portfolio,
    load_derive_case,
    portfolio_margin,
)
from crossmargin.portfolio.derive import close_to_reference
from tests.helpers import SHARED

DERIVE_CASES = SHARED.parent / "reference" / "derive_pm2"
CASE_FILES = sorted(DERIVE_CASES.glob("*.json")) if DERIVE_CASES.is_dir() else []
needs_derive_cases = pytest.mark.skipif(
    not CASE_FILES,
    reason=f"{DERIVE_CASES} is absent (a fresh clone has no ../shared reference folder)",
)

MIN_PASS_RATE = 0.95

#: test_67 is skipped in Derive's own Solidity harness ("Invalid param setup so skipping", v2-core
#: TestPMRM_2_PortfolioCasesNEW.t.sol): a skew scenario with a spot move and dampening 5. Our
#: MM and IM match (the worst scenario is a regular one); that scenario's PnL does not: Derive's
#: contract keeps the forward in skew scenarios (PMRMLib_2._getExpirySkewedShockedMTM), and the
#: reference's Python model does something else that no reading of the docs reproduces.
KNOWN_SCENARIO_MISMATCHES = {"test_67_misc_skew_scenario_with_spot_move"}


def _run(path: Path) -> tuple[Mapping[str, Any], PortfolioMarginResult]:
    case = load_derive_case(path)
    spec, profile = derive_case_to_portfolio(case)
    return case, portfolio_margin(spec.to_portfolio(), profile)


@pytest.fixture(scope="module")
def results() -> dict[str, tuple[Mapping[str, Any], PortfolioMarginResult]]:
    return {path.stem: _run(path) for path in CASE_FILES}


@needs_derive_cases
def test_all_112_cases_are_present() -> None:
    assert len(CASE_FILES) == 112


@needs_derive_cases
def test_pass_rate_of_every_figure(
    results: dict[str, tuple[Mapping[str, Any], PortfolioMarginResult]],
) -> None:
    """>= 95 % of the cases match MM, IM, every scenario PnL, basis contingency and MtMs."""
    failures = {}
    for name, (case, result) in results.items():
        problems = compare_with_reference(result, case)
        if problems:
            failures[name] = problems
    passed = len(results) - len(failures)
    print(f"\nDerive PM2 cases: {passed}/{len(results)} reproduce every checked figure")
    for name, problems in sorted(failures.items()):
        print(f"  FAIL {name}: " + "; ".join(problems[:3]))
    assert passed / len(results) >= MIN_PASS_RATE
    assert set(failures) <= KNOWN_SCENARIO_MISMATCHES, sorted(failures)


@needs_derive_cases
def test_mm_and_im_of_every_case(
    results: dict[str, tuple[Mapping[str, Any], PortfolioMarginResult]],
) -> None:
    bad = [
        f"{name}: MM {r.maint.margin_usd!r} vs {case['Result']['MM']!r}, "
        f"IM {r.initial.margin_usd!r} vs {case['Result']['IM']!r}"
        for name, (case, r) in results.items()
        if not (
            close_to_reference(r.maint.margin_usd, case["Result"]["MM"])
            and close_to_reference(r.initial.margin_usd, case["Result"]["IM"])
        )
    ]
    assert not bad, "\n".join(bad)


def _option_expiry_index(case: Mapping[str, Any]) -> list[int]:
    """For each option of the case, the index of its expiry in first-appearance order."""
    order: list[int] = []
    for option in case["Scenario"]["Options"]:
        if option["Expiry"] not in order:
            order.append(option["Expiry"])
    return [order.index(option["Expiry"]) for option in case["Scenario"]["Options"]]


@needs_derive_cases
def test_intermediate_figures(
    results: dict[str, tuple[Mapping[str, Any], PortfolioMarginResult]],
) -> None:
    """Each step on its own: vol multipliers, static discounts, expiry MtM, contingencies."""
    bad: list[str] = []
    for name, (case, result) in results.items():
        ref = case["Result"]
        risk = result.underlyings[0]

        def check(what: str, ours: float, theirs: float, name: str = name) -> None:
            if not close_to_reference(ours, theirs):
                bad.append(f"{name} {what}: ours {ours!r} vs reference {theirs!r}")

        expiry_of_option = _option_expiry_index(case)
        for j, e in enumerate(expiry_of_option):
            check(f"VolShockUpMultiplier[{j}]", risk.vol_up_mult[e], ref["VolShockUpMultiplier"][j])
            check(
                f"VolShockDownMultiplier[{j}]",
                risk.vol_down_mult[e],
                ref["VolShockDownMultiplier"][j],
            )
        for e, mtm in enumerate(ref["OptionMTMPerExpiry"]):
            check(f"OptionMTMPerExpiry[{e}]", risk.expiry_mtm_usd[e], mtm)
        for e, (pos, neg) in enumerate(ref["discount_factors"]):
            check(f"discount_factors[{e}][0]", risk.static_discount_pos[e], pos)
            check(f"discount_factors[{e}][1]", risk.static_discount_neg[e], neg)
        mm, im = result.maint.contingencies, result.initial.contingencies
        check("MMPerpCont", -mm.perp_usd, ref["MMPerpCont"])
        check("IMPerpCont", -(im.perp_usd - mm.perp_usd), ref["IMPerpCont"])
        check("MMOptionCont", -mm.option_usd, ref["MMOptionCont"])
        check("IMOptionCont", -(im.option_usd - mm.option_usd), ref["IMOptionCont"])
        check("MMBaseCont", -mm.collateral_usd, ref["MMBaseCont"])
        check("IMBaseCont", -(im.collateral_usd - mm.collateral_usd), ref["IMBaseCont"])
        check("OracleCont", -im.confidence_usd, ref["OracleCont"])
        check("CollateralMTM", result.collateral_mtm_usd, ref["CollateralMTM"])
        check("IMLossFactor", result.initial.loss_factor, ref["IMLossFactor"])
    assert not bad, "\n".join(bad[:20])


@needs_derive_cases
def test_worst_scenario_is_reported(
    results: dict[str, tuple[Mapping[str, Any], PortfolioMarginResult]],
) -> None:
    """The worst PnL is the minimum of the basis contingency and every scenario's PnL."""
    for _, result in results.values():
        risk = result.underlyings[0]
        assert risk.worst_pnl_usd == min(risk.basis_contingency_usd, *risk.scenario_pnl_usd)
        if risk.worst_scenario is not None:
            assert risk.worst_pnl_usd == risk.scenario_pnl_usd[risk.worst_scenario]
        assert risk.loss_usd >= 0.0
