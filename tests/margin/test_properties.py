"""Invariants of the risk kernel on random books (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import crossmargin as cm
from crossmargin.book import Account, Book
from crossmargin.margin import INIT, MAINT, MarginEngine, Trade
from tests.strategies import books

PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _scale(book: Book) -> float:
    """A magnitude for tolerances: total absolute USD value in the book."""
    total = 1.0
    for account in book.accounts:
        for asset, qty in account.balances.items():
            total += abs(qty) * book.assets[asset].price
        for position in account.positions:
            market = book.markets[position.market]
            settle_px = book.assets[market.settle_asset].price
            underlying_px = book.assets[market.underlying].price
            mark = market.mark_price * settle_px if market.mark_price else underlying_px
            total += abs(position.qty) * (mark + position.entry_price * settle_px)
            total += abs(position.unrealized_funding) * settle_px
    return total


@PROPERTY_SETTINGS
@given(book=books(modes=("cross",)), data=st.data())
def test_adding_collateral_never_lowers_health(book: Book, data: st.DataObject) -> None:
    engine = MarginEngine(book)
    account = data.draw(st.sampled_from(book.accounts))
    asset = data.draw(st.sampled_from(list(book.assets)))
    added = data.draw(st.floats(0.0, 1e4))
    richer = account.model_copy(
        update={"balances": {**account.balances, asset: account.balances.get(asset, 0.0) + added}}
    )
    before = engine.evaluate([account])
    after = engine.evaluate([richer])
    tol = 1e-9 * _scale(book) * (1 + added * book.assets[asset].price)
    for level in (INIT, MAINT):
        assert after.health[level].sum() >= before.health[level].sum() - tol


@PROPERTY_SETTINGS
@given(book=st.one_of(books(convention="separate"), books(convention="settle_netted", plain=True)))
def test_cross_requirement_never_exceeds_isolated(book: Book) -> None:
    """max(0, -sum H_b) <= sum max(0, -H_b).

    Not asserted for settle_netted books with an asset size premium: there the pooled
    settle-asset balance is one larger borrow, and the convex premium max(w, 0.8 w + k sqrt|q|)
    charges it more than the same borrow split across buckets (found by this test; see
    docs/methodology.md).
    """
    for row in MarginEngine(book).compare():
        assert row.cross_required_usd <= row.isolated_required_usd + 1e-9 * _scale(book)
        assert row.cross_required_usd >= 0.0


@PROPERTY_SETTINGS
@given(book=books(max_accounts=5))
def test_batch_equals_single_account_evaluations(book: Book) -> None:
    engine = MarginEngine(book)
    batch = engine.margin(with_liquidation_prices=False)
    for report, account in zip(batch, book.accounts, strict=True):
        single = engine.margin([account], with_liquidation_prices=False)[0]
        assert single == report  # bit-identical: same rows, same order, same kernel


@PROPERTY_SETTINGS
@given(book=books(plain=True), k=st.floats(0.01, 100.0))
def test_scaling_quantities_scales_health(book: Book, k: float) -> None:
    """Without tiers, size premia or brackets, health is homogeneous of degree 1 in quantity."""
    scaled_accounts = [
        Account.model_validate(
            {
                "id": a.id,
                "mode": a.mode,
                "balances": {s: q * k for s, q in a.balances.items()},
                "positions": [
                    {
                        **p.model_dump(),
                        "qty": p.qty * k,
                        "unrealized_funding": p.unrealized_funding * k,
                        "isolated_collateral": {s: q * k for s, q in p.isolated_collateral.items()},
                    }
                    for p in a.positions
                ],
            }
        )
        for a in book.accounts
    ]
    engine = MarginEngine(book)
    base = engine.evaluate()
    scaled = engine.evaluate(scaled_accounts)
    tol = 1e-9 * _scale(book) * max(k, 1.0)
    np.testing.assert_allclose(scaled.health, k * base.health, rtol=1e-9, atol=tol)
    np.testing.assert_allclose(scaled.equity, k * base.equity, rtol=1e-9, atol=tol)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(book=books(max_accounts=2))
def test_maint_health_is_zero_at_the_liquidation_price(book: Book) -> None:
    engine = MarginEngine(book)
    for report, account in zip(engine.margin(), book.accounts, strict=True):
        for bucket in report.buckets:
            for asset, lp in bucket.liquidation_prices.items():
                for price in (lp.below_usd, lp.above_usd):
                    if price is None or price <= 0.0:
                        continue
                    moved = engine.margin(
                        [account], prices={asset: price}, with_liquidation_prices=False
                    )
                    moved_bucket = next(b for b in moved[0].buckets if b.name == bucket.name)
                    assert abs(moved_bucket.maint.health_usd) <= 1e-7 * _scale(book) * (
                        1 + price / book.assets[asset].price
                    )


@PROPERTY_SETTINGS
@given(book=books(modes=("cross",)), data=st.data())
def test_trade_at_mark_conserves_equity(book: Book, data: st.DataObject) -> None:
    """Trading at the mark moves value between PnL and the settle balance, never creates it."""
    assume(book.markets)
    account = data.draw(st.sampled_from(book.accounts))
    market = data.draw(st.sampled_from(list(book.markets)))
    qty = data.draw(st.floats(-1e4, 1e4))
    result = MarginEngine(book).what_if(account.id, [Trade(market, qty)])
    traded = book.markets[market]
    mark_usd = book.assets[traded.underlying].price
    if traded.mark_price is not None:
        mark_usd = traded.mark_price * book.assets[traded.settle_asset].price
    # the mark round-trips through settle units: a few ulps of the traded notional
    tolerance = 1e-9 * (_scale(book) + abs(qty) * mark_usd)
    assert math.isclose(
        result.after.equity_usd, result.before.equity_usd, rel_tol=1e-9, abs_tol=tolerance
    )


@PROPERTY_SETTINGS
@given(book=books(modes=("cross",)))
def test_health_ratio_and_health_agree_in_sign(book: Book) -> None:
    for report in cm.margin(book):
        for level in (report.init, report.maint):
            if level.weighted_liabilities_usd > 0:
                assert (level.health_ratio >= 1.0) == (level.health_usd >= 0.0) or math.isclose(
                    level.health_ratio, 1.0, rel_tol=1e-12
                )
            else:
                assert math.isinf(level.health_ratio)


@PROPERTY_SETTINGS
@given(book=books())
def test_row_contributions_add_up_to_health(book: Book) -> None:
    """The explanation comes from the kernel itself: its rows sum to the reported health."""
    engine = MarginEngine(book)
    reports = engine.margin(with_liquidation_prices=False)
    netted = book.pnl_convention == "settle_netted"
    for level in ("init", "maint"):
        rows = engine.explain(level=level)
        for report in reports:
            total = sum(
                c.contribution_usd
                for c in rows
                if c.account_id == report.account_id and not (netted and c.kind == "position")
            )
            health = getattr(report, level).health_usd
            assert math.isclose(total, health, rel_tol=1e-9, abs_tol=1e-9 * _scale(book))
