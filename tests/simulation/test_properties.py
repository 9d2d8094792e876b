"""Value conservation across cascade rounds, outside moments of the path models, and a remote
Dask scheduler giving the serial numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossmargin.errors import InputError
from crossmargin.liquidation import FeeSchedule, LiquidationConfig
from crossmargin.simulation import CascadeConfig, generate_book, run_cascade, shocked_prices
from crossmargin.simulation.executors import make_executor
from crossmargin.simulation.montecarlo import run_monte_carlo
from crossmargin.simulation.paths import block_bootstrap_returns, gbm_jump_returns

POLICIES = ["generic", "mango", "drift", "aave", "dydx"]


@st.composite
def cascades(draw: st.DrawFn) -> tuple[Any, CascadeConfig, dict[str, float]]:
    generated = generate_book(draw(st.integers(5, 80)), seed=draw(st.integers(0, 10_000)))
    liquidation = LiquidationConfig.preset(
        draw(st.sampled_from(POLICIES)),
        fees=FeeSchedule(
            liquidator_frac=draw(st.floats(0.0, 0.05)), insurance_frac=draw(st.floats(0.0, 0.02))
        ),
        insurance_fund_usd=draw(st.sampled_from([0.0, 1e4, 1e9])),
        bankruptcy=draw(st.sampled_from(["socialize", "adl"])),
    )
    config = CascadeConfig(
        model=draw(st.sampled_from(["engine", "closeout"])),
        liquidation=liquidation,
        # a thin market so that rounds follow one another
        daily_volume_usd={"BTC": 2e6, "ETH": 1e6, "SOL": 3e5, "wstETH": 1e5, "AAVE": 1e5},
        max_rounds=8,
    )
    shocks = {"ETH": -draw(st.floats(0.0, 0.6)), "BTC": -draw(st.floats(0.0, 0.4))}
    return generated, config, shocks


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cascades())
def test_value_is_conserved_in_every_round(case: Any) -> None:
    """At each round's prices, over the round's liquidated accounts:
    equity before + insurance fund before
    = equity after + liquidators + makers + insurance fund after - loss beyond them (external);
    bad debt is never negative and the fund never goes below zero."""
    generated, config, shocks = case
    tables = generated.tables
    result = run_cascade(tables, generated.to_arrays(), shocked_prices(tables, shocks), config)
    fund = config.liquidation.insurance_fund_usd
    for rd in result.rounds:
        before = rd.equity_before_usd + fund
        after = (
            rd.equity_after_usd
            + rd.liquidator_usd
            + rd.makers_usd
            + rd.insurance_fund_usd
            - rd.external_usd
        )
        scale = 1.0 + abs(rd.equity_before_usd) + rd.liquidated_notional_usd + fund
        assert after == pytest.approx(before, abs=1e-9 * scale), rd
        assert rd.bad_debt_usd >= -1e-9 * scale
        assert rd.insurance_fund_usd >= -1e-9 * scale
        assert rd.external_usd <= rd.bad_debt_usd + 1e-9 * scale
        fund = rd.insurance_fund_usd
    assert result.bad_debt_usd == pytest.approx(sum(rd.bad_debt_usd for rd in result.rounds))


def test_gbm_jump_variance_is_mertons() -> None:
    """Merton (1976): over h days the log return's variance is
    sigma^2 h + lambda h beta^2 (mu_J^2 + s_J^2) (compound Poisson of normal jumps), and its
    mean is the compensated drift -sigma^2 h / 2 - lambda h kappa + lambda h beta mu_J."""
    sigma = np.array([0.03, 0.06])  # beta = sigma / mean(sigma) = (2/3, 4/3)
    lam, mu_j, s_j, h = 0.3, -0.1, 0.05, 2.0
    r = gbm_jump_returns(sigma, np.eye(2), 400_000, h, lam, mu_j, s_j, seed=11)
    beta = sigma / sigma.mean()
    var = sigma**2 * h + lam * h * beta**2 * (mu_j**2 + s_j**2)
    kappa = np.exp(beta * mu_j + 0.5 * (beta * s_j) ** 2) - 1.0
    mean = -0.5 * sigma**2 * h - lam * h * kappa + lam * h * beta * mu_j
    np.testing.assert_allclose(r.var(axis=0), var, rtol=0.02)
    assert np.all(np.abs(r.mean(axis=0) - mean) < 4 * np.sqrt(var / r.shape[0]))
    # one common jump: the two assets co-move through it even with independent diffusions
    cov = lam * h * beta[0] * beta[1] * (mu_j**2 + s_j**2)
    assert np.cov(r.T)[0, 1] == pytest.approx(cov, rel=0.05)


def test_block_bootstrap_with_unit_blocks_is_the_iid_bootstrap() -> None:
    """With b = 1 the moving-block bootstrap (Künsch 1989) draws days independently: a path over
    h days has mean h * mean(x) and variance h * var(x) (population variance of the history)."""
    rng = np.random.default_rng(0)
    history = rng.standard_t(4, size=(250, 2)) * 0.03
    h = 5
    paths = block_bootstrap_returns(history, 200_000, horizon_days=h, block_days=1, seed=3)
    np.testing.assert_allclose(paths.mean(axis=0), h * history.mean(axis=0), atol=5e-4)
    np.testing.assert_allclose(paths.var(axis=0), h * history.var(axis=0), rtol=0.02)
    # the cross-asset dependence of a day is kept: covariance h * cov(x)
    cov = h * np.cov(history.T, bias=True)[0, 1]
    assert np.cov(paths.T)[0, 1] == pytest.approx(cov, rel=0.1, abs=2e-5)


def test_a_remote_scheduler_gives_the_serial_numbers() -> None:
    """A scheduler reached by its tcp:// address (here a small local one in this process) runs
    the same chunks as the serial executor: identical per-path results for the same seed."""
    from dask.distributed import LocalCluster

    generated = generate_book(300, seed=8)
    config = CascadeConfig(model="closeout")
    sigma = np.array([config.sigma_daily.get(s, 0.0) for s in generated.tables.asset_symbols])
    corr = np.where(np.eye(sigma.size) == 1.0, 1.0, 0.6)
    r = gbm_jump_returns(sigma, corr, 40, horizon_days=3.0, jump_per_day=0.2, seed=9)
    serial = run_monte_carlo(generated.tables, generated.to_arrays(), r, config)
    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://")
        executor = make_executor(scheduler=address)
        try:
            remote = run_monte_carlo(generated.tables, generated.to_arrays(), r, config, executor)
        finally:
            executor.close()
    for name in ("bad_debt_usd", "liquidated_notional_usd", "liquidated_accounts", "rounds"):
        np.testing.assert_array_equal(getattr(remote, name), getattr(serial, name))
    assert remote.metrics() == serial.metrics()


def test_a_custom_maint_health_needs_the_closeout_model() -> None:
    generated = generate_book(5, seed=1)
    tables = generated.tables
    with pytest.raises(InputError, match="model"):
        run_cascade(
            tables,
            generated.to_arrays(),
            tables.price_usd,
            CascadeConfig(model="engine"),
            maint_health=lambda price, health, done: health,
        )
