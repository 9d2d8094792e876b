"""Options in the one risk kernel: Black-76 marks and the standard per-position option margin.

Outside references:

* QuantLib's ``blackFormula`` (a test-only dependency) for the marks, to 1e-12 relative;
* the standard (per-position) option margin of bit.com's USD-margined options, "Margin Rules for
  USD Margined Options" (helpcenter.bit.com/hc/en-us/articles/11039356631321), the same rule as
  Deribit's standard option margin (deribit.freshdesk.com, "Margin requirements - options"):

  - short call: IM = max(0.15 S - OTM, 0.10 S) + mark, MM = 0.075 S + mark;
  - short put: IM = max(max(0.15 S - OTM, 0.10 S) + mark, MM),
    MM = max(0.075 S, 0.075 mark) + mark;
  - long call / put: MM = 0; IM = 0 once the premium is paid from the balance. Positions here
    carry their entry price and PnL, so the kernel charges the premium at init instead,
    IM = |q| mark (Cboe Margin Manual: long options are paid for in full, no loan value).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from crossmargin.book import book_from_data
from crossmargin.errors import InputError
from crossmargin.liquidation import LiquidationConfig, LiquidationEngine
from crossmargin.margin import MarginEngine
from crossmargin.margin.engine import evaluate_arrays
from crossmargin.margin.kernel import market_marks_usd
from crossmargin.margin.results import Trade
from tests.helpers import asset

ql = pytest.importorskip("QuantLib")

SPOT, VOL, DAYS = 3000.0, 0.6, 30.0
T_YRS = DAYS / 365.0


def _book(
    qty: float,
    strike: float,
    option_type: str = "call",
    usdc: float = 10_000.0,
    entry: float = 0.0,
    extra: dict[str, Any] | None = None,
) -> Any:
    data: dict[str, Any] = {
        "as_of": "2026-11-25T00:00:00Z",
        "assets": {"USDC": asset(1.0), "ETH": asset(SPOT, 0.8, 0.9, 1.2, 1.1)},
        "markets": {
            "ETH-OPT": {
                "kind": "option",
                "underlying": "ETH",
                "settle_asset": "USDC",
                "strike": strike,
                "expiry": "2026-12-25T00:00:00Z",
                "option_type": option_type,
                "mark_vol": VOL,
            }
        },
        "accounts": [
            {
                "id": "a",
                "balances": {"USDC": usdc},
                "positions": [{"market": "ETH-OPT", "qty": qty, "entry_price": entry}],
            }
        ],
    }
    data.update(extra or {})
    return book_from_data(data)


def _quantlib(strike: float, spot: float = SPOT, option_type: str = "call") -> float:
    kind = ql.Option.Call if option_type == "call" else ql.Option.Put
    return float(ql.blackFormula(kind, strike, spot, VOL * math.sqrt(T_YRS), 1.0))


@pytest.mark.parametrize(("strike", "option_type"), [(3200.0, "call"), (2500.0, "put")])
def test_long_option_equity_is_the_quantlib_black76_premium(
    strike: float, option_type: str
) -> None:
    report = MarginEngine(_book(1.0, strike, option_type, usdc=0.0)).margin()[0]
    premium = _quantlib(strike, option_type=option_type)
    assert report.equity_usd == pytest.approx(premium, rel=1e-12)
    # no maintenance margin for a long (its premium is its worst loss): maint health is the
    # premium; at init the premium is paid in full (Cboe Margin Manual, "long puts or calls":
    # 100 % of the purchase price), so a paid-for option lends nothing: init health 0
    assert report.maint.weighted_liabilities_usd == 0.0
    assert report.maint.health_usd == pytest.approx(premium, rel=1e-12)
    assert report.init.weighted_liabilities_usd == pytest.approx(premium, rel=1e-12)
    assert report.init.health_usd == pytest.approx(0.0, abs=1e-9 * premium)


def test_buying_an_option_takes_its_premium_from_init_health() -> None:
    """A trade at the mark leaves equity and maint health unchanged and lowers init health by
    exactly the premium, so the largest buy is bounded (before: unbounded, no cost at init)."""
    from crossmargin.margin.solvers import max_trade

    book = _book(1.0, 3200.0, "call", usdc=10_000.0)
    engine = MarginEngine(book)
    before = engine.margin()[0]
    premium = _quantlib(3200.0, option_type="call")
    after = engine.what_if("a", trades=[Trade(market="ETH-OPT", qty=10.0)]).after
    assert after.equity_usd == pytest.approx(before.equity_usd, rel=1e-12)
    assert after.maint.health_usd == pytest.approx(before.maint.health_usd, rel=1e-12)
    drop = before.init.health_usd - after.init.health_usd
    assert drop == pytest.approx(10.0 * premium, rel=1e-9)
    buy = max_trade(book, "a", "ETH-OPT", "buy")
    assert not buy.unbounded
    assert buy.amount == pytest.approx(before.init.health_usd / premium, rel=1e-6)


def test_short_otm_call_standard_margin_bitcom() -> None:
    """2 short 3500 calls at S = 3000: OTM 500, IM/unit = max(450 - 500, 300) = 300, MM = 225."""
    report = MarginEngine(_book(-2.0, 3500.0)).margin()[0]
    mark = _quantlib(3500.0)
    assert report.equity_usd == pytest.approx(10_000.0 - 2.0 * mark, rel=1e-12)
    assert report.maint.health_usd == pytest.approx(10_000.0 - 2.0 * mark - 2.0 * 225.0)
    assert report.init.health_usd == pytest.approx(10_000.0 - 2.0 * mark - 2.0 * 300.0)


def test_short_itm_call_gets_no_otm_credit() -> None:
    """Short 2800 call at S = 3000 (ITM): IM/unit = max(450 - 0, 300) = 450."""
    report = MarginEngine(_book(-1.0, 2800.0)).margin()[0]
    mark = _quantlib(2800.0)
    assert report.init.health_usd == pytest.approx(10_000.0 - mark - 450.0)
    assert report.maint.health_usd == pytest.approx(10_000.0 - mark - 225.0)


def test_short_otm_put_and_deep_itm_put_bitcom() -> None:
    """OTM 2500 put: IM/unit max(450 - 500, 300) = 300, MM 225. Deep ITM 10000 put: the mark
    (about 7000) exceeds S, so MM = 0.075 x mark, and IM = max(450, MM) = MM."""
    otm = MarginEngine(_book(-1.0, 2500.0, "put")).margin()[0]
    mark = _quantlib(2500.0, option_type="put")
    assert otm.init.health_usd == pytest.approx(10_000.0 - mark - 300.0)
    assert otm.maint.health_usd == pytest.approx(10_000.0 - mark - 225.0)
    deep = MarginEngine(_book(-1.0, 10_000.0, "put", usdc=20_000.0)).margin()[0]
    mark = _quantlib(10_000.0, option_type="put")
    assert mark > SPOT
    assert deep.maint.health_usd == pytest.approx(20_000.0 - mark - 0.075 * mark)
    assert deep.init.health_usd == pytest.approx(deep.maint.health_usd)


def test_a_price_move_revalues_the_premium() -> None:
    engine = MarginEngine(_book(1.0, 3200.0, usdc=0.0))
    for spot in (2400.0, 2700.0, 3600.0):
        report = engine.margin(prices={"ETH": spot}, with_liquidation_prices=False)[0]
        assert report.equity_usd == pytest.approx(_quantlib(3200.0, spot), rel=1e-11)


def test_liquidation_price_of_a_short_call_is_where_maint_health_crosses_zero() -> None:
    engine = MarginEngine(_book(-5.0, 3500.0, usdc=3_000.0))
    report = engine.margin()[0]
    above = report.liquidation_prices["ETH"].above_usd
    assert above is not None and SPOT < above < 2 * SPOT
    at = engine.margin(prices={"ETH": above}, with_liquidation_prices=False)[0]
    assert at.maint.health_usd == pytest.approx(0.0, abs=1e-6 * 5 * above)


def test_what_if_trade_fills_an_option_at_its_premium() -> None:
    """Selling one 3500 call at its mark: equity unchanged, maint health - 225 (0.075 S)."""
    result = MarginEngine(_book(0.0, 3500.0)).what_if("a", [Trade("ETH-OPT", -1.0)])
    assert result.after.equity_usd == pytest.approx(result.before.equity_usd, rel=1e-12)
    assert result.after.maint.health_usd == pytest.approx(10_000.0 - 225.0, rel=1e-12)
    assert result.allowed


def test_liquidation_buys_back_a_short_option_and_conserves_value() -> None:
    book = _book(-10.0, 3500.0, usdc=3_000.0)
    engine = LiquidationEngine(book, LiquidationConfig.preset("generic"), shocks={"ETH": 0.15})
    result = engine.liquidate()
    (outcome,) = result.outcomes
    assert outcome.maint_health_before_usd < 0.0
    assert outcome.status in ("restored", "partial")
    assert outcome.maint_health_after_usd > outcome.maint_health_before_usd
    assert 0.0 < -result.final.pos_qty[0] < 10.0  # bought back part of the short
    before = evaluate_arrays(result.tables, result.start).equity.sum()
    after = evaluate_arrays(result.tables, result.final).equity.sum()
    flows = result.flows
    total = after + flows.liquidator_usd + flows.insurance_fund_usd + flows.makers_usd
    assert total == pytest.approx(before, abs=1e-8 * (1.0 + abs(before)))


def test_an_option_held_without_a_vol_or_premium_is_refused_naming_the_field() -> None:
    book = _book(1.0, 3200.0)
    data = book.model_dump(mode="json")
    del data["markets"]["ETH-OPT"]["mark_vol"]
    with pytest.raises(InputError, match=r"markets\.ETH-OPT\.mark_vol"):
        MarginEngine(book_from_data(data)).margin()
    data["markets"]["ETH-OPT"]["mark_price"] = _quantlib(3200.0)
    implied = MarginEngine(book_from_data(data)).margin()[0]
    assert implied.equity_usd == pytest.approx(10_000.0 + _quantlib(3200.0), rel=1e-9)


def test_a_batch_of_option_accounts_equals_each_account_alone() -> None:
    """One kernel: a batch evaluates every account exactly as a batch of one."""
    rng = np.random.default_rng(3)
    data = _book(1.0, 3000.0).model_dump(mode="json")
    template = data["markets"].pop("ETH-OPT")
    data["accounts"] = []
    for i in range(8):
        data["markets"][f"O{i}"] = {
            **template,
            "strike": float(rng.uniform(2000, 4000)),
            "option_type": "call" if i % 2 else "put",
            "mark_vol": float(rng.uniform(0.3, 1.2)),
        }
        data["accounts"].append(
            {
                "id": f"a{i}",
                "balances": {"USDC": 5_000.0},
                "positions": [
                    {"market": f"O{i}", "qty": float(rng.uniform(-5, 5)), "entry_price": 100.0}
                ],
            }
        )
    engine = MarginEngine(book_from_data(data))
    batch = engine.margin()
    for report in batch:
        alone = engine.account_margin(report.account_id)
        assert alone.to_dict() == report.to_dict()
        assert report.init.health_usd <= report.maint.health_usd


def test_a_worthless_option_trades_at_zero() -> None:
    """A 10x out-of-the-money call at 10 % vol is worth 0.0 in float64: a what-if trade at that
    mark is allowed (found by hypothesis; other markets still need a mark > 0)."""
    data = _book(0.0, 30_000.0).model_dump(mode="json")
    data["markets"]["ETH-OPT"]["mark_vol"] = 0.1
    engine = MarginEngine(book_from_data(data))
    assert market_marks_usd(engine.tables)[0] == 0.0  # the case this test is about
    result = engine.what_if("a", [Trade("ETH-OPT", 1.0)])
    assert result.after.equity_usd == result.before.equity_usd == 10_000.0
