"""Paths, Monte Carlo metrics, executors, mode comparison, calibration, the reality check, CLI."""

from __future__ import annotations

import json
import math
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crossmargin.cli import app
from crossmargin.errors import InputError
from crossmargin.margin.engine import MarginEngine
from crossmargin.simulation import CascadeConfig, generate_book, shocked_prices
from crossmargin.simulation.calibrate import calibrate, scaled_market
from crossmargin.simulation.executors import make_executor
from crossmargin.simulation.modes import (
    book_in_mode,
    compare_modes,
    portfolio_maint_health_usd,
    top_up,
)
from crossmargin.simulation.montecarlo import run_monte_carlo, var_es
from crossmargin.simulation.paths import block_bootstrap_returns, gbm_jump_returns
from tests.helpers import SHARED, needs_shared

runner = CliRunner()


def test_gbm_paths_are_martingales_with_the_stated_correlation() -> None:
    """Without jumps: E[e^r] = 1 (drift -sigma^2 h / 2), sd(r) = sigma sqrt(h), corr = 0.7;
    with jumps the compensator kappa keeps E[e^r] = 1 (Merton 1976)."""
    sigma = np.array([0.0, 0.04, 0.06])
    corr = np.array([[1.0, 0.7, 0.7], [0.7, 1.0, 0.7], [0.7, 0.7, 1.0]])
    n = 200_000
    r = gbm_jump_returns(sigma, corr, n, horizon_days=4.0, jump_per_day=0.0, seed=1)
    assert np.all(r[:, 0] == 0.0)  # a stablecoin
    se = 4 * np.sqrt((np.exp(sigma[1:] ** 2 * 4) - 1) / n)  # 4 standard errors of the mean
    assert np.all(np.abs(np.exp(r[:, 1:]).mean(axis=0) - 1.0) < se)
    assert np.std(r[:, 1:], axis=0) == pytest.approx(sigma[1:] * 2.0, rel=0.01)
    assert np.corrcoef(r[:, 1], r[:, 2])[0, 1] == pytest.approx(0.7, abs=0.01)
    jumpy = gbm_jump_returns(sigma, corr, n, 4.0, jump_per_day=0.05, seed=2)
    assert np.exp(jumpy[:, 1:]).mean(axis=0) == pytest.approx(1.0, abs=0.005)
    assert jumpy[:, 2].min() < r[:, 2].min()  # jumps fatten the left tail
    with pytest.raises(InputError, match="correlation"):
        gbm_jump_returns(sigma, np.eye(2), 10)
    with pytest.raises(InputError, match="paths"):
        gbm_jump_returns(sigma, corr, 0)


def test_block_bootstrap_paths_are_sums_of_consecutive_history() -> None:
    """Künsch's moving blocks: with horizon = block = 3 every path is one 3-day window."""
    history = np.arange(20.0).reshape(10, 2) / 100.0
    paths = block_bootstrap_returns(history, 500, horizon_days=3, block_days=3, seed=0)
    windows = {tuple(np.round(history[i : i + 3].sum(axis=0), 12)) for i in range(8)}
    assert {tuple(np.round(p, 12)) for p in paths} <= windows
    assert len({tuple(np.round(p, 12)) for p in paths}) == 8  # every window drawn
    with pytest.raises(InputError, match="returns"):
        block_bootstrap_returns(history[:3], 5, horizon_days=3, block_days=3)


def test_var_es_on_a_known_sample() -> None:
    sample = np.arange(1.0, 101.0)  # 1..100
    assert var_es(sample, 0.95) == (96.0, pytest.approx(np.mean([96, 97, 98, 99, 100])))
    assert var_es(sample, 0.99) == (100.0, 100.0)


def test_serial_threads_and_dask_give_identical_results() -> None:
    generated = generate_book(400, seed=3)
    config = CascadeConfig(model="closeout")
    sigma = np.array([config.sigma_daily.get(s, 0.0) for s in generated.tables.asset_symbols])
    corr = np.where(np.eye(sigma.size) == 1.0, 1.0, 0.7)
    r = gbm_jump_returns(sigma, corr, 48, horizon_days=2.0, jump_per_day=0.1, seed=5)
    results = []
    for kind in ("serial", "threads", "dask"):
        executor = make_executor(kind)
        try:
            mc = run_monte_carlo(generated.tables, generated.to_arrays(), r, config, executor)
        finally:
            executor.close()
        results.append(mc)
    for other in results[1:]:
        np.testing.assert_array_equal(other.bad_debt_usd, results[0].bad_debt_usd)
        np.testing.assert_array_equal(
            other.liquidated_notional_usd, results[0].liquidated_notional_usd
        )
    metrics = results[0].metrics()
    assert metrics["bad_debt_es99_usd"] >= metrics["bad_debt_var99_usd"] >= 0.0
    assert metrics["bad_debt_var99_usd"] >= metrics["bad_debt_var95_usd"]


def test_bad_scheduler_address_is_refused() -> None:
    with pytest.raises(InputError, match="--scheduler"):
        make_executor("dask", scheduler="http://nowhere")
    with pytest.raises(InputError, match="--executor"):
        make_executor("gpu")


def test_modes_capital_and_risk() -> None:
    """Cross needs no top-up (generated books pass init in cross) and never more capital than
    isolated on the same accounts; the portfolio row is cascaded with close-out liquidation
    by its scenario grid, and liquidates at least the accounts the grid fails at the shock."""
    generated = generate_book(150, seed=2)
    shocks = {"ETH": -0.25, "BTC": -0.15}
    rows = {m.mode: m for m in compare_modes(generated, shocks)}
    assert rows["cross"].top_up_usd == 0.0
    assert rows["cross"].capital_required_usd <= rows["isolated"].capital_required_usd
    assert all(m.cascaded for m in rows.values())
    assert (rows["cross"].liquidation, rows["portfolio"].liquidation) == (
        "engine",
        "closeout (scenario grid)",
    )
    book, _ = top_up(book_in_mode(generated, "portfolio"))
    engine = MarginEngine(book)
    health = portfolio_maint_health_usd(
        engine, book.accounts, shocked_prices(engine.tables, shocks)
    )
    assert rows["portfolio"].liquidated_accounts >= int((health < 0.0).sum()) > 0
    with pytest.raises(InputError, match="--modes"):
        compare_modes(generated, {}, modes=["spot"])


def test_calibration_frontier_trades_capital_for_bad_debt() -> None:
    generated = generate_book(2_000, seed=1)
    config = CascadeConfig(model="closeout")
    sigma = np.array([config.sigma_daily.get(s, 0.0) for s in generated.tables.asset_symbols])
    corr = np.where(np.eye(sigma.size) == 1.0, 1.0, 0.7)
    r = gbm_jump_returns(sigma, corr, 120, 1.0, jump_per_day=0.1, seed=7)
    result = calibrate(generated, r, target_var99_usd=5e6, scales=(0.5, 1.0, 2.0, 4.0))
    capital = [p.capital_required_usd for p in result.frontier]
    var = [p.bad_debt_var99_usd for p in result.frontier]
    assert capital == sorted(capital) and capital[0] < capital[-1]
    assert var[-1] <= var[0]
    # a target met by some scales and not others: the least-capital feasible one is chosen
    target = sorted(var)[1]
    assert var[0] > target
    again = calibrate(generated, r, target_var99_usd=target, scales=(0.5, 1.0, 2.0, 4.0))
    feasible = [p for p in again.frontier if p.bad_debt_var99_usd <= target]
    assert again.recommended == min(feasible, key=lambda p: p.capital_required_usd)
    market = scaled_market(generated.market, 2.0)
    assert market.markets["ETH-PERP"].maint_margin_frac == pytest.approx(
        2 * generated.market.markets["ETH-PERP"].maint_margin_frac
    )
    assert market.assets["ETH"].maint_asset_weight == pytest.approx(
        1 - 2 * (1 - generated.market.assets["ETH"].maint_asset_weight)  # type: ignore[operator]
    )


@needs_shared
def test_reality_check_on_eth_january_2021() -> None:
    """Structure of the comparison on the shared minute data (not tuned to its numbers)."""
    from crossmargin.market.loaders import load_binance_liquidations
    from crossmargin.simulation.reality import impact_check

    minutes = load_binance_liquidations(SHARED / "binance_ethusdt_1min_liquidations_2021-01.csv")
    check = impact_check(minutes, model_k=1.0)
    assert check.n_flow_minutes > 1000 and len(check.bins) == 10
    assert check.model_to_observed == pytest.approx(1.0 / check.observed_k)
    flows = [b["mean_flow_qty"] for b in check.bins]
    assert flows == sorted(flows)
    assert math.isfinite(check.r_squared)


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "img":
            self.images.append(dict(attrs).get("src") or "")


def test_simulate_cli_json_html_and_bad_input(tmp_path: Path) -> None:
    html_file = tmp_path / "sim.html"
    out = runner.invoke(
        app,
        [
            "simulate",
            "--generate",
            "300",
            "--shock",
            "ETH=-30%",
            "--paths",
            "20",
            "--model",
            "closeout",
            "--html",
            str(html_file),
            "--json",
        ],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["cascade"]["converged"] and data["monte_carlo"]["metrics"]["paths"] == 20
    parser = _Images()
    parser.feed(html_file.read_text())
    assert len(parser.images) == 3  # price path, volume per round, bad-debt distribution
    assert all(
        src.startswith("data:image/png;base64,") and len(src) > 1000 for src in parser.images
    )
    for args, message in (
        (["--generate", "10", "--shock", "ETH=-100%"], "shock.ETH"),
        (["--generate", "10", "--shock", "DOGE=-10%"], "shock.DOGE"),
        (["--generate", "10"], "nothing to simulate"),
        (["--generate", "10", "--paths", "5", "--scheduler", "nowhere"], "--scheduler"),
    ):
        bad = runner.invoke(app, ["simulate", *args])
        assert bad.exit_code == 2 and message in bad.output, bad.output


def test_calibrate_cli(tmp_path: Path) -> None:
    out = runner.invoke(
        app,
        ["calibrate", "--generate", "400", "--paths", "30", "--scales", "1,2", "--json"],
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert [p["scale"] for p in data["frontier"]] == [1.0, 2.0]
    bad = runner.invoke(app, ["calibrate", "--generate", "50", "--scales", "a,b"])
    assert bad.exit_code == 2 and "--scales" in bad.output
    bad = runner.invoke(app, ["calibrate", "--generate", "50", "--haircut-scales", "1,x"])
    assert bad.exit_code == 2 and "--haircut-scales" in bad.output


def test_two_knob_calibration_flags_the_pareto_frontier() -> None:
    """A grid of margin scale x haircut scale: haircuts alone leave perp margins unchanged;
    a point is efficient iff no other has less capital and a lower VaR99; the recommendation
    is the cheapest point under the target."""
    generated = generate_book(600, seed=5)
    config = CascadeConfig(model="closeout")
    sigma = np.array([config.sigma_daily.get(s, 0.0) for s in generated.tables.asset_symbols])
    corr = np.where(np.eye(sigma.size) == 1.0, 1.0, 0.7)
    r = gbm_jump_returns(sigma, corr, 60, 1.0, jump_per_day=0.1, seed=4)
    result = calibrate(generated, r, 2e6, scales=(0.5, 2.0), haircut_scales=(0.5, 2.0))
    assert [(p.scale, p.haircut_scale) for p in result.frontier] == [
        (0.5, 0.5),
        (0.5, 2.0),
        (2.0, 0.5),
        (2.0, 2.0),
    ]
    for p in result.frontier:
        dominated = any(
            q.capital_required_usd <= p.capital_required_usd
            and q.bad_debt_var99_usd <= p.bad_debt_var99_usd
            and q != p
            and (q.capital_required_usd, q.bad_debt_var99_usd)
            != (p.capital_required_usd, p.bad_debt_var99_usd)
            for q in result.frontier
        )
        assert p.efficient is not dominated
    feasible = [p for p in result.frontier if p.bad_debt_var99_usd <= 2e6]
    assert result.recommended == (
        min(feasible, key=lambda p: p.capital_required_usd) if feasible else None
    )
    market = scaled_market(generated.market, 1.0, haircut_scale=2.0)
    assert market.markets["ETH-PERP"].maint_margin_frac == (
        generated.market.markets["ETH-PERP"].maint_margin_frac
    )
    assert result.frontier[1].label == "m0.5/h2" and result.frontier[0].label == "0.5"
    with pytest.raises(InputError, match="haircut_scale"):
        scaled_market(generated.market, 1.0, haircut_scale=0.0)
