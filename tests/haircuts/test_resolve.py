"""`weights: dynamic` in a portfolio file: weights computed from the asset's price history."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import crossmargin as cm
from crossmargin.book import book_from_data, load_book
from crossmargin.errors import InputError
from crossmargin.haircuts.dynamic import Weights, recommend_from_history
from crossmargin.market.loaders import load_ohlcv_csv
from tests.helpers import SHARED


def _write_history(path: Path, sigma: float = 0.9, days: int = 400) -> None:
    rng = np.random.default_rng(5)
    returns = rng.normal(0.0, sigma / math.sqrt(365), days)
    close = 150.0 * np.exp(np.cumsum(returns))
    lines = ["date,open,high,low,close,volume"]
    previous = 150.0
    for day, price in enumerate(close):
        high, low = max(previous, price) * 1.01, min(previous, price) * 0.99
        date = np.datetime64("2024-01-01") + np.timedelta64(day, "D")
        lines.append(f"{date},{previous},{high},{low},{price},2000000")
        previous = price
    path.write_text("\n".join(lines) + "\n")


BOOK_YAML = """
assets:
  USDC:
    {{price: 1, init_asset_weight: 1, maint_asset_weight: 1, init_liab_weight: 1,
     maint_liab_weight: 1}}
  SOL:
    price: 150.0
    weights: dynamic
    history: {history}
    volatility_method: ewma
    liquidity_position_usd: 500000
{previous}
accounts:
  - id: a
    balances: {{SOL: 1000, USDC: -50000}}
"""


def test_dynamic_weights_are_computed_on_load(tmp_path: Path) -> None:
    _write_history(tmp_path / "sol.csv")
    (tmp_path / "book.yaml").write_text(BOOK_YAML.format(history="sol.csv", previous=""))
    book = load_book(tmp_path / "book.yaml")  # the history path is relative to the book
    frame = load_ohlcv_csv(tmp_path / "sol.csv", time_column="date")
    expected = recommend_from_history("SOL", frame, position_usd=500_000).weights
    sol = book.assets["SOL"]
    assert sol.maint_asset_weight == pytest.approx(expected.maint_asset_weight, rel=1e-12)
    assert sol.init_liab_weight == pytest.approx(expected.init_liab_weight, rel=1e-12)
    report = cm.margin(book)[0]
    assert report.maint.weighted_assets_usd == pytest.approx(
        1000 * 150 * expected.maint_asset_weight, rel=1e-12
    )


def test_weights_in_the_file_are_the_previous_ones(tmp_path: Path) -> None:
    _write_history(tmp_path / "sol.csv", sigma=3.0)  # far riskier than the old weights say
    previous = (
        "    init_asset_weight: 0.8\n    maint_asset_weight: 0.9\n"
        "    init_liab_weight: 1.2\n    maint_liab_weight: 1.1"
    )
    (tmp_path / "book.yaml").write_text(BOOK_YAML.format(history="sol.csv", previous=previous))
    sol = load_book(tmp_path / "book.yaml").assets["SOL"]
    old = Weights(0.8, 0.9, 1.2, 1.1)
    assert sol.maint_asset_weight == pytest.approx(old.maint_asset_weight * 0.95)  # 5 % step
    assert sol.maint_liab_weight == pytest.approx(old.maint_liab_weight * 1.05)


def test_dynamic_weight_errors(tmp_path: Path) -> None:
    (tmp_path / "book.yaml").write_text(BOOK_YAML.format(history="missing.csv", previous=""))
    with pytest.raises(InputError, match=r"assets\.SOL\.history: no such file"):
        load_book(tmp_path / "book.yaml")
    data = {
        "assets": {"SOL": {"price": 1.0, "weights": "dynamic"}},
    }
    with pytest.raises(InputError, match=r"assets\.SOL\.history: weights: dynamic needs"):
        book_from_data(data)
    data["assets"]["SOL"]["history"] = "x.csv"
    unresolved = book_from_data(data)  # validated, not yet resolved
    with pytest.raises(InputError, match="unresolved dynamic weights"):
        cm.margin(unresolved)
    with pytest.raises(InputError, match=r"assets\.SOL\.init_asset_weight: required unless"):
        book_from_data({"assets": {"SOL": {"price": 1.0}}})


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data is absent")
def test_dynamic_weights_from_the_shared_multi_asset_file(tmp_path: Path) -> None:
    history = SHARED / "bitstamp_btc_eth_ltc_usd_daily.csv"
    (tmp_path / "book.yaml").write_text(
        "assets:\n"
        f"  ETH: {{price: 150.0, weights: dynamic, history: '{history}', history_asset: ETH}}\n"
    )
    eth = load_book(tmp_path / "book.yaml").assets["ETH"]
    assert eth.maint_asset_weight is not None and 0.5 < eth.maint_asset_weight < 0.95
