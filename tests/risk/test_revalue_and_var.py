"""Full revaluation through the kernel, and the VaR methods side by side on accounts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmargin.book import load_demo_book
from crossmargin.margin.engine import MarginEngine
from crossmargin.pricing import black76
from crossmargin.risk.revalue import ScenarioRevaluer
from crossmargin.risk.var import (
    METHODS,
    account_risk,
    fit_t_copula,
    risk_of_returns,
    sensitivities,
    simulate_t_copula,
)
from tests.risk.risk_data import option_book, synthetic_returns

Z99 = 2.3263478740408408  # scipy.stats.norm.ppf(0.99)


@pytest.mark.parametrize("threads", [1, 2])
def test_tiled_revaluation_equals_the_engine_per_scenario(threads: int) -> None:
    book = load_demo_book()
    engine = MarginEngine(book)
    rng = np.random.default_rng(2)
    for account in book.accounts:
        revaluer = ScenarioRevaluer(
            engine.tables,
            _arrays(book, account.id),
            chunk=7,
            threads=threads,
        )
        r = rng.normal(0.0, 0.15, (23, revaluer.n_assets))
        out = revaluer.revalue(r)
        for s in range(r.shape[0]):
            prices = {
                sym: float(revaluer.price_usd[k] * math.exp(r[s, k]))
                for k, sym in enumerate(revaluer.asset_symbols)
            }
            mode = "cross" if account.mode == "portfolio" else None
            ref = engine.margin([account], mode, prices, with_liquidation_prices=False)[0]
            assert out.equity_usd[s] == pytest.approx(ref.equity_usd, rel=1e-12, abs=1e-6)
            assert out.health_usd[s] == pytest.approx(ref.maint.health_usd, rel=1e-12, abs=1e-6)
            assert out.liquidatable[s] == ref.liquidatable


def _arrays(book, account_id):  # type: ignore[no-untyped-def]
    from crossmargin.margin.arrays import compile_accounts, compile_market

    return compile_accounts(compile_market(book), [book.account(account_id)])


def test_vol_shock_equals_a_book_with_scaled_vols() -> None:
    accounts = [
        {
            "id": "d",
            "balances": {"USDC": 50_000.0, "ETH": 5.0},
            "positions": [
                {"market": "ETH-P-2800", "qty": -20.0, "entry_price": 60.0},
                {"market": "ETH-C-3400", "qty": 10.0, "entry_price": 80.0},
            ],
        }
    ]
    book = option_book(accounts)
    revaluer = ScenarioRevaluer.from_book(book, "d")
    r = np.zeros((3, revaluer.n_assets))
    r[:, revaluer.asset_symbols.index("ETH")] = [-0.2, 0.0, 0.1]
    out = revaluer.revalue(r, vol_shock=np.full(3, 0.5))
    data = book.model_dump(mode="json")
    for name in ("ETH-P-2800", "ETH-C-3400"):
        data["markets"][name]["mark_vol"] *= 1.5
    shocked = ScenarioRevaluer.from_book(type(book).model_validate(data), "d").revalue(r)
    assert np.allclose(out.equity_usd, shocked.equity_usd, rtol=1e-12)
    assert np.allclose(out.health_usd, shocked.health_usd, rtol=1e-12)


def test_option_delta_and_gamma_match_black76() -> None:
    # the kernel's finite-difference delta in log return = q * Delta_F * S (Black-76, df = 1)
    accounts = [
        {
            "id": "o",
            "balances": {"USDC": 10_000.0},
            "positions": [{"market": "ETH-P-2800", "qty": -20.0, "entry_price": 60.0}],
        }
    ]
    book = option_book(accounts)
    revaluer = ScenarioRevaluer.from_book(book, "o")
    sens = sensitivities(revaluer, step=1e-4)
    k = revaluer.asset_symbols.index("ETH")
    t_yrs = 30 / 365
    ref = black76(3000.0, 2800.0, 0.7, t_yrs, 1.0, False)
    assert sens.equity_delta[k] == pytest.approx(-20.0 * float(ref.delta) * 3000.0, rel=1e-6)
    # d2V/dr2 = q (Gamma S^2 + Delta S)
    expected_gamma = -20.0 * (float(ref.gamma) * 3000.0**2 + float(ref.delta) * 3000.0)
    assert sens.equity_gamma[k, k] == pytest.approx(expected_gamma, rel=1e-4)


def _linear_book(qty_eth: float = 100.0, usdc: float = 0.0):  # type: ignore[no-untyped-def]
    balances = {"ETH": qty_eth}
    if usdc:
        balances["USDC"] = usdc
    return option_book([{"id": "a", "balances": balances}])


def test_linear_account_matches_closed_forms() -> None:
    data = synthetic_returns(symbols=("ETH",), days=800)
    book = _linear_book()
    risk = account_risk(book, "a", data, methods=["historical", "delta-normal"])
    r = data.column("ETH")
    value = 100.0 * 3000.0
    # historical: the k-th worst return revalued exactly, k = ceil(800 * 0.01) = 8
    worst = np.sort(r)[7]
    hs = risk.figure("historical", 1, 0.99)
    assert hs.equity_var_usd == pytest.approx(value * (1.0 - math.exp(worst)), rel=1e-12)
    # delta-normal: z * sigma * delta, sigma the Ledoit-Wolf variance of one column (= the
    # ddof-0 sample variance: a single column has nothing to shrink toward)
    dn = risk.figure("delta-normal", 1, 0.99)
    assert dn.equity_var_usd == pytest.approx(Z99 * r.std() * value, rel=1e-6)
    dn10 = risk.figure("delta-normal", 10, 0.99)
    assert dn10.equity_var_usd == pytest.approx(math.sqrt(10) * dn.equity_var_usd, rel=1e-9)
    # maint health of ETH at weight 0.9 moves by 0.9 x the value
    assert dn.health_var_usd == pytest.approx(0.9 * dn.equity_var_usd, rel=1e-6)


def test_all_methods_side_by_side_finite_and_ordered() -> None:
    data = synthetic_returns()
    accounts = [
        {
            "id": "mix",
            "balances": {"USDC": -100_000.0, "ETH": 60.0, "BTC": 1.5},
            "positions": [
                {"market": "ETH-P-2800", "qty": -40.0, "entry_price": 50.0},
                {"market": "BTC-PERP", "qty": 1.0, "entry_price": 90_000.0},
            ],
        }
    ]
    book = option_book(accounts)
    risk = account_risk(book, "mix", data, n_paths=5_000)
    assert len(risk.figures) == len(METHODS) * 2 * 2
    for f in risk.figures:
        values = (f.equity_var_usd, f.equity_es_usd, f.health_var_usd, f.health_es_usd)
        assert all(math.isfinite(v) for v in values)
        assert f.equity_es_usd >= f.equity_var_usd and f.health_es_usd >= f.health_var_usd
    for m in METHODS:
        for h in (1, 10):
            assert risk.figure(m, h, 0.99).equity_var_usd >= risk.figure(m, h, 0.975).equity_var_usd
        assert risk.figure(m, 10, 0.99).equity_var_usd > risk.figure(m, 1, 0.99).equity_var_usd
    # the simulation methods agree within a factor on the same data
    hs = risk.figure("historical", 1, 0.99).equity_var_usd
    mc = risk.figure("monte-carlo", 1, 0.99).equity_var_usd
    assert 0.7 < mc / hs < 1.4
    assert risk.to_dict()["figures"][0]["method"] == "historical"


def test_monte_carlo_is_reproducible_and_keeps_the_margins() -> None:
    data = synthetic_returns(days=500)
    r = data.values
    copula = fit_t_copula(r)
    a = simulate_t_copula(copula, 20_000, seed=1)
    b = simulate_t_copula(copula, 20_000, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, simulate_t_copula(copula, 20_000, seed=2))
    for i in range(r.shape[1]):  # empirical margins: the same quantiles as the history
        assert np.quantile(a[:, i], 0.01) == pytest.approx(np.quantile(r[:, i], 0.01), rel=0.02)
    # the dependence survives: rank correlation close to the history's
    from scipy import stats

    rho_hist = stats.spearmanr(r[:, 0], r[:, 1]).statistic
    rho_sim = stats.spearmanr(a[:, 0], a[:, 1]).statistic
    assert rho_sim == pytest.approx(rho_hist, abs=0.08)
    assert 2.0 < copula.nu <= 100.0


@settings(max_examples=8, deadline=None)
@given(st.floats(0.0, 5e6))
def test_adding_cash_collateral_never_lowers_health_nor_moves_equity_var(cash: float) -> None:
    data = synthetic_returns(days=300)
    accounts_before = [
        {
            "id": "a",
            "balances": {"ETH": 50.0, "USDC": -40_000.0},
            "positions": [{"market": "ETH-P-2800", "qty": -30.0, "entry_price": 40.0}],
        }
    ]
    accounts_after = [
        {
            "id": "a",
            "balances": {"ETH": 50.0, "USDC": -40_000.0 + cash},
            "positions": [{"market": "ETH-P-2800", "qty": -30.0, "entry_price": 40.0}],
        }
    ]
    methods = ["historical", "delta-normal"]
    before = account_risk(option_book(accounts_before), "a", data, methods=methods)
    after = account_risk(option_book(accounts_after), "a", data, methods=methods)
    assert after.health_usd >= before.health_usd - 1e-9
    for fb, fa in zip(before.figures, after.figures, strict=True):
        assert fa.equity_var_usd == pytest.approx(fb.equity_var_usd, rel=1e-9, abs=1e-6)
        # health at the VaR quantile (health - health VaR) never falls
        assert after.health_usd - fa.health_var_usd >= before.health_usd - fb.health_var_usd - 1e-6


def test_risk_of_returns_checks_its_inputs() -> None:
    from crossmargin.errors import InputError

    book = _linear_book()
    revaluer = ScenarioRevaluer.from_book(book, "a")
    r = np.zeros((200, revaluer.n_assets))
    with pytest.raises(InputError, match="method"):
        risk_of_returns(revaluer, r, methods=["magic"])
    with pytest.raises(InputError, match="horizon"):
        risk_of_returns(revaluer, r, horizons_days=[0])
    with pytest.raises(InputError, match="returns"):
        risk_of_returns(revaluer, np.zeros((200, revaluer.n_assets + 1)))


def test_filtered_scenarios_follow_the_riskmetrics_recursion() -> None:
    # an independent loop of RiskMetrics (1996) eq. 5.3: s2_t = 0.94 s2_{t-1} + 0.06 r_{t-1}^2,
    # seeded with the mean square of the first 20 returns
    from crossmargin.risk.var import filtered_scenarios

    r = synthetic_returns(days=150).values
    out = filtered_scenarios(r)
    for i in range(r.shape[1]):
        s2 = [float(np.mean(r[:20, i] ** 2))]
        for x in r[:, i]:
            s2.append(0.94 * s2[-1] + 0.06 * x * x)
        expected = r[:, i] / np.sqrt(s2[:-1]) * math.sqrt(s2[-1])
        assert np.allclose(out[:, i], expected, rtol=1e-10)


def test_t_copula_fit_recovers_a_known_copula() -> None:
    # draws from scipy's multivariate t (nu = 4, rho = 0.6): the t copula with those
    # parameters; margins made non-normal on purpose (the copula fit is rank-based)
    from scipy import stats

    rho = 0.6
    x = stats.multivariate_t(loc=[0, 0], shape=[[1, rho], [rho, 1]], df=4).rvs(
        size=3000, random_state=np.random.default_rng(8)
    )
    margins = np.column_stack([0.03 * x[:, 0], np.expm1(0.05 * x[:, 1])])
    copula = fit_t_copula(margins)
    assert copula.nu in (3.0, 4.0, 5.0)
    assert copula.correlation[0, 1] == pytest.approx(rho, abs=0.05)


def test_cornish_fisher_tracks_full_revaluation_of_a_short_put() -> None:
    # normal returns, a short put: the delta-gamma Cornish-Fisher VaR against historical
    # simulation with full Black-76 revaluation on 4,000 normal days
    import pandas as pd

    from crossmargin.risk.returns import returns_from_frames

    rng = np.random.default_rng(21)
    days = 4000
    index = pd.date_range("2010-01-01", periods=days + 1, freq="D", tz="UTC")
    close = 3000.0 * np.exp(np.concatenate([[0.0], np.cumsum(rng.normal(0, 0.03, days))]))
    data = returns_from_frames({"ETH": pd.Series(close, index)})
    book = option_book(
        [
            {
                "id": "p",
                "balances": {"USDC": 200_000.0},
                "positions": [{"market": "ETH-P-2800", "qty": -100.0, "entry_price": 60.0}],
            }
        ]
    )
    risk = account_risk(book, "p", data, methods=["historical", "delta-normal", "cornish-fisher"])
    hs = risk.figure("historical", 1, 0.99).equity_var_usd
    cf = risk.figure("cornish-fisher", 1, 0.99).equity_var_usd
    dn = risk.figure("delta-normal", 1, 0.99).equity_var_usd
    assert cf == pytest.approx(hs, rel=0.08)
    assert abs(cf - hs) < abs(dn - hs)  # the gamma term matters for a short option
