"""A portfolio file's account as a portfolio-margin account; Greeks of an account."""

from __future__ import annotations

import math
from typing import Any

import pytest

from crossmargin.book import book_from_data
from crossmargin.errors import InputError, NotSupportedError
from crossmargin.portfolio import PortfolioSpec, get_profile, portfolio_margin
from crossmargin.portfolio.book import portfolio_from_book
from crossmargin.portfolio.greeks import portfolio_greeks
from crossmargin.pricing import black76
from tests.helpers import asset


def book_data(**option: Any) -> dict[str, Any]:
    call = {
        "kind": "option",
        "underlying": "ETH",
        "strike": 3500,
        "expiry": "2025-02-01T08:00:00Z",
        "option_type": "call",
        "mark_price": 60.0,
    }
    call.update(option)
    return {
        "as_of": "2025-01-01T00:00:00Z",
        "assets": {
            "USDC": asset(1.0),
            "ETH": asset(3000.0, 0.8, 0.9, 1.2, 1.1),
            "BTC": asset(60000.0, 0.7, 0.8, 1.3, 1.2),
        },
        "markets": {
            "ETH-PERP": {
                "kind": "perp",
                "underlying": "ETH",
                "initial_margin_frac": 0.1,
                "maint_margin_frac": 0.05,
            },
            "ETH-C": call,
        },
        "accounts": [
            {
                "id": "a",
                "balances": {"USDC": -1000.0, "ETH": 2.0, "BTC": 0.1},
                "positions": [
                    {"market": "ETH-PERP", "qty": -1.0, "entry_price": 3100.0},
                    {"market": "ETH-C", "qty": -5.0, "entry_price": 50.0},
                ],
            }
        ],
    }


def test_book_account_to_portfolio() -> None:
    spec = portfolio_from_book(book_from_data(book_data()), "a")
    assert spec.cash_usd == -1000.0
    (option,) = spec.options
    expiry = spec.expiries[option.expiry]
    assert expiry.t_yrs == pytest.approx((31 * 86400 + 8 * 3600) / (365 * 86400))
    # the vol is implied from the premium: repricing gives the premium back
    assert black76(3000.0, 3500.0, option.vol, expiry.t_yrs).price == pytest.approx(60.0)
    (perp,) = spec.perps
    assert perp.value_usd == pytest.approx(-1.0 * (3000.0 - 3100.0))
    eth, btc = spec.collaterals
    # shocked with its underlying: price risk in the grid, no haircut on top
    assert (eth.shocked_with, eth.mm_haircut_frac, eth.im_haircut_frac) == ("ETH", 0.0, 0.0)
    assert (btc.shocked_with, btc.im_haircut_frac) == (None, pytest.approx(0.1))
    result = portfolio_margin(spec.to_portfolio(), get_profile("generic"))
    assert result.mtm_usd == pytest.approx(-1000.0 + 100.0 - 5 * 60.0 + 6000.0 + 6000.0)


def test_book_errors() -> None:
    data = book_data(mark_price=None)
    with pytest.raises(InputError, match=r"markets\.ETH-C\.mark_vol"):
        portfolio_from_book(book_from_data(data), "a")
    spec = portfolio_from_book(book_from_data(data), "a", vols={"ETH-C": 0.7})
    assert spec.options[0].vol == 0.7
    data = book_data()
    data["accounts"][0]["balances"]["ETH"] = -1.0
    with pytest.raises(NotSupportedError, match="borrowing an underlying"):
        portfolio_from_book(book_from_data(data), "a")
    data = book_data(expiry="2024-12-01T00:00:00Z")
    with pytest.raises(InputError, match="expired"):
        portfolio_from_book(book_from_data(data), "a")


def test_greeks_are_the_pricers_and_include_perps_and_collateral() -> None:
    """Delta w.r.t. spot: option deltas times dF/dS = (F - F_fixed)/S, plus perps and shocked
    collateral (value / spot); vega per vol point and theta per day from the pricer."""
    spec = PortfolioSpec.from_data(
        {
            "underlyings": {"ETH": {"spot_usd": 3000.0}},
            "expiries": {
                "E": {
                    "underlying": "ETH",
                    "t_yrs": 0.1,
                    "forward_usd": 3030.0,
                    "forward_fixed_usd": 303.0,
                    "rate": 0.05,
                }
            },
            "options": [
                {"expiry": "E", "strike_usd": 3200, "option_type": "call", "qty": -4, "vol": 0.6}
            ],
            "perps": [{"underlying": "ETH", "qty": 1.5, "mark_usd": 3001.0}],
            "collaterals": [
                {"name": "ETH", "amount": 2.0, "price_usd": 3000.0, "shocked_with": "ETH"}
            ],
        }
    )
    greeks = portfolio_greeks(spec.to_portfolio())["ETH"]
    values = black76(3030.0, 3200.0, 0.6, 0.1, math.exp(-0.05 * 0.1), True)
    dfds = (3030.0 - 303.0) / 3000.0
    assert greeks["delta_qty"] == pytest.approx(-4 * float(values.delta) * dfds + 1.5 + 2.0)
    assert greeks["gamma_per_usd"] == pytest.approx(-4 * float(values.gamma) * dfds**2)
    assert greeks["vega_usd_per_vol_point"] == pytest.approx(-4 * float(values.vega_per_vol_point))
    assert greeks["theta_usd_per_day"] == pytest.approx(-4 * float(values.theta_per_day))
    assert greeks["expiries"]["E"]["mtm_usd"] == pytest.approx(-4 * float(values.price))
