"""The live core: one kernel, incremental re-margining, refusals, oracle guards, margin calls,
automatic liquidation, ledger replay and restart."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sqlalchemy as sa

from crossmargin import margin
from crossmargin.book import load_demo_book
from crossmargin.errors import InputError
from crossmargin.service.config import ServiceConfig
from crossmargin.service.core import MarginCore, Refused
from crossmargin.service.ledger import IdempotencyConflict, read_state, replay_changes
from crossmargin.service.state import STATUS_NAMES
from tests.service.conftest import book_prices, ticks_at


def test_working_set_equals_the_library_kernel(core: MarginCore) -> None:
    """The dense working set and the batch library are the same kernel: at the book's prices
    (two sources quoting exactly the book price, confidence ~1e-4 of the price) maint and init
    health match `crossmargin.margin` up to the oracle's confidence adjustment, and exactly
    without it."""
    core.weight_factors[:] = 1.0  # no confidence adjustment: the book's own valuation
    core.tables = core._live_tables()
    everyone = np.arange(len(core.work.accounts))
    core.work.remargin(core.tables, everyone, core.thresholds)
    book = load_demo_book()
    reports = {r.account_id: r for r in margin(book)}
    for i, account in enumerate(core.work.accounts):
        if account.mode == "portfolio" or any(
            "-C" in p.market or "-P" in p.market for p in account.positions
        ):
            continue  # options: time to expiry runs from now in the service, from as_of in the book
        report = reports[account.id]
        assert core.work.maint_health[i] == pytest.approx(report.maint.health_usd, rel=1e-12)
        assert core.work.init_health[i] == pytest.approx(report.init.health_usd, rel=1e-12)
        assert core.work.equity[i] == pytest.approx(report.equity_usd, rel=1e-12)


def test_a_tick_remargins_only_the_exposed_accounts(core: MarginCore) -> None:
    exposed = {
        a.id
        for a in core.work.accounts
        if a.balances.get("SOL", 0.0) != 0.0
        or any(p.market == "SOL-PERP" and p.qty != 0.0 for p in a.positions)
    }
    result = core.ingest(ticks_at({"SOL": 140.0}))
    assert result["remargined_accounts"] == len(exposed) > 0
    assert result["remargined_accounts"] < len(core.work.accounts)


def test_trade_beyond_init_health_is_refused_with_the_health_it_would_leave(
    core: MarginCore,
) -> None:
    before = read_state(core.engine)
    with pytest.raises(Refused) as refused:
        core.movement("trade", "eth-levered", "k1", {"market": "ETH-PERP", "qty": 1000.0})
    assert "would leave init health" in refused.value.reason
    assert refused.value.detail["would_be"]["init_health_usd"] < 0
    assert read_state(core.engine) == before  # nothing written
    i = core.work.index["eth-levered"]
    assert core.work.summary(i) == refused.value.detail["before"]  # rows rolled back


def test_withdrawal_is_checked_and_deposit_is_idempotent(core: MarginCore) -> None:
    with pytest.raises(Refused):
        core.movement("withdrawal", "eth-levered", "w1", {"asset": "ETH", "qty": 1000.0})
    first = core.movement("deposit", "eth-levered", "d1", {"asset": "USDC", "qty": 1000.0})
    again = core.movement("deposit", "eth-levered", "d1", {"asset": "USDC", "qty": 1000.0})
    assert again.replayed and again.seq == first.seq and again.result == first.result
    with pytest.raises(IdempotencyConflict):
        core.movement("deposit", "eth-levered", "d1", {"asset": "USDC", "qty": 999.0})
    i = core.work.index["eth-levered"]
    # one deposit applied, not two: equity rose by 1,000 USDC at 1 USD
    assert first.result["after"]["equity_usd"] - first.result["before"][
        "equity_usd"
    ] == pytest.approx(1000.0)
    assert core.work.account_model(i).balances["USDC"] == pytest.approx(
        load_demo_book().account("eth-levered").balances.get("USDC", 0.0) + 1000.0
    )


def test_reducing_risk_is_allowed_below_init(core: MarginCore) -> None:
    i = core.work.index["sol-degen"]
    assert core.work.init_health[i] < 0  # the demo's over-levered account
    position = next(p for p in core.work.account_model(i).positions if p.market == "SOL-PERP")
    core.movement("trade", "sol-degen", "r1", {"market": "SOL-PERP", "qty": -0.1 * position.qty})
    with pytest.raises(Refused):
        core.movement("trade", "sol-degen", "r2", {"market": "SOL-PERP", "qty": 0.5 * position.qty})


def test_a_stale_or_single_source_price_blocks_new_risk(core: MarginCore) -> None:
    """Trap: a stale or single-source oracle price treated as fresh."""
    now = max(q.timestamp_s for q in core.oracle._feeds["ETH"].last.values())
    core.sweep(now + 61.0)  # no quote for 61 s > max_age 60 s: every asset halts
    assert core.oracle_view()["ETH"]["state"] == "halted"
    with pytest.raises(Refused, match="oracle is halted"):
        core.movement("trade", "eth-levered", "s1", {"market": "ETH-PERP", "qty": 0.1})
    ticks = [t for t in ticks_at(book_prices(), now + 62.0, sources=1)]
    core.ingest(ticks, now + 62.0)
    assert core.oracle_view()["ETH"]["state"] == "degraded"
    with pytest.raises(Refused, match="oracle is degraded"):
        core.movement("trade", "eth-levered", "s2", {"market": "ETH-PERP", "qty": 0.1})
    core.movement("deposit", "eth-levered", "s3", {"asset": "USDC", "qty": 10.0})  # no new risk


def crash(core: MarginCore, frac: float) -> None:
    prices = {
        s: p * (1.0 + frac) if s not in ("USDC", "USDT") else p for s, p in book_prices().items()
    }
    core.ingest(ticks_at(prices))


def test_a_crash_calls_margin_and_liquidates_and_the_ledger_replays(core: MarginCore) -> None:
    crash(core, -0.08)
    crash(core, -0.16)
    kinds = [e["kind"] for e in core.ledger.events(limit=None)]
    assert "margin_call" in kinds and "liquidation" in kinds and "liquidation_flows" in kinds
    for event in core.ledger.events(kinds=["liquidation"]):
        result = event["result"]
        # a liquidation never lowers maint health unless the account ended bankrupt
        assert result["status"] == "bankrupt" or (
            result["maint_health_after_usd"] >= result["maint_health_before_usd"] - 1e-6
        )
    fund = core.system["insurance_fund_usd"]
    with core.engine.connect() as connection:
        stored = connection.execute(
            sa.text("SELECT value FROM system WHERE name='insurance_fund_usd'")
        ).scalar_one()
    assert stored == fund != ServiceConfig().insurance_fund_usd
    assert replay_changes(core.ledger.events(limit=None)) == read_state(core.engine)


def test_restart_rebuilds_the_same_working_set(core: MarginCore) -> None:
    crash(core, -0.12)
    core.movement("deposit", "basis-trader", "x1", {"asset": "USDC", "qty": 5.0})
    restarted = MarginCore(core.engine, core.config)
    restarted.price_usd[:] = core.price_usd
    restarted.weight_factors[:] = core.weight_factors
    restarted.now_s = core.now_s
    restarted.tables = restarted._live_tables()
    restarted.work.remargin(
        restarted.tables, np.arange(len(restarted.work.accounts)), restarted.thresholds
    )
    for account_id, i in core.work.index.items():
        j = restarted.work.index[account_id]
        assert restarted.work.account_model(j) == core.work.account_model(i)
        assert restarted.work.maint_health[j] == core.work.maint_health[i]
        assert restarted.work.equity[j] == core.work.equity[i]
    assert restarted.system == core.system


def test_parameter_change_is_a_versioned_event_and_remargins(core: MarginCore) -> None:
    i = core.work.index["sol-degen"]
    before = core.work.maint_health[i]
    committed = core.set_asset_params("SOL", {"maint_asset_weight": 0.7}, "p1", "admin")
    assert committed.result["version"] == 2
    assert core.work.maint_health[i] < before
    with pytest.raises(InputError, match="must not exceed maint_asset_weight"):
        core.set_asset_params("SOL", {"init_asset_weight": 0.95}, "p2", "admin")
    assert replay_changes(core.ledger.events(limit=None)) == read_state(core.engine)


def test_status_names_and_summary_are_finite(core: MarginCore) -> None:
    for i in range(len(core.work.accounts)):
        summary = core.work.summary(i)
        assert summary["status"] in STATUS_NAMES
        assert all(math.isfinite(v) for v in summary.values() if isinstance(v, float))


def test_funding_moves_value_from_longs_to_shorts_and_the_house(core: MarginCore) -> None:
    equity_before = core.work.equity.copy()
    committed = core.apply_funding("BTC-PERP", 0.001, "f1", "oracle")
    paid_usd = committed.result["net_paid_by_accounts_usd"]
    # value conserved: what the accounts lost the house holds
    assert core.work.equity.sum() - equity_before.sum() == pytest.approx(-paid_usd, rel=1e-9)
    assert core.system["house_usd"] == pytest.approx(paid_usd)
    with pytest.raises(InputError, match="rate_frac"):
        core.apply_funding("BTC-PERP", 0.5, "f2", "oracle")
    assert replay_changes(core.ledger.events(limit=None)) == read_state(core.engine)


def test_dynamic_haircuts_follow_volatility_as_parameter_events(core: MarginCore) -> None:
    """A violent SOL tape (8 % one-second swings: an annualized volatility of thousands of
    percent) cuts SOL's weights through a versioned parameter event, at most the configured
    step (10 %) at a time."""
    start = core.now_s + 1.0
    sol = 142.5
    for k in range(40):
        sol *= 1.08 if k % 2 else 1 / 1.08
        core.ingest(ticks_at({"SOL": sol}, start + k), start + k)
    before = core.market_book.assets["SOL"].maint_asset_weight
    changed = core.recompute_haircuts(start + 41)
    assert [c.result["asset"] for c in changed] == ["SOL"]
    after = core.market_book.assets["SOL"].maint_asset_weight
    assert before is not None and after is not None
    assert after < before and after >= before * 0.9 - 1e-12
    assert core.ledger.events(kinds=["params"])[0]["body"]["by"] == "dynamic-haircuts"
