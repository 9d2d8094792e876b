"""Wrong-way risk flags and hedge suggestions."""

from __future__ import annotations

import numpy as np
import pytest

from crossmargin.book import load_demo_book
from crossmargin.errors import InputError
from crossmargin.margin.engine import MarginEngine
from crossmargin.risk.hedge import delta_hedge_trades, hedge_scenarios, suggest_hedges
from crossmargin.risk.returns import map_assets, mapped_returns, returns_from_frames
from crossmargin.risk.revalue import ScenarioRevaluer
from crossmargin.risk.var import account_returns, sensitivities
from crossmargin.risk.wrongway import wrong_way_risk
from tests.risk.risk_data import option_book, synthetic_prices

DATA = returns_from_frames(synthetic_prices(symbols=("ETH", "BTC", "GOV"), corr=0.8, days=500))


def _wrong_way(accounts: list[dict[str, object]], account: str):  # type: ignore[no-untyped-def]
    book = option_book(accounts)
    revaluer = ScenarioRevaluer.from_book(book, account)
    returns, _ = account_returns(revaluer, DATA)
    return wrong_way_risk(revaluer, returns, account_id=account)


def test_eth_collateral_behind_a_short_eth_put_is_flagged() -> None:
    w = _wrong_way(
        [
            {
                "id": "p",
                "balances": {"ETH": 100.0},
                "positions": [{"market": "ETH-P-2800", "qty": -150.0, "entry_price": 60.0}],
            }
        ],
        "p",
    )
    assert w.flagged and w.correlation > 0.3
    assert any("ETH collateral" in r for r in w.reasons)
    value, exposure_delta = w.by_asset["ETH"]
    assert value == pytest.approx(300_000.0) and exposure_delta > 0.0
    assert w.joint_tail_prob > w.tail**2  # more joint tail than independence
    assert w.joint_tail_loss_usd > 0.0


def test_governance_token_behind_a_long_in_its_ecosystem_is_flagged() -> None:
    # GOV is 0.8-correlated with ETH in the data (one ecosystem); GOV deposits back a USDC
    # borrow and a long ETH perp: both fall together
    w = _wrong_way(
        [
            {
                "id": "g",
                "balances": {"GOV": 5000.0, "USDC": -100_000.0},
                "positions": [{"market": "ETH-PERP", "qty": 100.0, "entry_price": 3000.0}],
            }
        ],
        "g",
    )
    assert w.flagged and w.correlation > 0.5
    assert any("move together" in r for r in w.reasons)


def test_a_basis_trade_is_not_wrong_way() -> None:
    w = _wrong_way(
        [
            {
                "id": "b",
                "balances": {"ETH": 100.0},
                "positions": [{"market": "ETH-PERP", "qty": -100.0, "entry_price": 3000.0}],
            }
        ],
        "b",
    )
    assert not w.flagged and w.correlation < -0.9 and w.reasons == ()
    assert w.to_dict()["flagged"] is False


def test_wrong_way_input_checks() -> None:
    book = option_book([{"id": "a", "balances": {"ETH": 1.0}}])
    revaluer = ScenarioRevaluer.from_book(book, "a")
    with pytest.raises(InputError, match="tail"):
        wrong_way_risk(revaluer, np.zeros((100, revaluer.n_assets)), tail=0.7)
    with pytest.raises(InputError, match="scenarios"):
        wrong_way_risk(revaluer, np.zeros((5, revaluer.n_assets)))


def test_delta_hedge_neutralizes_every_factor_and_matches_what_if() -> None:
    book = load_demo_book()
    data = returns_from_frames(synthetic_prices(symbols=("ETH", "BTC"), days=400))
    symbols = ("USDC", "USDT", "BTC", "ETH", "wstETH")
    mapping = map_assets(symbols, data)
    scenarios = mapped_returns(data, mapping)
    plan = suggest_hedges(book, "eth-levered", scenarios, symbols, mapping=mapping)
    # ETH and wstETH (alias of ETH) are one factor: one ETH-PERP trade hedges both
    assert [t.market for t in plan.delta_hedge.trades] == ["ETH-PERP"]
    after = plan.delta_hedge.delta_usd
    before = plan.before.delta_usd
    assert abs(before["ETH"] + before["wstETH"]) > 1e5
    assert abs(after["ETH"] + after["wstETH"]) < 1e-6 * abs(before["ETH"] + before["wstETH"])
    # health and liquidation prices come from MarginEngine.what_if
    what_if = MarginEngine(book).what_if("eth-levered", list(plan.delta_hedge.trades))
    assert plan.delta_hedge.maint_health_usd == pytest.approx(what_if.after.maint.health_usd)
    assert plan.before.maint_health_usd == pytest.approx(what_if.before.maint.health_usd)
    assert plan.delta_hedge.equity_var_usd < 0.05 * plan.before.equity_var_usd


def test_delta_hedge_of_a_short_put_sells_the_perp_by_the_option_delta() -> None:
    book = option_book(
        [
            {
                "id": "p",
                "balances": {"USDC": 50_000.0},
                "positions": [{"market": "ETH-P-2800", "qty": -100.0, "entry_price": 60.0}],
            }
        ]
    )
    revaluer = ScenarioRevaluer.from_book(book, "p")
    delta_eth = sensitivities(revaluer).equity_delta[revaluer.asset_symbols.index("ETH")]
    (trade,) = delta_hedge_trades(book, revaluer)
    assert trade.market == "ETH-PERP"
    assert trade.qty == pytest.approx(-delta_eth / 3000.0, rel=1e-12)  # mark = 3000 (basis 1)
    assert trade.qty < 0.0  # a short put is long delta


def test_budget_hedge_stays_in_budget_and_never_lowers_stressed_health() -> None:
    book = option_book(
        [
            {
                "id": "m",
                "balances": {"ETH": 80.0, "BTC": 2.0, "USDC": -200_000.0},
                "positions": [{"market": "ETH-P-2800", "qty": -60.0, "entry_price": 60.0}],
            }
        ]
    )
    scenarios, symbols, mapping, _ = hedge_scenarios(book, "m", DATA, {"GOV": "ETH"})
    budget = 150_000.0
    plan = suggest_hedges(book, "m", scenarios, symbols, budget_usd=budget, mapping=mapping)
    assert plan.budget_hedge is not None
    marks = {"ETH-PERP": 3000.0, "BTC-PERP": 90_000.0}
    notional = sum(abs(t.qty) * marks[t.market] for t in plan.budget_hedge.trades)
    assert notional <= budget * 1.0001
    assert plan.budget_hedge.stressed_health_usd >= plan.before.stressed_health_usd - 1e-6
    assert plan.budget_hedge.stressed_health_usd > plan.before.stressed_health_usd  # it helps
    assert set(plan.to_dict()) >= {"before", "delta_hedge", "budget_hedge"}
    with pytest.raises(InputError, match="budget_usd"):
        suggest_hedges(book, "m", scenarios, symbols, budget_usd=-1.0)


def test_hedge_without_returns_uses_the_stress_fallback() -> None:
    book = load_demo_book()
    scenarios, symbols, mapping, label = hedge_scenarios(book, "market-maker", None)
    assert mapping is None and "stress" in label and scenarios.shape[0] >= 20
    assert np.allclose(scenarios[: scenarios.shape[0] // 2], -scenarios[scenarios.shape[0] // 2 :])
    plan = suggest_hedges(book, "market-maker", scenarios, symbols)
    assert {t.market for t in plan.delta_hedge.trades} == {"BTC-PERP", "ETH-PERP", "SOL-PERP"}
