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
                (
                    "closed at the mark: no opposite position in profit to auto-deleverage against"
                    if run.config.bankruptcy == "adl"
                    else "closed at the mark (no depth)"
                ),
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


def settle_closed_pnl(run: _Run, groups: IntArray) -> bool:
    """Settle the PnL left in closed (zero-size) positions of ``groups`` into their settle
    balances, so that the deficit it carries is resolved like any other; whether any was.

    A position of size 0 with unsettled negative PnL (funding owed) is a loss no close can
    reach; Drift v2 ``settle_pnl`` / Mango v4 ``perp_settle_pnl`` move it into the quote
    token before bankruptcy is resolved.
    """
    arr, st = run.start, run.state
    in_group = np.zeros(arr.n_groups, dtype=bool)
    in_group[groups] = True
    rows = np.flatnonzero(in_group[arr.pos_group] & (st.pos_qty == 0.0) & (st.pos_funding != 0.0))
    if rows.size == 0:
        return False
    maint, target, _ = run.levels(st)
    owed = st.pos_funding[rows].copy()
    run.realize(st, rows, np.zeros(rows.size), run.mark_usd[arr.pos_market[rows]], 0.0)
    if run.journal:
        maint_after, target_after, _ = run.levels(st)
        for r, amount in zip(rows, owed, strict=True):
            g, m = int(arr.pos_group[r]), int(arr.pos_market[r])
            run.event(
                g,
                "settle",
                run.tables.market_symbols[m],
                "PnL of a closed position settled into its settle balance",
                (run.pos_change(int(r)), run.bal_change(int(arr.pos_settle_row[r]))),
                (maint[g], maint_after[g]),
                (target[g], target_after[g]),
                qty=-amount,
                qty_requested=-amount,
            )
    return True


def open_interest_shares(run: _Run, groups: IntArray, left_by_group: FloatArray) -> FloatArray:
    """Per market: the loss (USD) to socialize over its open interest.

    Each insolvent group's deficit left after the insurance fund is attributed to the markets
    it lost on (``-realized PnL``, USD, of its rows in the run) pro rata, up to those losses;
    the rest stays with the depositors of the asset it sits in.
    """
    arr, st = run.start, run.state
    n_markets = len(run.tables.market_symbols)
    shares = np.zeros(n_markets)
    for g in groups:
        left = float(left_by_group[g])
        if left <= 0.0:
            continue
        rows = np.flatnonzero(arr.pos_group == g)
        loss = np.maximum(-st.realized_usd[rows], 0.0)
        total = float(loss.sum())
        if total <= 0.0:
            continue
        np.add.at(shares, arr.pos_market[rows], loss * min(1.0, left / total))
    return shares


def socialize_over_open_interest(
    run: _Run, shares: FloatArray, bankrupt: np.ndarray
) -> list[tuple[int, IntArray, float, float]]:
    """Charge each market's share to its open positions outside the bankrupt groups, both
    sides, pro rata to ``|qty|`` (Drift v2 ``calculate_funding_rate_deltas_to_resolve_
    bankruptcy``: ``delta = loss / (|long| + |short|)`` per unit, paid by longs and shorts).

    Returns per market: (market, rows charged, USD charged, USD beyond them).
    """
    arr, st = run.start, run.state
    out: list[tuple[int, IntArray, float, float]] = []
    for market in np.flatnonzero(shares > 0.0):
        m = int(market)
        loss = float(shares[m])
        rows: IntArray = np.flatnonzero(
            (arr.pos_market == m) & (st.pos_qty != 0.0) & ~bankrupt[arr.pos_group]
        ).astype(np.int64)
        interest = float(np.abs(st.pos_qty[rows]).sum())
        charged = loss if interest > 0.0 else 0.0
        if rows.size and interest > 0.0:
            per_unit_usd = loss / interest
            st.pos_funding[rows] += np.abs(st.pos_qty[rows]) * per_unit_usd / run.settle_usd[m]
        run.flows.socialized_usd += loss
        run.flows.socialized_external_usd += loss - charged
        out.append((m, rows, charged, loss - charged))
    return out


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
    # perp losses to the market's open interest (Drift), the rest to depositors
    to_depositors = left.copy()
    oi_charges: list[tuple[int, IntArray, float, float]] = []
    if cfg.perp_loss_to == "open_interest" and rows.size:
        left_by_group: FloatArray = np.bincount(row_group, left, arr.n_groups).astype(float)
        shares = open_interest_shares(run, groups, left_by_group)
        by_group = np.zeros(arr.n_groups)
        for g in groups:
            g_rows = np.flatnonzero(arr.pos_group == g)
            lost = np.maximum(-st.realized_usd[g_rows], 0.0).sum()
            if lost > 0.0 and left_by_group[g] > 0.0:
                by_group[g] = min(float(lost), float(left_by_group[g]))
        frac = np.divide(
            by_group[row_group],
            left_by_group[row_group],
            out=np.zeros(rows.size),
            where=left_by_group[row_group] > 0.0,
        )
        to_depositors = left * (1.0 - frac)
        oi_charges = socialize_over_open_interest(run, shares, bankrupt)
    loss_by_asset = np.bincount(row_asset, to_depositors, run.tables.n_assets)
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
            reason = reasons.get(a, "")
            if to_depositors[i] < left[i]:
                reason = "socialized over the open interest of the markets it lost on" + (
                    f"; {reason}" if to_depositors[i] > 0.0 else ""
                )
            run.event(
                g,
                "socialize",
                symbol,
                reason,
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
    for m, charged_rows, charged, beyond in oi_charges:
        symbol = run.tables.market_symbols[m]
        interest = float(np.abs(st.pos_qty[charged_rows]).sum())
        per_unit = charged / interest if interest > 0.0 else 0.0
        run.events.append(
            LiquidationEvent(
                seq=len(run.events) + 1,
                account="(open interest)",
                bucket="",
                kind="haircut",
                instrument=symbol,
                reason=f"socialized over {symbol} open interest: {per_unit:,.6g} USD per unit "
                f"on {charged_rows.size} positions (longs and shorts)"
                + (f", {beyond:,.2f} USD beyond them" if beyond > 1e-9 else ""),
                qty=interest,
                qty_requested=interest,
                socialized_usd=charged,
                changes=tuple(run.pos_change(int(r)) for r in charged_rows),
            )
        )


def _cumsum_in_group(group: IntArray, values: FloatArray) -> FloatArray:
    """Running sum of ``values`` restarting at each run of equal (sorted) group ids."""
    total = np.cumsum(values)
    first = np.searchsorted(group, group, side="left")
    offset = np.where(first > 0, total[first - 1], 0.0) if values.size else total
    result: FloatArray = total - offset
    return result
