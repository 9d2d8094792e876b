"""First passage: the closed form against the textbook formula, brute-force fine-step
simulation, the Broadie-Glasserman-Kou correction against discrete monitoring, and the
bridged Monte Carlo through the kernel against the closed form on a one-factor account."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from crossmargin.book.io import book_from_data
from crossmargin.errors import InputError
from crossmargin.margin.arrays import compile_accounts, compile_market
from crossmargin.predict.baseline import (
    MarketModel,
    account_baseline,
    default_market_model,
    group_barriers,
)
from crossmargin.predict.firstpassage import (
    BGK_BETA,
    barrier_hit_probability,
    bridge_cross_probability,
    hit_probability,
    hull_down_barrier_probability,
)
from crossmargin.predict.montecarlo import portfolio_first_passage


def _simulate_min(
    spot: float, sigma: float, mu: float, horizon: float, steps: int, paths: int, seed: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Exact GBM log prices on a grid: (log path [paths, steps+1], ...)."""
    rng = np.random.default_rng(seed)
    dt = horizon / steps
    nu = mu - 0.5 * sigma * sigma
    z = rng.standard_normal((paths, steps))
    x = np.concatenate(
        [np.zeros((paths, 1)), np.cumsum(nu * dt + sigma * math.sqrt(dt) * z, axis=1)], axis=1
    )
    return math.log(spot) + x, z, dt


@pytest.mark.parametrize(
    ("spot", "barrier", "sigma", "horizon", "mu"),
    [
        (100.0, 90.0, 0.04, 1.0, 0.0),
        (100.0, 90.0, 0.04, 5.0, 0.01),
        (100.0, 80.0, 0.30, 2.0, -0.05),
        (100.0, 99.9, 0.01, 0.1, 0.0),
        (3040.0, 2506.0, 0.04, 30.0, 0.002),
    ],
)
def test_closed_form_is_hulls_formula(
    spot: float, barrier: float, sigma: float, horizon: float, mu: float
) -> None:
    """Hull's down barrier: N((ln(b/S) - nu T)/(s sqrt T)) + (b/S)^(2 nu/s^2) N((ln(b/S) + nu
    T)/(s sqrt T)), nu = mu - s^2/2 (Shreve II, 7.2.2)."""
    ours = float(barrier_hit_probability(spot, barrier, sigma, horizon, mu))
    assert ours == pytest.approx(
        hull_down_barrier_probability(spot, barrier, sigma, horizon, mu), rel=1e-12, abs=1e-15
    )


def test_up_barrier_is_the_mirror_image() -> None:
    """P(max S >= b) for S is P(min S' <= 1/b) for S' = 1/S, a GBM with drift -mu + sigma^2."""
    s, b, sigma, t, mu = 100.0, 112.0, 0.05, 3.0, 0.004
    up = float(barrier_hit_probability(s, b, sigma, t, mu))
    mirrored = hull_down_barrier_probability(1 / s, 1 / b, sigma, t, -mu + sigma * sigma)
    assert up == pytest.approx(mirrored, rel=1e-12)


def test_limits_and_bad_input() -> None:
    assert hit_probability(0.0, 0.04, 1.0) == 1.0  # at the barrier
    assert hit_probability(-0.1, 0.04, 1.0) == 1.0  # through it
    assert hit_probability(np.inf, 0.04, 1.0) == 0.0  # no barrier
    assert float(barrier_hit_probability(100.0, np.nan, 0.04, 1.0)) == 0.0
    assert np.isnan(hit_probability(np.nan, 0.04, 1.0))
    # zero vol: hit iff the drift gets there
    assert hit_probability(0.1, 0.0, 1.0, 0.2) == 1.0
    assert hit_probability(0.1, 0.0, 1.0, 0.05) == 0.0
    # far barrier with a strong drift toward it: no inf * 0
    p = hit_probability(40.0, 0.05, 100.0, 0.5)
    assert p == pytest.approx(1.0)
    # monotone in distance, vol and horizon
    d = np.linspace(0.01, 0.5, 50)
    assert np.all(np.diff(hit_probability(d, 0.04, 1.0)) < 0)
    assert np.all(np.diff(hit_probability(0.1, np.linspace(0.01, 0.2, 50), 1.0)) > 0)
    assert np.all(np.diff(hit_probability(0.1, 0.04, np.linspace(0.1, 10, 50))) > 0)
    with pytest.raises(InputError, match="sigma_daily"):
        hit_probability(0.1, -0.04, 1.0)
    with pytest.raises(InputError, match="monitor_days"):
        hit_probability(0.1, 0.04, 1.0, monitor_days=-1.0)


def test_closed_form_against_fine_step_simulation_with_bridge() -> None:
    """Fine steps plus the exact bridge crossing probability between them: an unbiased estimate
    of the continuous first passage; the raw discrete count is below it (missed dips)."""
    spot, barrier, sigma, horizon, mu = 100.0, 92.0, 0.04, 2.0, 0.01
    paths, steps = 20_000, 200
    logs, _z, dt = _simulate_min(spot, sigma, mu, horizon, steps, paths, seed=3)
    x = logs - math.log(barrier)
    q = bridge_cross_probability(x[:, :-1], x[:, 1:], sigma, dt)
    per_path = 1.0 - np.prod(1.0 - q, axis=1)
    estimate, se = per_path.mean(), per_path.std() / math.sqrt(paths)
    exact = hull_down_barrier_probability(spot, barrier, sigma, horizon, mu)
    assert abs(estimate - exact) < 4 * se + 1e-3, (estimate, exact, se)
    discrete = (x.min(axis=1) <= 0).mean()
    assert discrete < exact  # discrete monitoring misses dips between the steps


def test_bgk_correction_matches_discrete_monitoring() -> None:
    """Daily checks over 10 days: the discrete frequency matches the closed form with the
    barrier shifted by exp(-0.5826 sigma sqrt(dt)), and not the unshifted one."""
    spot, barrier, sigma, horizon, mu = 100.0, 90.0, 0.03, 10.0, 0.0
    steps, paths = 10, 200_000
    logs, _z, dt = _simulate_min(spot, sigma, mu, horizon, steps, paths, seed=11)
    discrete = float((logs.min(axis=1) <= math.log(barrier)).mean())
    se = math.sqrt(discrete * (1 - discrete) / paths)
    continuous = float(barrier_hit_probability(spot, barrier, sigma, horizon, mu))
    corrected = float(barrier_hit_probability(spot, barrier, sigma, horizon, mu, monitor_days=dt))
    shifted = hull_down_barrier_probability(
        spot, barrier * math.exp(-BGK_BETA * sigma * math.sqrt(dt)), sigma, horizon, mu
    )
    assert corrected == pytest.approx(shifted, rel=1e-12)
    assert abs(discrete - corrected) < 4 * se + 0.003, (discrete, corrected)
    assert continuous - discrete > 10 * se  # the uncorrected form is visibly off


def test_bridge_probability_formula() -> None:
    """exp(-2 x0 x1 / (s^2 dt)); 1 at or below the barrier; 0 with no volatility."""
    assert bridge_cross_probability(0.1, 0.2, 0.1, 1.0) == pytest.approx(math.exp(-4.0))
    assert bridge_cross_probability(0.0, 0.2, 0.1, 1.0) == 1.0
    assert bridge_cross_probability(0.1, -0.2, 0.1, 1.0) == 1.0
    assert bridge_cross_probability(0.1, 0.2, 0.0, 1.0) == 0.0


# --- accounts: the kernel's barrier and the bridged Monte Carlo on a one-factor book ---


def _one_factor_book(collateral: float = 30_000.0, qty: float = 100.0) -> Any:
    """USDC collateral and a long ETH perp: health = C + q (S - e) - f q S, linear in S."""
    return book_from_data(
        {
            "assets": {
                "USDC": {
                    "price": 1.0,
                    "init_asset_weight": 1,
                    "maint_asset_weight": 1,
                    "init_liab_weight": 1,
                    "maint_liab_weight": 1,
                },
                "ETH": {
                    "price": 3000.0,
                    "init_asset_weight": 0.8,
                    "maint_asset_weight": 0.9,
                    "init_liab_weight": 1.2,
                    "maint_liab_weight": 1.1,
                },
            },
            "markets": {
                "ETH-PERP": {
                    "kind": "perp",
                    "underlying": "ETH",
                    "settle_asset": "USDC",
                    "initial_margin_frac": 0.1,
                    "maint_margin_frac": 0.05,
                    "init_pnl_weight": 1.0,
                    "maint_pnl_weight": 1.0,
                },
            },
            "accounts": [
                {
                    "id": "long",
                    "balances": {"USDC": collateral},
                    "positions": [{"market": "ETH-PERP", "qty": qty, "entry_price": 3000.0}],
                },
                {
                    "id": "short",
                    "balances": {"USDC": collateral},
                    "positions": [{"market": "ETH-PERP", "qty": -qty, "entry_price": 3000.0}],
                },
                {"id": "cash", "balances": {"USDC": 1000.0}},
            ],
        }
    )


def test_account_barrier_is_the_linear_liquidation_price() -> None:
    """Long: b = (q e - C) / (q (1 - f)); short: b = (C + q e) / (q (1 + f)); both methods."""
    book = _one_factor_book()
    tables = compile_market(book)
    arrays = compile_accounts(tables, book.accounts)
    market = default_market_model(tables)
    q, e, c, f = 100.0, 3000.0, 30_000.0, 0.05
    long_b, short_b = (q * e - c) / (q * (1 - f)), (c + q * e) / (q * (1 + f))
    for method in ("exact", "linear"):
        base = account_baseline(tables, arrays, market, 1.0, method=method)
        assert base.barrier_usd[0] == pytest.approx(long_b, rel=1e-9)
        assert base.barrier_usd[1] == pytest.approx(short_b, rel=1e-9)
        assert base.direction.tolist() == [-1, 1, 0]
        assert base.probability[2] == 0.0  # cash only
        sigma = market.sigma_daily[tables.asset_id("ETH")]
        expected = hull_down_barrier_probability(3000.0, long_b, sigma, 1.0)
        assert base.probability[0] == pytest.approx(expected, rel=1e-7)
    health, below, _above = group_barriers(tables, arrays)
    assert health[0] > 0 and np.isnan(below[2]).all()


def test_already_liquidatable_account_has_probability_one() -> None:
    book = _one_factor_book(collateral=1_000.0)  # 100 ETH perp on 1,000 USDC: below maint
    tables = compile_market(book)
    base = account_baseline(
        tables, compile_accounts(tables, book.accounts), default_market_model(tables), 1 / 24
    )
    assert base.probability[0] == 1.0 and base.distance_sd[0] == 0.0 and base.asset[0] == -1


def test_bridged_monte_carlo_through_the_kernel_matches_the_closed_form() -> None:
    """One-factor GBM (no jumps): 8 steps with the bridge ~ continuous closed form; without it
    ~ the BGK-corrected discrete probability (and clearly below the continuous one)."""
    book = _one_factor_book()
    tables = compile_market(book)
    arrays = compile_accounts(tables, book.accounts)
    sigma = np.where(np.array(tables.asset_symbols) == "ETH", 0.05, 0.0)
    market = MarketModel(sigma, np.eye(tables.n_assets))
    base = account_baseline(tables, arrays, market, 1.0)
    steps = 8
    bgk = account_baseline(tables, arrays, market, 1.0, monitor_days=1.0 / steps)
    kwargs: dict[str, Any] = {"n_steps": steps, "n_paths": 6_000, "jump_per_day": 0.0}
    mc = portfolio_first_passage(tables, arrays, market, 1.0, seed=5, **kwargs)
    raw = portfolio_first_passage(tables, arrays, market, 1.0, seed=5, bridge=False, **kwargs)
    for i in (0, 1):
        exact = base.probability[i]
        assert 0.05 < exact < 0.6
        tol = 4 * mc.stderr[i] + 0.01
        assert abs(mc.probability[i] - exact) < tol, (i, mc.probability[i], exact)
        assert abs(raw.probability[i] - bgk.probability[i]) < 4 * raw.stderr[i] + 0.01
        assert raw.probability[i] == pytest.approx(raw.probability_observed[i])
        assert exact - raw.probability[i] > 3 * raw.stderr[i]
    assert mc.probability[2] == 0.0


def test_monte_carlo_bad_input() -> None:
    book = _one_factor_book()
    tables = compile_market(book)
    arrays = compile_accounts(tables, book.accounts)
    market = default_market_model(tables)
    with pytest.raises(InputError, match="paths"):
        portfolio_first_passage(tables, arrays, market, 1.0, n_paths=0)
    with pytest.raises(InputError, match="horizon"):
        portfolio_first_passage(tables, arrays, market, float("nan"))
