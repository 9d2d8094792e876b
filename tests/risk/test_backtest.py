"""Kupiec and Christoffersen tests against a textbook table and scipy's G-tests; rolling
backtests on the real Bitstamp daily data (skipped without ../shared)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from crossmargin.errors import InputError
from crossmargin.risk.backtest import (
    christoffersen_independence,
    conditional_coverage,
    evaluate_forecasts,
    kupiec_pof,
    transition_counts,
)
from tests.helpers import SHARED, needs_shared

CRITICAL_95 = 3.841458820694124  # chi-square(1) 95 % quantile (scipy.stats.chi2.ppf(0.95, 1))


def test_critical_value() -> None:
    assert stats.chi2.ppf(0.95, 1) == pytest.approx(CRITICAL_95, rel=1e-12)


# Jorion, "Value at Risk" (3rd ed., 2007), table 6-3 "Model backtesting, 95 percent nonrejection
# test confidence regions" (from Kupiec 1995): exceptions N not rejected, for T days.
# (p, T) -> (lowest, highest) N kept. Jorion prints "N < 7" for p = 1 %, T = 252: no lower
# bound, although the LR of N = 0 is 5.07 > 3.84; we check only the upper bound there.
JORION_TABLE_6_3 = {
    (0.01, 252): (None, 6),
    (0.01, 510): (2, 10),
    (0.01, 1000): (5, 16),
    (0.025, 252): (3, 11),
    (0.025, 510): (7, 20),
    (0.025, 1000): (16, 35),
    (0.05, 252): (7, 19),
    (0.05, 510): (17, 35),
    (0.05, 1000): (38, 64),
    (0.075, 252): (12, 27),
    (0.075, 510): (28, 50),
    (0.075, 1000): (60, 91),
    (0.10, 252): (17, 35),
    (0.10, 510): (39, 64),
    (0.10, 1000): (82, 119),
}


@pytest.mark.parametrize(("key", "region"), list(JORION_TABLE_6_3.items()))
def test_kupiec_reproduces_jorion_nonrejection_regions(
    key: tuple[float, int], region: tuple[int | None, int]
) -> None:
    p, days = key
    kept = [x for x in range(days + 1) if kupiec_pof(x, days, p).statistic < CRITICAL_95]
    low, high = region
    assert max(kept) == high
    if low is not None:
        assert min(kept) == low
    assert kept == list(range(min(kept), max(kept) + 1))  # one interval


@pytest.mark.parametrize(
    ("x", "n", "p"),
    [(0, 250, 0.01), (3, 250, 0.01), (12, 250, 0.01), (40, 1000, 0.025), (1000, 1000, 0.05)],
)
def test_kupiec_equals_scipy_g_test(x: int, n: int, p: float) -> None:
    # Kupiec's LR is the G-test of goodness of fit of (n - x, x) to (n(1-p), np)
    result = kupiec_pof(x, n, p)
    g, pvalue = stats.power_divergence([n - x, x], [n * (1 - p), n * p], lambda_="log-likelihood")
    assert result.statistic == pytest.approx(g, rel=1e-10, abs=1e-12)
    assert result.p_value == pytest.approx(stats.chi2.sf(g, 1), rel=1e-9)
    assert result.df == 1 and 0.0 <= result.p_value <= 1.0
    del pvalue  # scipy's own df is 1 as well here (two cells)


def test_kupiec_hand_computed() -> None:
    # 10 exceptions in 250 days at 1 %: LR = -2 ln[0.99^240 0.01^10] + 2 ln[0.96^240 0.04^10]
    lr = -2 * (240 * np.log(0.99) + 10 * np.log(0.01)) + 2 * (
        240 * np.log(0.96) + 10 * np.log(0.04)
    )
    assert kupiec_pof(10, 250, 0.01).statistic == pytest.approx(lr, rel=1e-12)
    # 240 ln .99 + 10 ln .01 = -48.4638; 240 ln .96 + 10 ln .04 = -41.9862: LR = 12.955 > 3.84
    assert lr == pytest.approx(12.9555, abs=1e-3)
    assert kupiec_pof(10, 250, 0.01).p_value < 0.001


def test_christoffersen_equals_scipy_g_test_of_the_transition_table() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        hits = rng.random(500) < rng.uniform(0.02, 0.2)
        hits[100:104] = True  # some clustering
        n00, n01, n10, n11 = transition_counts(hits)
        table = np.array([[n00, n01], [n10, n11]])
        g, _, _, _ = stats.chi2_contingency(table, correction=False, lambda_="log-likelihood")
        assert christoffersen_independence(hits).statistic == pytest.approx(g, rel=1e-9)


def test_christoffersen_hand_counts_and_edge_cases() -> None:
    hits = np.array([0, 0, 1, 1, 0, 0, 0, 1, 0, 0], dtype=bool)
    assert transition_counts(hits) == (4, 2, 2, 1)
    none = christoffersen_independence(np.zeros(300, dtype=bool))
    assert none.statistic == 0.0 and none.p_value == 1.0
    clustered = np.zeros(300, dtype=bool)
    clustered[100:106] = True
    assert christoffersen_independence(clustered).p_value < 0.01
    cc = conditional_coverage(clustered, 0.02)
    assert cc.df == 2 and cc.p_value < 0.05


def test_bad_input() -> None:
    with pytest.raises(InputError, match="exceptions"):
        kupiec_pof(11, 10, 0.01)
    with pytest.raises(InputError, match="coverage"):
        kupiec_pof(1, 10, 1.5)
    with pytest.raises(InputError, match="hits"):
        christoffersen_independence(np.array([True]))
    with pytest.raises(InputError, match="var_usd"):
        evaluate_forecasts("x", np.ones(5), np.full(5, np.nan), 0.99, 250)


def test_well_specified_forecasts_pass_and_bad_ones_fail() -> None:
    rng = np.random.default_rng(11)
    losses = rng.standard_normal(2000)
    good = evaluate_forecasts("n", losses, np.full(2000, 2.3263), 0.99, 250)
    assert good.kupiec.p_value > 0.05 and good.exceptions == int((losses > 2.3263).sum())
    bad = evaluate_forecasts("n", losses, np.full(2000, 1.6449), 0.99, 250)  # a 95 % quantile
    assert bad.kupiec.p_value < 1e-6


@needs_shared
def test_rolling_backtests_on_bitstamp_daily() -> None:
    from crossmargin.book.schema import Book
    from crossmargin.risk.backtest import backtest_account
    from crossmargin.risk.returns import load_returns
    from crossmargin.risk.revalue import ScenarioRevaluer
    from crossmargin.risk.var import account_returns
    from tests.helpers import asset

    data = load_returns(SHARED / "bitstamp_btc_eth_ltc_usd_daily.csv")
    assert data.symbols == ("BTC", "ETH", "LTC")
    # the file has a 13-day hole (2018-12 .. 2019-01 region): the spanning returns are dropped
    assert data.gaps_dropped == 3 and data.n_obs == 786
    book = Book.model_validate(
        {
            "assets": {
                "USDC": asset(1.0),
                "BTC": asset(8000.0, 0.8, 0.9, 1.2, 1.1),
                "ETH": asset(170.0, 0.8, 0.9, 1.2, 1.1),
                "LTC": asset(55.0, 0.7, 0.8, 1.3, 1.2),
            },
            "markets": {},
            "accounts": [
                {"id": "hodl", "balances": {"BTC": 10, "ETH": 300, "LTC": 1000, "USDC": -20_000}}
            ],
        }
    )
    revaluer = ScenarioRevaluer.from_book(book, "hodl")
    returns, _ = account_returns(revaluer, data)
    results = backtest_account(revaluer, returns, window=250)
    by = {(r.method, r.confidence): r for r in results}
    assert {r.days for r in results} == {786 - 250}
    for r in results:
        assert 0 <= r.exceptions <= r.days
        for t in (r.kupiec, r.independence, r.conditional):
            assert np.isfinite(t.statistic) and 0.0 <= t.p_value <= 1.0
    # crypto's fat tails: the normal model breaks more often at 99 % than historical simulation
    assert by[("delta-normal", 0.99)].exceptions > by[("historical", 0.99)].exceptions
    # historical simulation is not rejected at 99 % on these 536 days (expected 5.4); the
    # normal model is (Kupiec p < 5 %): its 99 % quantile is too thin for crypto returns
    assert by[("historical", 0.99)].kupiec.p_value > 0.05
    assert by[("delta-normal", 0.99)].kupiec.p_value < 0.05
