"""Account features, the simulated history (causal volatility estimates, kernel-valued
target) and the account model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from crossmargin.book.io import book_from_data
from crossmargin.errors import InputError
from crossmargin.margin.arrays import compile_accounts, compile_market
from crossmargin.predict.accounts import (
    ACCOUNT_FEATURES,
    account_features,
    simulate_accounts,
    vol_estimates,
)
from crossmargin.predict.baseline import default_market_model
from crossmargin.predict.training import train_accounts


def _book() -> Any:
    usd = {
        "price": 1.0,
        "init_asset_weight": 1,
        "maint_asset_weight": 1,
        "init_liab_weight": 1,
        "maint_liab_weight": 1,
    }
    eth = {
        "price": 2000.0,
        "init_asset_weight": 0.8,
        "maint_asset_weight": 0.9,
        "init_liab_weight": 1.2,
        "maint_liab_weight": 1.1,
    }
    perp = {
        "kind": "perp",
        "underlying": "ETH",
        "settle_asset": "USDC",
        "initial_margin_frac": 0.1,
        "maint_margin_frac": 0.05,
        "init_pnl_weight": 1.0,
        "maint_pnl_weight": 1.0,
    }
    return book_from_data(
        {
            "assets": {"USDC": usd, "ETH": eth},
            "markets": {"ETH-PERP": perp},
            "accounts": [
                # 10k USDC + 5 ETH, long 20 ETH perp: notional 40k, equity 20k
                {
                    "id": "a",
                    "balances": {"USDC": 10_000.0, "ETH": 5.0},
                    "positions": [{"market": "ETH-PERP", "qty": 20.0, "entry_price": 2000.0}],
                },
                {"id": "cash", "balances": {"USDC": 5_000.0}},
            ],
        }
    )


def test_account_features_by_hand() -> None:
    book = _book()
    tables = compile_market(book)
    arrays = compile_accounts(tables, book.accounts)
    market = default_market_model(tables)
    f = account_features(tables, arrays, market, 1.0, method="exact")
    row = dict(zip(ACCOUNT_FEATURES, f.values[0], strict=True))
    assert row["leverage"] == pytest.approx(40_000 / 20_000)
    assert row["stable_share"] == pytest.approx(0.5)
    assert row["collateral_hhi"] == pytest.approx(0.5)
    assert row["borrow_ratio"] == 0.0
    assert row["n_positions"] == 1 and row["top_position_share"] == 1.0
    # maint health = 10k + 0.9 x 10k - 0.05 x 40k = 17k; dH/dlnP = 0.9 x 10k + 40k - 2k
    assert row["health_ratio"] == pytest.approx(17_000 / 20_000)
    assert row["net_delta_ratio"] == pytest.approx(47_000 / 20_000, rel=1e-6)
    sigma = market.sigma_daily[tables.asset_id("ETH")]
    assert row["health_sd"] == pytest.approx(17_000 / (47_000 * sigma), rel=1e-6)
    assert row["p_analytic"] == f.baseline.probability[0] and 0.0 < row["p_analytic"] < 1.0
    cash = dict(zip(ACCOUNT_FEATURES, f.values[1], strict=True))
    assert cash["p_analytic"] == 0.0 and cash["leverage"] == 0.0 and cash["stable_share"] == 1.0


def test_volatility_estimates_use_only_earlier_epochs() -> None:
    """Changing epoch e's path changes the estimates of epochs > e only."""
    rng = np.random.default_rng(0)
    cum = rng.normal(0, 0.04, (30, 4, 3)).cumsum(axis=1)
    prior = np.array([0.03, 0.04, 0.0])
    before = vol_estimates(cum, prior, 1.0)
    changed = cum.copy()
    changed[12:] *= 3.0
    after = vol_estimates(changed, prior, 1.0)
    np.testing.assert_array_equal(before[:13], after[:13])
    assert np.all(after[13:, :2] > before[13:, :2])
    np.testing.assert_array_equal(before[0], prior)


@pytest.fixture(scope="module")
def history() -> Any:
    # seed 1: liquidations in the train, calibration and test epochs alike
    return simulate_accounts(
        n_epochs=40, accounts_per_epoch=60, horizon_days=1.0, n_steps=8, seed=1
    )


def test_simulated_history_shapes_and_target(history: Any) -> None:
    n = 40 * 60
    assert history.values.shape == (n, len(ACCOUNT_FEATURES))
    assert set(np.unique(history.target)) <= {0, 1}
    assert 0 < history.target.sum() < n
    assert np.all(np.diff(history.epoch) >= 0) and history.epoch[-1] == 39
    assert history.monitor_days == pytest.approx(1 / 8)
    # liquidations come with high-volatility epochs: the regime is in the data
    per_epoch = np.bincount(history.epoch, weights=history.target)
    high = history.regime > np.median(history.regime)
    assert per_epoch[high].sum() > per_epoch[~high].sum()
    # accounts with the larger analytic probability are liquidated more often
    top = history.analytic > np.quantile(history.analytic, 0.9)
    assert history.target[top].mean() > 3 * history.target[~top].mean()


def test_train_accounts_splits_by_epoch(history: Any) -> None:
    model, evaluation = train_accounts(history, calibration="sigmoid")
    assert evaluation.period == {
        "train": [0, 23],
        "calibration": [24, 31],
        "test": [32, 39],
        "unit": "epoch",
    }
    assert model.kind == "accounts" and model.horizon["days"] == 1.0
    assert model.feature_names == ACCOUNT_FEATURES
    assert len(evaluation.scores) == 4


def test_simulation_bad_input() -> None:
    with pytest.raises(InputError, match="epochs: too short"):
        simulate_accounts(n_epochs=3)
    with pytest.raises(InputError, match="accounts"):
        simulate_accounts(n_epochs=20, accounts_per_epoch=2)
    with pytest.raises(InputError, match="horizon"):
        simulate_accounts(n_epochs=20, accounts_per_epoch=20, horizon_days=-1.0)
