"""Bankruptcy resolution of the liquidation engine: who pays an insolvent account's deficit.

Run on the groups that no liquidation step can help and whose equity is negative, after every
position was offered to the market and every collateral sold (:meth:`_Run.sell_everything`):

1. :func:`close_unfilled` - positions the depth could not absorb: auto-deleveraged against
   opposite positions ranked by profit ratio x leverage at the bankruptcy price (``bankruptcy:
   adl``, dYdX v4 ``deleveraging.go``), the rest closed at the mark;
2. :func:`cover_deficits` - the deficit (-equity) is covered by the insurance fund, then
   socialized pro rata over the other depositors of each asset it sits in (Mango v4 token
   bankruptcy lowers the deposit index the same way; Drift v2 ``resolve_spot_bankruptcy``).

Each function reads and writes the run's state, flows and journal; each venue's rule is one
small, separately tested function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from crossmargin.liquidation.journal import LiquidationEvent, RowChange
from crossmargin.liquidation.policies import bankruptcy_price_usd
from crossmargin.margin.arrays import FloatArray, IntArray

if TYPE_CHECKING:
    from crossmargin.liquidation.engine import _Run


def close_unfilled(run: _Run, groups: IntArray) -> bool:
    """Positions depth could not absorb: ADL against counterparties, the rest at the mark.

    The bankruptcy price of each position carries its share of the group's deficit (by
    notional; dYdX v4 shares it by maintenance margin). Returns whether any was open.
    """
    arr, st = run.start, run.state
    in_group = np.zeros(arr.n_groups, dtype=bool)
    in_group[groups] = True
    rows = np.flatnonzero(in_group[arr.pos_group] & (st.pos_qty != 0.0))
    if rows.size == 0:
        return False
    maint, target, equity = run.levels(st)
    marks = run.mark_usd[arr.pos_market[rows]]
    notional = np.abs(st.pos_qty[rows]) * marks
    group_notional = np.bincount(arr.pos_group[rows], notional, arr.n_groups)[arr.pos_group[rows]]
    share = np.divide(
        notional, group_notional, out=np.zeros_like(notional), where=group_notional > 0
    )
    deficit = np.maximum(-equity[arr.pos_group[rows]], 0.0)
    changes: dict[int, list[RowChange]] = {}
    if run.config.bankruptcy == "adl":
        for i, r in enumerate(rows):
            if notional[i] > run.config.dust_usd:
                qty = float(st.pos_qty[r])
                price = float(bankruptcy_price_usd(qty, marks[i], -deficit[i], share[i]))
                deleverage(run, int(r), price, changes)
    left = rows[st.pos_qty[rows] != 0.0]
    closed = st.pos_qty[left].copy()
    run.realize(st, left, closed, run.mark_usd[arr.pos_market[left]], 0.0)
    maint_after, target_after, _ = run.levels(st)
    if run.journal:
        for r, qty in zip(left, closed, strict=True):
            g, m = int(arr.pos_group[r]), int(arr.pos_market[r])
            run.event(
                g,
                "unfilled",
                run.tables.market_symbols[m],
                "closed at the mark (no depth)",
                (run.pos_change(int(r)), run.bal_change(int(arr.pos_settle_row[r]))),
                (maint[g], maint_after[g]),
                (target[g], target_after[g]),
                qty=qty,
                qty_requested=qty,
                price_usd=run.mark_usd[m],
                reference_usd=run.mark_usd[m],
            )
        for g, group_changes in changes.items():
            run.event(
                g,
                "adl",
                "",
                "auto-deleveraged at the bankruptcy price",
                tuple(group_changes),
                (maint[g], maint_after[g]),
                (target[g], target_after[g]),
            )
    return True


def deleverage(run: _Run, r: int, price: float, changes: dict[int, list[RowChange]]) -> None:
    """Close position ``r`` at ``price`` against opposite positions ranked by profit ratio
    x leverage (largest first); every touched group's row changes land in ``changes``."""
    arr, st = run.start, run.state
    m, g = int(arr.pos_market[r]), int(arr.pos_group[r])
    mark, settle_px = float(run.mark_usd[m]), float(run.settle_usd[m])
    qty = float(st.pos_qty[r])
    others = np.flatnonzero(
        (arr.pos_market == m) & (np.sign(st.pos_qty) == -np.sign(qty)) & (arr.pos_group != g)
    )
    if others.size == 0:
        return
    equity = run.levels(st)[2][arr.pos_group[others]]
    entry_usd = arr.pos_entry[others] * settle_px
    upnl = st.pos_qty[others] * (mark - entry_usd)
    cost_usd = np.abs(st.pos_qty[others]) * entry_usd
    with np.errstate(over="ignore", invalid="ignore"):  # denormal costs rank first
        ratio = np.divide(upnl, cost_usd, out=np.zeros_like(upnl), where=cost_usd > 0)
        leverage = np.divide(
            np.abs(st.pos_qty[others]) * mark, equity, out=np.zeros_like(upnl), where=equity > 0
        )
        score = np.where((upnl > 0) & (equity > 0), ratio * leverage, -np.inf)
    score[np.isnan(score)] = -np.inf
    for j in np.argsort(-score, kind="stable"):
        if st.pos_qty[r] == 0.0 or not np.isfinite(score[j]):
            break
        o = int(others[j])
        # signed like position r: the smaller of the two positions
        take = (
            float(st.pos_qty[r])
            if abs(st.pos_qty[o]) >= abs(st.pos_qty[r])
            else -float(st.pos_qty[o])
        )
        rows = np.array([r, o])
        run.realize(st, rows, np.array([take, -take]), price, 0.0)
        run.flows.adl_usd += take * (price - mark)
        for row in (r, o):
            og = int(arr.pos_group[row])
            changes.setdefault(og, []).extend(
                (run.pos_change(row), run.bal_change(int(arr.pos_settle_row[row])))
            )


def cover_deficits(run: _Run, groups: IntArray) -> None:
    """Insurance fund first (in group order), then socialize per asset over depositors.

    Each group's deficit (-equity) is covered on its negative balance rows in row order; the
    fund pays rows in that order until empty. The loss left on each asset is spread pro rata
    over the positive balances of that asset outside the bankrupt groups (Mango v4 token
    bankruptcy lowers the deposit index the same way); what they cannot absorb is an
    external socialized loss.
    """
    arr, st, prices, cfg = run.start, run.state, run.tables.price_usd, run.config
    maint, target, equity = run.levels(st)
    bankrupt = np.zeros(arr.n_groups, dtype=bool)
    bankrupt[groups] = True
    rows = np.flatnonzero(bankrupt[arr.bal_group] & (st.bal_qty < 0.0))
    row_group, row_asset = arr.bal_group[rows], arr.bal_asset[rows]
    px = prices[row_asset]
    debt = -st.bal_qty[rows] * px
    # the group's deficit, taken from its rows in order
    before = _cumsum_in_group(row_group, debt) - debt
    covered = np.clip(np.maximum(-equity[row_group], 0.0) - before, 0.0, debt)
    # what the fund owes before each row: an exclusive prefix sum (cumsum(covered) - covered
    # rounds at the deficits' magnitude and could overdraw the fund by a few of its ulps)
    fund = run.flows.insurance_fund_usd
    owed_before = np.zeros_like(covered)
    np.cumsum(covered[:-1], out=owed_before[1:])
    paid = np.clip(fund - owed_before, 0.0, covered)
    left = covered - paid
    left[left <= cfg.dust_usd] = 0.0
    st.bal_qty[rows] += (paid + left) / px
    paid_usd = min(float(paid.sum()), fund)  # a float sum: never more than the fund held
    run.flows.insurance_fund_usd = fund - paid_usd
    run.flows.insurance_paid_usd += paid_usd
    loss_by_asset = np.bincount(row_asset, left, run.tables.n_assets)
    reasons: dict[int, str] = {}
    haircuts: list[tuple[int, IntArray, float]] = []
    for asset in np.flatnonzero(loss_by_asset > 0.0):
        a = int(asset)
        loss = float(loss_by_asset[a])
        depositors = np.flatnonzero(
            (arr.bal_asset == a) & (st.bal_qty > 0.0) & ~bankrupt[arr.bal_group]
        )
        pool = float(st.bal_qty[depositors].sum() * prices[a])
        haircut = min(loss / pool, 1.0) if pool > 0 else 0.0
        st.bal_qty[depositors] *= 1.0 - haircut
        external = loss - haircut * pool
        run.flows.socialized_usd += loss
        run.flows.socialized_external_usd += external
        reasons[a] = (
            f"socialized: {haircut:.6%} haircut on {depositors.size} depositors of "
            f"{run.tables.asset_symbols[a]}"
            + (f", {external:,.2f} USD beyond them" if external > 1e-9 else "")
        )
        haircuts.append((a, depositors, haircut * pool))
    if not run.journal:
        return
    maint_after, target_after, _ = run.levels(st)
    for i in np.flatnonzero(covered > 0.0):
        g, r, a = int(row_group[i]), int(rows[i]), int(row_asset[i])
        figures = (
            (run.bal_change(r),),
            (maint[g], maint_after[g]),
            (target[g], target_after[g]),
        )
        symbol, price = run.tables.asset_symbols[a], float(px[i])
        if paid[i] > 0.0:
            units = paid[i] / price
            run.event(
                g,
                "insurance",
                symbol,
                "insurance fund covers the deficit",
                *figures,
                qty=units,
                qty_requested=units,
                price_usd=price,
                reference_usd=price,
                insurance_flow_usd=-paid[i],
            )
        if left[i] > 0.0:
            units = left[i] / price
            run.event(
                g,
                "socialize",
                symbol,
                reasons[a],
                *figures,
                qty=units,
                qty_requested=units,
                price_usd=price,
                reference_usd=price,
                socialized_usd=left[i],
            )
    for a, depositors, absorbed in haircuts:
        if depositors.size:
            price = float(prices[a])
            run.events.append(
                LiquidationEvent(
                    seq=len(run.events) + 1,
                    account="(depositors)",
                    bucket="",
                    kind="haircut",
                    instrument=run.tables.asset_symbols[a],
                    reason=reasons[a],
                    qty=absorbed / price,
                    qty_requested=absorbed / price,
                    price_usd=price,
                    reference_usd=price,
                    socialized_usd=absorbed,
                    changes=tuple(run.bal_change(int(d)) for d in depositors),
                )
            )


def _cumsum_in_group(group: IntArray, values: FloatArray) -> FloatArray:
    """Running sum of ``values`` restarting at each run of equal (sorted) group ids."""
    total = np.cumsum(values)
    first = np.searchsorted(group, group, side="left")
    offset = np.where(first > 0, total[first - 1], 0.0) if values.size else total
    result: FloatArray = total - offset
    return result
