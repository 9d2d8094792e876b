"""Liquidation where the collateral is, and into an AMM: the real liquidation engine with the
located execution model and the AMM as its depth source.

Value conservation is the engine's own identity (liquidation/engine.py docstring: equity +
liquidator + insurance fund + makers' slippage gains is unchanged by every step); with the AMM
as depth the makers are the pool, and after an arbitrageur trades the pool back to the oracle
price, what the account lost = the pool's gain + the arbitrageur's gain (both at the oracle).
The constant-product fill is Uniswap v2's getAmountOut (tests/amm/test_pools.py vectors).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from crossmargin.amm.execution import AmmExecution
from crossmargin.amm.pools import ConstantProductPool, arbitrage_to
from crossmargin.book.io import book_from_data
from crossmargin.liquidation import LiquidationConfig, LiquidationEngine
from crossmargin.locations.execution import LocatedExecution
from crossmargin.locations.view import located_view

from .conftest import book_data

SHOCK = {"ETH": -0.1}  # ETH 3000 -> 2700: liquidatable, still solvent


def _run(state: str = "open"):
    """5 ETH at home and 5 at arbitrum (no bridge haircut, 0.1 % transfer cost), 25,000 USDC
    borrowed."""
    data = book_data(bridge_haircut_frac=0.0, transfer_cost_frac=0.001, state=state)
    lots = [{"qty": 5, "location": "arbitrum"}, {"qty": 5}]
    data["accounts"][0]["balances"] = {"ETH": lots, "USDC": -25000}
    view = located_view(book_from_data(data))
    engine = LiquidationEngine(
        view.book, LiquidationConfig(), LocatedExecution(view), shocks=view.prices(SHOCK)
    )
    return engine.liquidate()


def test_prefers_local_collateral_when_the_gain_is_equal() -> None:
    """No bridge haircut: selling either lot gains the same health; the remote one costs the
    transfer, so the local lot is sold and the remote one is untouched."""
    result = _run()
    after = result.book_after.account("alice").balances
    assert after["ETH@arbitrum"] == 5.0
    assert after["ETH"] < 5.0
    assert result.outcomes[0].status == "restored"


def test_remote_collateral_is_sold_with_the_transfer_cost_when_alone() -> None:
    data = book_data(bridge_haircut_frac=0.0, transfer_cost_frac=0.01)
    data["accounts"][0]["balances"] = {"ETH": {"qty": 10, "location": "arbitrum"}, "USDC": -25000}
    view = located_view(book_from_data(data))
    result = LiquidationEngine(
        view.book, LiquidationConfig(), LocatedExecution(view), shocks=view.prices(SHOCK)
    ).liquidate()
    after = result.book_after.account("alice").balances
    assert after["ETH@arbitrum"] < 10.0
    sold = 10.0 - after["ETH@arbitrum"]
    # the transfer cost is the execution's slippage, booked to the makers (the bridge)
    assert result.flows.makers_usd == pytest.approx(sold * 2700 * 0.01, rel=1e-9)


def test_halted_bridge_strands_its_collateral() -> None:
    """Halted: the remote lot is never sold (no credit for liquidation) and the account keeps
    it as equity; only the local lot is liquidated."""
    result = _run(state="halted")
    after = result.book_after.account("alice").balances
    assert after["ETH@arbitrum"] == 5.0
    assert after["ETH"] == pytest.approx(0.0, abs=1e-12)
    assert result.outcomes[0].status in {"spiral", "stopped", "partial"}


def test_amm_liquidation_conserves_value() -> None:
    """Sell into a constant-product pool at the oracle price; then arbitrage it back.
    Account loss = pool gain + arbitrageur gain, all valued at the oracle."""
    data = book_data()
    data["accounts"][0]["balances"] = {"ETH": 10, "USDC": -25000}
    book = book_from_data(data)
    price = 2700.0
    pool = ConstantProductPool(200.0, 200.0 * price, 0.003)
    config = LiquidationConfig.preset("generic", insurance_fund_usd=0.0)
    execution = AmmExecution({"ETH": pool})
    result = LiquidationEngine(book, config, execution, shocks=SHOCK).liquidate()
    after = result.book_after.account("alice").balances
    sold = 10.0 - after["ETH"]
    assert sold > 0.0
    swap = pool.swap(sold)
    pool_gain = sold * price - swap.quote_usd  # the pool's value at the oracle rises by this
    assert result.flows.makers_usd == pytest.approx(pool_gain, rel=1e-9)
    equity_before = 10 * price - 25000
    equity_after = after["ETH"] * price + after["USDC"]
    loss = equity_before - equity_after
    fees = result.flows.liquidator_usd + result.flows.insurance_fees_usd
    assert loss == pytest.approx(pool_gain + fees, rel=1e-9)
    # the arbitrageur buys the cheap ETH back from the pool and sells it at the oracle
    restored, bought, paid = arbitrage_to(swap.pool, price)
    assert restored.price == pytest.approx(price, rel=1e-9)
    arb_gain = bought * price - paid
    pool_value_change = restored.value_usd(price) - pool.value_usd(price)
    assert arb_gain > 0.0
    assert loss - fees == pytest.approx(pool_value_change + arb_gain, rel=1e-9)


def test_remote_lot_sells_into_its_location_pool() -> None:
    """A location naming a depth pool: the remote ETH is sold into that pool, then bridged
    home at the transfer cost; the makers' gain is the pool's gain plus the bridge's cost."""
    from crossmargin.amm.pools import ConstantProductPool
    from crossmargin.locations.execution import execution_for

    data = book_data(bridge_haircut_frac=0.0, transfer_cost_frac=0.002, depth_pool="arb-v2")
    data["pools"] = {
        "arb-v2": {"kind": "constant_product", "base": "ETH", "quote": "USDC"}
        | {"base_qty": 2000.0, "quote_qty": 5_400_000.0}
    }
    data["accounts"][0]["balances"] = {"ETH": {"qty": 10, "location": "arbitrum"}, "USDC": -25000}
    view = located_view(book_from_data(data))
    execution = execution_for(view)
    assert execution is not None
    result = LiquidationEngine(
        view.book, LiquidationConfig(), execution, shocks=view.prices(SHOCK)
    ).liquidate()
    sold = 10.0 - result.book_after.account("alice").balances["ETH@arbitrum"]
    assert sold > 0.0
    swap = ConstantProductPool(2000.0, 5_400_000.0, 0.003).swap(sold)
    pool_gain = sold * 2700 - swap.quote_usd
    bridge = swap.quote_usd * 0.002
    assert result.flows.makers_usd == pytest.approx(pool_gain + bridge, rel=1e-9)


def test_unknown_depth_pool_is_one_line() -> None:
    from crossmargin.errors import InputError

    with pytest.raises(InputError, match=r"locations\.arbitrum\.depth_pool: unknown pool"):
        book_from_data(book_data(depth_pool="nope"))


def test_transfer_delay_is_priced_and_breaks_the_tie() -> None:
    """No bridge haircut, no transfer cost, but a day of finality: with ETH's volatility given,
    a remote sale carries the price risk of the delay, d = 1 - exp(-z sigma sqrt(1/365)) at
    99 % (the lognormal move of haircuts/dynamic.price_risk), so the local lot is sold first;
    alone, the remote lot sells at p (1 - d)."""
    data = book_data(bridge_haircut_frac=0.0, finality_s=86_400.0)
    data["accounts"][0]["balances"] = {
        "ETH": [{"qty": 5, "location": "arbitrum"}, {"qty": 5}],
        "USDC": -25000,
    }
    view = located_view(book_from_data(data))
    execution = LocatedExecution(view, volatility_annual={"ETH": 0.8})
    d = 1.0 - math.exp(-norm.ppf(0.99) * 0.8 * math.sqrt(1 / 365))
    assert execution.delay_frac("ETH", 86_400.0) == pytest.approx(d, rel=1e-12)
    result = LiquidationEngine(
        view.book, LiquidationConfig(), execution, shocks=view.prices(SHOCK)
    ).liquidate()
    after = result.book_after.account("alice").balances
    assert after["ETH@arbitrum"] == 5.0 and after["ETH"] < 5.0
    filled, price = execution.fill("ETH@arbitrum", np.array([2.0]), np.array([2700.0]))
    assert (filled[0], price[0]) == (2.0, pytest.approx(2700.0 * (1 - d), rel=1e-12))


def test_a_shock_reaches_the_pool_before_the_liquidation_sells() -> None:
    """Arbitrage carries the oracle's shock into the pool first: the remote ETH sells at or
    below the shocked oracle price, never at the pool's pre-crash price."""
    from crossmargin.locations.execution import execution_for

    data = book_data(bridge_haircut_frac=0.0, depth_pool="arb-v2")
    price = data["assets"]["ETH"]["price"]
    data["pools"] = {
        "arb-v2": {"kind": "constant_product", "base": "ETH", "quote": "USDC"}
        | {"base_qty": 2000.0, "quote_qty": 2000.0 * price}
    }
    view = located_view(book_from_data(data))
    execution = execution_for(view, shocks={"ETH": -0.4})
    assert execution is not None
    assert execution.pools["arb-v2"].price == pytest.approx(price * 0.6, rel=1e-12)
    unshocked = execution_for(view)
    assert unshocked is not None and unshocked.pools["arb-v2"].price == pytest.approx(price)
    filled, average = execution.fill("ETH@arbitrum", np.array([5.0]), np.array([price * 0.6]))
    assert filled[0] == pytest.approx(5.0) and average[0] <= price * 0.6
