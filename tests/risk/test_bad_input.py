"""Bad input: clear errors naming field and value, or the documented fallbacks; never NaN."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crossmargin.errors import InputError
from crossmargin.risk.returns import (
    MissingReturnsError,
    ReturnData,
    map_assets,
    returns_from_frames,
)
from crossmargin.risk.var import account_risk, fit_t_copula, simulate_t_copula
from tests.risk.risk_data import option_book, synthetic_prices, synthetic_returns


def _finite(risk) -> None:  # type: ignore[no-untyped-def]
    for f in risk.figures:
        for v in (f.equity_var_usd, f.equity_es_usd, f.health_var_usd, f.health_es_usd):
            assert math.isfinite(v)


def test_too_short_history() -> None:
    with pytest.raises(InputError, match="too short") as info:
        returns_from_frames(synthetic_prices(days=40))
    assert info.value.field == "returns" and info.value.value == 40
    book = option_book([{"id": "a", "balances": {"ETH": 1.0}}])
    data = returns_from_frames(synthetic_prices(days=40), min_obs=10)
    with pytest.raises(InputError, match="too short"):
        account_risk(book, "a", data)  # the default minimum of 100 days
    with pytest.raises(InputError, match="too short"):
        fit_t_copula(np.zeros((10, 2)))


def test_missing_dates_are_dropped_or_refused() -> None:
    prices = synthetic_prices(symbols=("ETH",), days=300)["ETH"]
    holed = prices.drop(prices.index[100:113])  # a 13-day hole, like the Bitstamp file's
    with pytest.raises(InputError, match="missing dates") as info:
        returns_from_frames({"ETH": holed}, on_gap="error")
    assert info.value.field == "returns.ETH.dates" and "2020-04-09" in info.value.value
    data = returns_from_frames({"ETH": holed})
    assert data.gaps_dropped == 1 and data.n_obs == 300 - 13 - 1
    # no kept return spans the hole
    assert (np.diff(data.dates.asi8) > 0).all()
    assert pd.Timestamp("2020-04-23", tz="UTC") not in data.dates
    with pytest.raises(InputError, match="on_gap"):
        returns_from_frames({"ETH": holed}, on_gap="fill")


def test_series_on_different_dates_are_joined_on_common_dates() -> None:
    frames = synthetic_prices(days=400)
    frames["LTC"] = frames["LTC"].iloc[150:]  # listed later
    data = returns_from_frames(frames)
    assert data.n_obs == 400 - 150 and not np.isnan(data.values).any()


def test_bad_prices_and_duplicates() -> None:
    prices = synthetic_prices(symbols=("ETH",), days=200)["ETH"].copy()
    prices.iloc[5] = -1.0
    with pytest.raises(InputError, match="finite numbers > 0"):
        returns_from_frames({"ETH": prices})
    dup = synthetic_prices(symbols=("ETH",), days=200)["ETH"]
    dup = pd.concat([dup, dup.iloc[:1]])
    with pytest.raises(InputError, match="duplicate"):
        returns_from_frames({"ETH": dup})


def test_assets_without_returns() -> None:
    data = synthetic_returns()
    with pytest.raises(MissingReturnsError, match="GOV") as info:
        map_assets(["ETH", "GOV"], data)
    assert info.value.field == "returns.GOV" and "proxies" in info.value.reason
    mapping = map_assets(["USDC", "ETH", "wstETH", "GOV"], data, proxies={"GOV": "ETH"})
    assert mapping.source == ("stable", "ETH", "alias of ETH", "proxy ETH")
    assert mapping.column[0] == -1
    with pytest.raises(MissingReturnsError, match=r"proxies\.GOV"):
        map_assets(["GOV"], data, proxies={"GOV": "DOGE"})
    book = option_book([{"id": "g", "balances": {"GOV": 1000.0, "USDC": -20_000.0}}])
    with pytest.raises(MissingReturnsError):
        account_risk(book, "g", data)
    _finite(account_risk(book, "g", data, proxies={"GOV": "ETH"}, n_paths=2000))


def _data(values: np.ndarray, symbols: tuple[str, ...]) -> ReturnData:
    dates = pd.date_range("2021-01-01", periods=values.shape[0], freq="D", tz="UTC")
    return ReturnData(dates, symbols, values)


def test_singular_correlations_fall_back_and_give_finite_var() -> None:
    base = synthetic_returns(days=400)
    eth = base.column("ETH")
    book = option_book(
        [
            {
                "id": "s",
                "balances": {"ETH": 10.0, "BTC": 1.0, "GOV": 500.0, "USDC": -10_000.0},
                "positions": [{"market": "ETH-P-2800", "qty": -5.0, "entry_price": 50.0}],
            }
        ]
    )
    # identical series (GOV = ETH), a collinear one (BTC = 2 x ETH): rank-1 sample correlation
    data = _data(np.column_stack([eth, 2.0 * eth, eth]), ("ETH", "BTC", "GOV"))
    risk = account_risk(book, "s", data, n_paths=2000)
    _finite(risk)
    copula = fit_t_copula(data.values)
    assert copula.correlation.shape == (2, 2)  # the identical column shares ETH's draw
    np.linalg.cholesky(copula.correlation)
    paths = simulate_t_copula(copula, 1000)
    assert np.array_equal(paths[:, 0], paths[:, 2])  # GOV moves with ETH exactly


def test_more_assets_than_days_is_still_positive_definite() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(0, 0.02, (40, 60))  # T < n: a singular sample covariance
    copula = fit_t_copula(values)
    np.linalg.cholesky(copula.correlation)
    assert np.isfinite(simulate_t_copula(copula, 500)).all()


def test_constant_series_and_stable_only_accounts() -> None:
    data = synthetic_returns(days=200)
    book = option_book([{"id": "cash", "balances": {"USDC": 1e6}}])
    risk = account_risk(book, "cash", data, n_paths=500)
    _finite(risk)
    assert all(f.equity_var_usd == 0.0 and f.health_var_usd == 0.0 for f in risk.figures)
    flat = _data(np.column_stack([np.zeros(200), data.column("BTC")]), ("ETH", "BTC"))
    book = option_book([{"id": "a", "balances": {"ETH": 10.0, "BTC": 1.0}}])
    _finite(account_risk(book, "a", flat, n_paths=500))


def test_nan_in_a_return_matrix_is_refused() -> None:
    from crossmargin.risk.revalue import ScenarioRevaluer
    from crossmargin.risk.var import risk_of_returns

    book = option_book([{"id": "a", "balances": {"ETH": 1.0}}])
    revaluer = ScenarioRevaluer.from_book(book, "a")
    r = np.zeros((150, revaluer.n_assets))
    r[3, 0] = np.nan
    with pytest.raises(InputError, match=r"returns\[3, 0\]"):
        risk_of_returns(revaluer, r)
    with pytest.raises(InputError, match="log_returns"):
        revaluer.revalue(r)
