"""The liquidation engine: minimal partial liquidation of many accounts in one batch.

Every health figure comes from the one risk kernel (:func:`crossmargin.margin.evaluate_groups`)
over the batch's struct-of-arrays; a margin group (a cross account, or one isolated bucket) is
the unit that is liquidated. Each round, for every group below its target:

1. **Candidates**: each open position (reduce it) and each pair (liability row, collateral row)
   of the group (sell the collateral, repay the liability).
2. **Choose** the candidate with the most health gained per USD of execution cost (fees plus
   slippage, from the execution model), measured by executing each candidate in full on a
   scratch copy and re-running the kernel. Ties on zero cost go to the most health per USD
   closed.
3. **Size**: the smallest fraction ``x`` of the candidate whose execution brings the target
   health to 0, found by Illinois regula falsi on the kernel (one kernel call per iteration for
   all groups at once), then rounded *up* to whole lots.
4. **Execute** against depth, pay the liquidator's bonus and the insurance fee, realize PnL
   into the settle balance, and journal the step with health before and after.

When no candidate raises health: an insolvent group (equity < 0) is wound down and its deficit
covered by the insurance fund, then socialized or auto-deleveraged; a solvent one is reported as
a **liquidation spiral** (the bonus makes every step worse - Aave's CRV case, Nov 2022) and left
alone instead of looping.

Value is conserved: account equity + liquidator + insurance fund + makers' slippage gains
- socialized losses is unchanged by every step (float tolerance ~1e-9 relative).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from crossmargin.book.schema import Account, Book, Position
from crossmargin.errors import InputError
from crossmargin.liquidation import bankruptcy
from crossmargin.liquidation.buffers import liability_value_tables, liability_value_usd
from crossmargin.liquidation.config import LiquidationConfig
from crossmargin.liquidation.execution import ExecutionModel, OracleTransfer
from crossmargin.liquidation.journal import EventKind, LiquidationEvent, RowChange
from crossmargin.liquidation.policies import (
    aave_close_factor,
    drift_perp_if_fee,
    drift_spot_if_fee,
    spiral_threshold,
)
from crossmargin.margin.arrays import (
    INIT,
    MAINT,
    FloatArray,
    IntArray,
    MarketTables,
    PortfolioArrays,
    compile_accounts,
    compile_market,
)
from crossmargin.margin.engine import apply_oracle
from crossmargin.margin.kernel import NO_GROUPS, evaluate_groups, market_marks_usd
from crossmargin.margin.orders import evaluate_with_orders, order_rows, with_order_rows
from crossmargin.market.oracle import AggregatedPrice

KIND_POSITION, KIND_PAIR = 0, 1
ADL_WITHOUT_DEPTH = (
    "bankruptcy adl cannot apply: without depth (the book's depth: section) every position "
    "fills at the oracle, so nothing is left to auto-deleverage; deficits went to the "
    "insurance fund, then were socialized"
)
_REL_EPS = 1e-12
# group status, ordered: an account reports the worst of its groups
HEALTHY, RESTORED, PARTIAL, STOPPED, SPIRAL, BANKRUPT = range(6)
STATUS_NAMES = ("healthy", "restored", "partial", "stopped", "spiral", "bankrupt")


@dataclass
class Flows:
    """Where value went, cumulative over a run (USD)."""

    liquidator_usd: float = 0.0
    insurance_fund_usd: float = 0.0  # the fund's balance
    insurance_fees_usd: float = 0.0
    insurance_paid_usd: float = 0.0
    makers_usd: float = 0.0  # slippage gained by the book's counterparties
    socialized_usd: float = 0.0  # losses passed to depositors / open interest
    socialized_external_usd: float = 0.0  # the part beyond the batch's own depositors
    adl_usd: float = 0.0  # losses taken by auto-deleveraged counterparties

    def to_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class AccountOutcome:
    account: str
    status: str  # 'healthy', 'restored', 'partial', 'bankrupt', 'spiral', 'stopped'
    equity_before_usd: float
    equity_after_usd: float
    maint_health_before_usd: float
    maint_health_after_usd: float
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class LiquidationResult:
    """What a run did: events, outcomes per account, flows, and the book after."""

    config: LiquidationConfig
    tables: MarketTables
    start: PortfolioArrays
    final: PortfolioArrays
    events: list[LiquidationEvent]
    flows: Flows
    #: per account: status code (index into STATUS_NAMES), and the outcome figures as columns
    #: (equity before/after, maint health before/after, steps); outcomes are built on demand
    account_status: IntArray
    account_columns: tuple[FloatArray, ...]
    book_after: Book | None = None
    notes: list[str] = field(default_factory=list)  # why a configured rule could not apply

    @cached_property
    def outcomes(self) -> list[AccountOutcome]:
        """One :class:`AccountOutcome` per account of the batch."""
        c = self.account_columns
        return [
            AccountOutcome(
                account=account,
                status=STATUS_NAMES[int(self.account_status[i])],
                equity_before_usd=float(c[0][i]),
                equity_after_usd=float(c[1][i]),
                maint_health_before_usd=float(c[2][i]),
                maint_health_after_usd=float(c[3][i]),
                steps=int(c[4][i]),
            )
            for i, account in enumerate(self.start.account_ids)
        ]

    @property
    def liquidated(self) -> list[AccountOutcome]:
        return [o for o in self.outcomes if o.status != "healthy"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "notes": list(self.notes),
            "flows": self.flows.to_dict(),
            "accounts": [o.to_dict() for o in self.liquidated],
            "events": [
                {k: v for k, v in e.to_dict().items() if k != "changes"} for e in self.events
            ],
        }


@dataclass
class _Candidates:
    group: IntArray
    kind: IntArray
    row_a: IntArray  # position row, or liability balance row
    row_b: IntArray  # collateral balance row (pairs), -1 for positions
    if_frac: FloatArray  # insurance fee of the step, fraction (fixed, or Drift's adaptive)

    def take(self, index: IntArray) -> _Candidates:
        return _Candidates(
            self.group[index],
            self.kind[index],
            self.row_a[index],
            self.row_b[index],
            self.if_frac[index],
        )

    @property
    def size(self) -> int:
        return int(self.group.size)


@dataclass
class _Exec:
    """Per-candidate record of one execution (arrays aligned with the candidates)."""

    filled: FloatArray  # signed units executed (position: closed qty; pair: collateral sold)
    requested: FloatArray
    price: FloatArray
    reference: FloatArray
    slippage: FloatArray
    fee_liq: FloatArray
    fee_if: FloatArray
    notional: FloatArray  # USD at the reference


@dataclass
class _State:
    bal_qty: FloatArray
    pos_qty: FloatArray
    pos_funding: FloatArray
    executed: dict[tuple[int, int], FloatArray] = field(default_factory=dict)
    #: per position row: PnL realized by the run (USD; fees apart) - a perp's bankruptcy loss
    realized_usd: FloatArray = field(default_factory=lambda: np.zeros(0))

    def copy(self) -> _State:
        return _State(
            self.bal_qty.copy(),
            self.pos_qty.copy(),
            self.pos_funding.copy(),
            {k: v.copy() for k, v in self.executed.items()},
            self.realized_usd.copy(),
        )


class LiquidationEngine:
    """Liquidate the accounts of a book (or a compiled batch) under a policy.

    ``prices`` override asset prices (USD); ``shocks`` move them (``{"BTC": -0.3}`` is -30 %, as
    in :func:`crossmargin.risk.run_stress`);
    an oracle snapshot prices and weights the book as in :class:`~crossmargin.margin.
    MarginEngine`. ``execution`` defaults to :class:`OracleTransfer`.
    """

    def __init__(
        self,
        book: Book,
        config: LiquidationConfig | None = None,
        execution: ExecutionModel | None = None,
        *,
        prices: Mapping[str, float] | None = None,
        shocks: Mapping[str, float] | None = None,
        oracle: Mapping[str, AggregatedPrice] | None = None,
    ) -> None:
        self.book = book
        self.config = config or LiquidationConfig()
        self.execution = execution or OracleTransfer()
        tables = compile_market(book)
        if oracle:
            tables = apply_oracle(tables, oracle)
        price_usd = tables.prices_with(dict(prices or {}))
        for symbol, move in (shocks or {}).items():
            a = tables.asset_id(symbol, f"shock.{symbol}")
            if not (math.isfinite(move) and move > -1.0):
                raise InputError(f"shock.{symbol}", move, "a price cannot fall 100 % or more")
            price_usd[a] *= 1.0 + move
        self.tables = replace(tables, price_usd=price_usd)

    def liquidate(self, accounts: Sequence[Account] | None = None) -> LiquidationResult:
        """Liquidate every liquidatable account; the others are counterparties for ADL.

        An account liquidatable with its open orders (margined at their worst-case fill,
        :mod:`crossmargin.margin.orders`) first has them all cancelled - one ``cancel`` event,
        as every venue does before it closes a position (Drift: "every liquidation
        instruction first cancels the user's open orders") - and is then liquidated on its
        positions alone; one that cancelling restores reports ``restored``.
        """
        chosen = list(self.book.accounts if accounts is None else accounts)
        cancels = self.cancel_orders(chosen)
        arrays = compile_accounts(self.tables, chosen, settle_rows=True)
        result = liquidate_arrays(self.tables, arrays, self.config, self.execution)
        if cancels:
            result.events = [
                *cancels,
                *(replace(e, seq=e.seq + len(cancels)) for e in result.events),
            ]
            ids = [a.id for a in chosen]
            for event in cancels:
                i = ids.index(event.account)
                if result.account_status[i] == HEALTHY:
                    result.account_status[i] = RESTORED
            cancelled = {e.account for e in cancels}
            chosen = [
                a.model_copy(update={"orders": []}) if a.id in cancelled else a for a in chosen
            ]
        result.book_after = book_with_arrays(self.book, self.tables, result.final, chosen)
        if self.config.bankruptcy == "adl" and isinstance(self.execution, OracleTransfer):
            result.notes.append(ADL_WITHOUT_DEPTH)
        return result

    def cancel_orders(self, accounts: Sequence[Account]) -> list[LiquidationEvent]:
        """One ``cancel`` event per account whose maint health with its orders is < 0."""
        if not any(a.orders for a in accounts):
            return []
        with_rows = with_order_rows(accounts)
        arrays = compile_accounts(self.tables, with_rows)
        orders = order_rows(self.tables, arrays, with_rows)
        wa, wl, _ = evaluate_with_orders(self.tables, arrays, orders, MAINT)
        wa0, wl0, _ = evaluate_groups(self.tables, arrays, MAINT)
        n = arrays.n_accounts
        worst = np.full(n, np.inf)
        np.minimum.at(worst, arrays.group_account, wa - wl)
        before = np.bincount(arrays.group_account, wa - wl, n)
        after = np.bincount(arrays.group_account, wa0 - wl0, n)
        events: list[LiquidationEvent] = []
        for i, account in enumerate(accounts):
            if not account.orders or worst[i] >= 0.0:
                continue
            markets = sorted({o.market for o in account.orders})
            events.append(
                LiquidationEvent(
                    seq=len(events) + 1,
                    account=account.id,
                    bucket="free" if account.mode == "isolated" else "cross",
                    kind="cancel",
                    instrument=",".join(markets),
                    reason=f"{len(account.orders)} open orders cancelled before liquidation",
                    maint_health_before_usd=float(before[i]),
                    maint_health_after_usd=float(after[i]),
                    target_health_before_usd=float(before[i]),
                    target_health_after_usd=float(after[i]),
                )
            )
        return events


def liquidate_arrays(
    tables: MarketTables,
    arrays: PortfolioArrays,
    config: LiquidationConfig,
    execution: ExecutionModel | None = None,
    *,
    journal: bool = True,
) -> LiquidationResult:
    """Run the engine on a compiled batch (compiled with ``settle_rows=True``)."""
    if arrays.pos_qty.size and np.any(arrays.pos_settle_row < 0):
        raise InputError("arrays", "pos_settle_row", "compile with settle_rows=True")
    run = _Run(tables, arrays, config, execution or OracleTransfer(), journal)
    run.execute()
    return run.result()


class _Run:
    def __init__(
        self,
        tables: MarketTables,
        arrays: PortfolioArrays,
        config: LiquidationConfig,
        execution: ExecutionModel,
        journal: bool,
    ) -> None:
        self.tables = tables
        self.start = arrays
        self.config = config
        self.execution = execution
        self.journal = journal
        self.state = _State(
            arrays.bal_qty.copy(),
            arrays.pos_qty.copy(),
            arrays.pos_funding.copy(),
            realized_usd=np.zeros(arrays.pos_qty.size),
        )
        self.flows = Flows(insurance_fund_usd=config.insurance_fund_usd)
        self.events: list[LiquidationEvent] = []
        self.steps = np.zeros(arrays.n_groups, dtype=np.int64)
        self.status = np.full(arrays.n_groups, HEALTHY, dtype=np.int64)
        self.group_names = arrays.group_names(tables)
        prices = tables.price_usd
        self.mark_usd = market_marks_usd(tables)  # an option's is its premium
        self.settle_usd = prices[tables.market_settle]
        fees_m = [config.fee_for_market(s) for s in tables.market_symbols]
        fees_a = [config.fee_for_asset(s) for s in tables.asset_symbols]
        self.market_fee = np.array(
            [[f.liquidator_frac, f.insurance_frac] for f in fees_m], dtype=np.float64
        ).reshape(-1, 2)
        asset_fee = np.array(
            [[f.liquidator_frac, f.insurance_frac] for f in fees_a], dtype=np.float64
        ).reshape(-1, 2)
        self.asset_fee = asset_fee
        # Drift's buffer on liability value: a second kernel evaluation on unit-weight tables
        self.unit_tables = (
            liability_value_tables(tables) if config.buffer_on == "liability_value" else None
        )
        self.market_lot = np.array([config.lot(s) for s in tables.market_symbols])
        self.asset_lot = np.array([config.lot(s) for s in tables.asset_symbols])

    # -- kernel ---------------------------------------------------------------------------------
    def arrays_of(self, state: _State) -> PortfolioArrays:
        return self.start.with_quantities(state.bal_qty, state.pos_qty, state.pos_funding)

    def health(
        self, state: _State, level: int, groups: IntArray = NO_GROUPS
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        return evaluate_groups(self.tables, self.arrays_of(state), level, groups=groups)

    def levels(
        self, state: _State, groups: IntArray = NO_GROUPS
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Maint health, the policy's target figure (driven to >= 0) and equity, per group.

        One kernel call at maint; a second at init only for the ``init`` target. With
        ``groups``, only those entries are computed (trial states touch only their groups) and
        the others are 0: callers read ``[groups]`` only.
        """
        wa, wl, equity = self.health(state, MAINT, groups)
        sel: IntArray | slice = groups if groups.size else slice(None)
        maint = np.zeros(wa.size)
        maint[sel] = wa[sel] - wl[sel]
        if self.config.target == "close_factor":
            return maint, maint, equity  # stop once maint health (Aave HF 1) is back
        target = np.zeros(wa.size)
        if self.config.target == "init":
            wa_i, wl_i, _ = self.health(state, INIT, groups)
            target[sel] = wa_i[sel] - wl_i[sel]
        elif self.unit_tables is not None:  # maint_buffer on liability value (Drift v2)
            value = liability_value_usd(self.unit_tables, self.arrays_of(state), groups)
            target[sel] = maint[sel] - self.config.buffer_frac * value[sel]
        else:  # maint_buffer on the requirement
            target[sel] = wa[sel] - wl[sel] * (1.0 + self.config.buffer_frac)
        return maint, target, equity

    def pair_gross_net(self, a_c: IntArray, if_frac: FloatArray) -> tuple[FloatArray, FloatArray]:
        """A repayment's sale proceeds / gross = value repaid at the oracle; debt cut = value
        x net (the insurance fee taken on the collateral, or kept from the repayment)."""
        if self.config.insurance_fee_on == "asset":
            return 1.0 + self.asset_fee[a_c, 0] + if_frac, np.ones(a_c.size)
        return 1.0 + self.asset_fee[a_c, 0], 1.0 - if_frac

    # -- the loop -------------------------------------------------------------------------------
    def execute(self) -> None:
        maint, target, equity = self.levels(self.state)
        self.maint_before, self.equity_before = maint, equity
        active = maint < 0.0
        self.status[active] = PARTIAL
        for _ in range(self.config.max_steps):
            need = active & (target < 0.0)
            self.status[active & ~need & (self.status == PARTIAL)] = RESTORED
            if not need.any():
                return
            groups = np.flatnonzero(need)
            cands = self.candidates(groups, target)
            chosen, stuck = self.choose(groups, cands, maint, target)
            if chosen.size:  # before any bankruptcy: its haircuts would make maint stale
                self.commit(chosen, self.size(chosen, target), maint, target)
                self.steps[chosen.group] += 1
            if stuck.size:
                self.resolve_stuck(stuck)
                active[stuck] = False
            maint, target, _ = self.levels(self.state)
        left = np.flatnonzero(active & (target < 0.0))
        self.status[left] = STOPPED
        for g in left:
            self.event(
                int(g),
                "stopped",
                "",
                f"max_steps={self.config.max_steps} reached",
                (),
                (maint[g], maint[g]),
                (target[g], target[g]),
            )

    # -- candidates -----------------------------------------------------------------------------
    def candidates(self, groups: IntArray, target: FloatArray | None = None) -> _Candidates:
        """Every open position and every (liability, collateral) pair of the groups.

        Each carries its insurance fee: the schedule's, or under ``drift_adaptive`` Drift's
        fee at the group's current shortage ``-target`` (computed here when not given).
        """
        arr, st, dust = self.start, self.state, self.config.dust_usd
        in_group = np.zeros(arr.n_groups, dtype=bool)
        in_group[groups] = True
        notional = np.abs(st.pos_qty) * self.mark_usd[arr.pos_market]
        pos_rows = np.flatnonzero(in_group[arr.pos_group] & (notional > dust))
        value = st.bal_qty * self.tables.price_usd[arr.bal_asset]
        live = in_group[arr.bal_group]
        liab_rows = np.flatnonzero(live & (value < -dust))
        asset_rows = np.flatnonzero(live & (value > dust))
        # cross join liabilities with the same group's assets (rows are sorted by group)
        asset_groups = arr.bal_group[asset_rows]
        lo = np.searchsorted(asset_groups, arr.bal_group[liab_rows], side="left")
        counts = np.searchsorted(asset_groups, arr.bal_group[liab_rows], side="right") - lo
        rep_liab = np.repeat(liab_rows, counts)
        offsets = np.arange(rep_liab.size) - np.repeat(np.cumsum(counts) - counts, counts)
        rep_asset = asset_rows[np.repeat(lo, counts) + offsets]
        distinct = arr.bal_asset[rep_liab] != arr.bal_asset[rep_asset]
        rep_liab, rep_asset = rep_liab[distinct], rep_asset[distinct]
        group = np.concatenate((arr.pos_group[pos_rows], arr.bal_group[rep_liab]))
        kind = np.concatenate(
            (np.full(pos_rows.size, KIND_POSITION), np.full(rep_liab.size, KIND_PAIR))
        )
        row_a = np.concatenate((pos_rows, rep_liab))
        row_b = np.concatenate((np.full(pos_rows.size, -1), rep_asset))
        order = np.argsort(group, kind="stable")
        cands = _Candidates(
            group[order], kind[order], row_a[order], row_b[order], np.zeros(group.size)
        )
        cands.if_frac = self.insurance_fees(cands, target)
        return cands

    def insurance_fees(self, cands: _Candidates, target: FloatArray | None) -> FloatArray:
        """Insurance fee fraction of each candidate (see :meth:`candidates`)."""
        arr, st, tables, cfg = self.start, self.state, self.tables, self.config
        pos = cands.kind == KIND_POSITION
        m = arr.pos_market[cands.row_a[pos]]
        liab, coll = cands.row_a[~pos], cands.row_b[~pos]
        a_l, a_c = arr.bal_asset[liab], arr.bal_asset[coll]
        fee = np.zeros(cands.size)
        fee[pos] = self.market_fee[m, 1]
        fee[~pos] = self.asset_fee[a_c, 1]
        if cfg.insurance_fee_rule == "fixed" or cands.size == 0:
            return fee
        if target is None:
            target = self.levels(st)[1]
        shortage = np.maximum(-target[cands.group], 0.0)
        # the margin ratio / liability weight with the buffer, as Drift passes them
        on_value = cfg.buffer_on == "liability_value" and cfg.target == "maint_buffer"
        mr = tables.margin_frac[MAINT, m]
        lw = tables.liab_weight[MAINT, a_l]
        buffer = cfg.buffer_frac if cfg.target == "maint_buffer" else 0.0
        mr_buf = mr + buffer if on_value else mr * (1.0 + buffer)
        lw_buf = lw + buffer if on_value else lw * (1.0 + buffer)
        fee[pos] = drift_perp_if_fee(
            shortage[pos],
            st.pos_qty[cands.row_a[pos]],
            self.mark_usd[m],
            mr_buf,
            self.market_fee[m, 0],
            self.market_fee[m, 1],
        )
        fee[~pos] = drift_spot_if_fee(
            shortage[~pos],
            st.bal_qty[liab],
            tables.price_usd[a_l],
            tables.asset_weight[MAINT, a_c],
            1.0 + self.asset_fee[a_c, 0],
            lw_buf,
            1.0,
            self.asset_fee[a_c, 1],
        )
        return fee

    def choose(
        self, groups: IntArray, cands: _Candidates, maint: FloatArray, target: FloatArray
    ) -> tuple[_Candidates, IntArray]:
        """Best candidate per group by health gained per USD of cost; groups with none."""
        n = cands.size
        gain = np.full(n, -np.inf)
        cost = np.zeros(n)
        notional = np.zeros(n)
        rank = _rank_in_group(cands.group)
        for r in range(int(rank.max(initial=-1)) + 1):
            idx = np.flatnonzero(rank == r)
            sub = cands.take(idx)
            trial = self.state.copy()
            rec = self.apply(trial, sub, np.ones(idx.size))
            g = sub.group
            maint_after, target_after, _ = self.levels(trial, g)
            # never a step that lowers maint health (the insolvent are wound down apart)
            keeps_maint = maint_after[g] - maint[g] >= -1e-9 * np.abs(maint[g])
            gain[idx] = np.where(keeps_maint, target_after[g] - target[g], -np.inf)
            cost[idx] = rec.slippage + rec.fee_liq + rec.fee_if
            notional[idx] = rec.notional
        denom = cost + _REL_EPS * np.maximum(notional, 1.0)
        score = np.full(n, -np.inf)
        useful = (gain > self.config.dust_usd) & np.isfinite(gain) & (denom > 0)
        np.divide(gain, denom, out=score, where=useful)
        ok = np.flatnonzero(np.isfinite(score))
        order = ok[np.lexsort((score[ok], cands.group[ok]))]  # by group, then score ascending
        last = np.ones(order.size, dtype=bool)
        last[:-1] = cands.group[order[1:]] != cands.group[order[:-1]]
        best = np.full(self.start.n_groups, -1, dtype=np.int64)
        best[cands.group[order[last]]] = order[last]
        chosen_idx = best[groups]
        return cands.take(chosen_idx[chosen_idx >= 0]), groups[chosen_idx < 0]

    # -- sizing ---------------------------------------------------------------------------------
    def size(self, chosen: _Candidates, target: FloatArray) -> FloatArray:
        """Smallest fraction in (0, 1] that brings the target to 0, rounded up to lots."""
        if self.config.target == "close_factor":
            return self.round_to_lots(chosen, self.close_factor_fraction(chosen))
        g = chosen.group
        lo, hi = np.zeros(g.size), np.ones(g.size)
        f_lo = target[g].copy()
        f_hi = self.trial_target(chosen, hi)
        full = f_hi < 0.0  # even the whole candidate is not enough: take it all
        solve = ~full
        side = np.zeros(g.size)
        tol = 1e-9 * np.maximum(np.abs(target[g]), 1.0)
        for _ in range(80):
            if not solve.any():
                break
            denom = np.where(solve, f_hi - f_lo, 1.0)
            mid = np.clip(lo - f_lo * (hi - lo) / denom, lo + 1e-16, hi)
            # revalue only the groups still solving (others keep their bracket)
            open_ = np.flatnonzero(solve)
            f_mid = f_hi.copy()
            f_mid[open_] = self.trial_target(chosen.take(open_), mid[open_])
            up = solve & (f_mid < 0.0)
            down = solve & (f_mid >= 0.0)
            lo, f_lo = np.where(up, mid, lo), np.where(up, f_mid, f_lo)
            hi, f_hi = np.where(down, mid, hi), np.where(down, f_mid, f_hi)
            # Illinois: when the same end moves twice, halve the other end's value
            f_hi = np.where(up & (side > 0), 0.5 * f_hi, f_hi)
            f_lo = np.where(down & (side < 0), 0.5 * f_lo, f_lo)
            side = np.where(up, 1.0, np.where(down, -1.0, side))
            solve &= ~((down & (f_mid <= tol)) | (hi - lo <= 1e-13))
        return self.round_to_lots(chosen, np.where(full, 1.0, hi))

    def trial_target(self, chosen: _Candidates, x: FloatArray) -> FloatArray:
        trial = self.state.copy()
        self.apply(trial, chosen, x)
        return self.levels(trial, chosen.group)[1][chosen.group]

    def full_units(self, st: _State, chosen: _Candidates) -> FloatArray:
        """Units of the full candidate: |position qty| or collateral that repays the debt.

        Never negative: a pair listed before an earlier step of the same batch turned its
        collateral row negative (a position close realizing a loss or funding into it) or its
        debt row non-negative sells nothing - a negative sale would buy collateral with new
        debt and charge negative fees (:meth:`sell_everything` runs ranks of one candidate
        list in turn).
        """
        units = np.zeros(chosen.size)
        pos = chosen.kind == KIND_POSITION
        units[pos] = np.abs(st.pos_qty[chosen.row_a[pos]])
        liab, coll = chosen.row_a[~pos], chosen.row_b[~pos]
        collateral = np.minimum(
            st.bal_qty[coll], self.collateral_for(st, liab, coll, chosen.if_frac[~pos])
        )
        units[~pos] = np.maximum(collateral, 0.0)
        return units

    def collateral_for(
        self, st: _State, liab: IntArray, coll: IntArray, if_frac: FloatArray, share: Any = 1.0
    ) -> Any:
        """Collateral units whose sale at the oracle repays ``share`` of each debt, with fees."""
        arr, prices = self.start, self.tables.price_usd
        a_c = arr.bal_asset[coll]
        debt_usd = -st.bal_qty[liab] * prices[arr.bal_asset[liab]] * share
        gross, net = self.pair_gross_net(a_c, if_frac)
        return debt_usd * gross / net / prices[a_c]

    def close_factor_fraction(self, chosen: _Candidates) -> FloatArray:
        """Aave v3: repay 50 % of the debt, 100 % below HF 0.95 or under $2000 (v3.3)."""
        cfg, st, arr, prices = self.config, self.state, self.start, self.tables.price_usd
        wa, wl, _ = self.health(st, MAINT)
        with np.errstate(over="ignore"):  # a tiny debt: HF is +inf, which is right
            hf = np.divide(wa, wl, out=np.full_like(wa, np.inf), where=wl > 0)
        x = np.ones(chosen.size)
        pair = chosen.kind == KIND_PAIR
        liab, coll = chosen.row_a[pair], chosen.row_b[pair]
        cf = np.asarray(
            aave_close_factor(
                hf[chosen.group[pair]],
                st.bal_qty[coll] * prices[arr.bal_asset[coll]],
                -st.bal_qty[liab] * prices[arr.bal_asset[liab]],
                close_factor=cfg.close_factor,
                full_close_health_factor=cfg.full_close_health_factor,
                min_usd=cfg.close_factor_min_usd,
            )
        )
        units = self.full_units(st, chosen)[pair]
        want = self.collateral_for(st, liab, coll, chosen.if_frac[pair], cf)
        x[pair] = np.minimum(1.0, np.divide(want, units, out=np.ones_like(want), where=units > 0))
        pos_hf = hf[chosen.group[~pair]] > cfg.full_close_health_factor
        x[~pair] = np.where(pos_hf, cfg.close_factor, 1.0)
        return x

    def round_to_lots(self, chosen: _Candidates, x: FloatArray) -> FloatArray:
        """Round each amount up to whole lots of the market closed or the collateral sold."""
        arr = self.start
        pos = chosen.kind == KIND_POSITION
        lot = np.zeros(chosen.size)
        lot[pos] = self.market_lot[arr.pos_market[chosen.row_a[pos]]]
        lot[~pos] = self.asset_lot[arr.bal_asset[chosen.row_b[~pos]]]
        units = self.full_units(self.state, chosen)
        has_lot = (lot > 0) & (units > 0)
        lots = np.ceil(x * units / np.where(has_lot, lot, 1.0) - 1e-9)
        rounded = np.minimum(1.0, lots * lot / np.where(has_lot, units, 1.0))
        return np.where(has_lot, rounded, x)

    # -- execution ------------------------------------------------------------------------------
    def fill(
        self,
        state: _State,
        key: tuple[int, int],
        symbol: str,
        groups: IntArray,
        qty: FloatArray,
        reference: FloatArray,
    ) -> tuple[FloatArray, FloatArray]:
        """Fill ``qty`` after what this group already executed on the instrument (depth used)."""
        done = state.executed.setdefault(key, np.zeros(self.start.n_groups))
        before = done[groups]
        f0, p0 = self.execution.fill(symbol, before, reference)
        f1, p1 = self.execution.fill(symbol, before + qty, reference)
        filled = f1 - f0
        value = f1 * p1 - f0 * p0
        # a fill lost in rounding (|filled| ~ 1e-12 of the total) is priced at the marginal fill
        real = np.abs(filled) > 1e-12 * np.maximum(np.abs(f1), np.abs(f0))
        price = np.divide(value, filled, out=p1.copy(), where=real)
        price = np.where(price > 0.0, price, reference)
        done[groups] = before + filled
        return filled, price

    def fill_by_symbol(
        self,
        state: _State,
        kind: int,
        index: IntArray,
        groups: IntArray,
        qty: FloatArray,
        reference: FloatArray,
    ) -> tuple[FloatArray, FloatArray]:
        """:meth:`fill` for orders on many instruments (markets if kind 0, else assets)."""
        symbols = self.tables.market_symbols if kind == 0 else self.tables.asset_symbols
        filled = np.zeros(qty.size)
        price = reference.copy()
        for i in np.unique(index):
            sel = index == i
            filled[sel], price[sel] = self.fill(
                state, (kind, int(i)), symbols[i], groups[sel], qty[sel], reference[sel]
            )
        return filled, price

    def apply(self, state: _State, cands: _Candidates, x: FloatArray) -> _Exec:
        """Execute fraction ``x`` of each candidate on ``state`` (one candidate per group)."""
        n = cands.size
        rec = _Exec(*(np.zeros(n) for _ in range(8)))
        arr, prices = self.start, self.tables.price_usd
        pos = np.flatnonzero(cands.kind == KIND_POSITION)
        if pos.size:
            r, g = cands.row_a[pos], cands.group[pos]
            m = arr.pos_market[r]
            close = x[pos] * state.pos_qty[r]
            ref = self.mark_usd[m]
            filled, price = self.fill_by_symbol(state, 0, m, g, close, ref)
            fee_liq = np.abs(filled) * ref * self.market_fee[m, 0]
            fee_if = np.abs(filled) * ref * cands.if_frac[pos]
            self.realize(state, r, filled, price, fee_liq + fee_if)
            rec.filled[pos], rec.requested[pos], rec.price[pos] = filled, close, price
            rec.reference[pos] = ref
            rec.slippage[pos] = filled * (ref - price)
            rec.fee_liq[pos], rec.fee_if[pos] = fee_liq, fee_if
            rec.notional[pos] = np.abs(close) * ref
        pair = np.flatnonzero(cands.kind == KIND_PAIR)
        if pair.size:
            liab, coll, g = cands.row_a[pair], cands.row_b[pair], cands.group[pair]
            a_l, a_c = arr.bal_asset[liab], arr.bal_asset[coll]
            p_l, p_c = prices[a_l], prices[a_c]
            sell = x[pair] * self.full_units(state, cands.take(pair))
            sold, px_c = self.fill_by_symbol(state, 1, a_c, g, sell, p_c)
            if_frac = cands.if_frac[pair]
            gross, net = self.pair_gross_net(a_c, if_frac)
            value = sold * px_c / gross  # repaid at the oracle, fees apart
            fee_liq = value * self.asset_fee[a_c, 0]
            fee_if = value * if_frac
            repay_usd = value * net
            # liabilities are bought back in full at the model's average price
            _, px_l = self.fill_by_symbol(state, 1, a_l, g, -repay_usd / p_l, p_l)
            repaid = repay_usd / px_l
            state.bal_qty[coll] -= sold
            state.bal_qty[liab] += repaid
            rec.filled[pair], rec.requested[pair], rec.price[pair] = sold, sell, px_c
            rec.reference[pair] = p_c
            rec.slippage[pair] = sold * (p_c - px_c) + repaid * (px_l - p_l)
            rec.fee_liq[pair], rec.fee_if[pair] = fee_liq, fee_if
            rec.notional[pair] = sell * p_c
        return rec

    def realize(
        self, state: _State, rows: IntArray, closed: FloatArray, price: Any, fees_usd: Any
    ) -> None:
        """Close ``closed`` of position ``rows`` at ``price`` (USD): PnL, the closed share of
        funding, and fees go to the settle balance (``np.add.at``: rows may share it)."""
        arr = self.start
        settle_px = self.settle_usd[arr.pos_market[rows]]
        realized = closed * (price / settle_px - arr.pos_entry[rows])
        # funding is settled in proportion to the quantity closed: health stays continuous in
        # the amount, so the sizing search finds the smallest close
        qty = state.pos_qty[rows]
        share = np.divide(closed, qty, out=np.ones_like(qty), where=qty != 0.0)
        funding = state.pos_funding[rows] * share
        np.add.at(
            state.bal_qty,
            arr.pos_settle_row[rows],
            realized - funding - fees_usd / settle_px,
        )
        state.pos_funding[rows] -= funding
        state.pos_qty[rows] -= closed
        if state.realized_usd.size:
            np.add.at(state.realized_usd, rows, (realized - funding) * settle_px)

    def commit(
        self, chosen: _Candidates, x: FloatArray, maint: FloatArray, target: FloatArray
    ) -> None:
        """Execute the chosen steps on the state; book the flows; journal each step."""
        rec = self.apply(self.state, chosen, x)
        fl = self.flows
        fl.liquidator_usd += float(rec.fee_liq.sum())
        fl.insurance_fees_usd += float(rec.fee_if.sum())
        fl.insurance_fund_usd += float(rec.fee_if.sum())
        fl.makers_usd += float(rec.slippage.sum())
        if not self.journal:
            return
        maint_after, target_after, _ = self.levels(self.state)
        arr, tables = self.start, self.tables
        kind: EventKind
        for i in np.flatnonzero(rec.filled != 0.0):  # nothing filled: nothing changed
            g = int(chosen.group[i])
            if chosen.kind[i] == KIND_POSITION:
                r = int(chosen.row_a[i])
                s = int(arr.pos_settle_row[r])
                kind, reason = "reduce", "position reduced"
                instrument = tables.market_symbols[int(arr.pos_market[r])]
                paid_with = tables.asset_symbols[int(arr.bal_asset[s])]
                changes = (self.pos_change(r), self.bal_change(s))
            else:
                liab, coll = int(chosen.row_a[i]), int(chosen.row_b[i])
                kind = "repay"
                instrument = tables.asset_symbols[int(arr.bal_asset[liab])]
                paid_with = tables.asset_symbols[int(arr.bal_asset[coll])]
                changes = (self.bal_change(liab), self.bal_change(coll))
                reason = f"sold {paid_with} to repay {instrument}"
            if x[i] >= 1.0:
                reason += " (whole)"
            if abs(rec.filled[i]) < abs(rec.requested[i]) * (1 - 1e-12):
                reason += f"; partial fill {rec.filled[i]:.6g} of {rec.requested[i]:.6g}"
            self.event(
                g,
                kind,
                instrument,
                reason,
                changes,
                (maint[g], maint_after[g]),
                (target[g], target_after[g]),
                paid_with=paid_with,
                qty=rec.filled[i],
                qty_requested=rec.requested[i],
                price_usd=rec.price[i],
                reference_usd=rec.reference[i],
                slippage_usd=rec.slippage[i],
                liquidator_fee_usd=rec.fee_liq[i],
                insurance_fee_usd=rec.fee_if[i],
                insurance_flow_usd=rec.fee_if[i],
            )

    # -- stuck groups: spiral or bankruptcy -----------------------------------------------------
    def resolve_stuck(self, groups: IntArray) -> None:
        """Groups no step can help: spiral if solvent, else wind down and cover the deficit."""
        maint, target, equity = self.levels(self.state)
        solvent = groups[equity[groups] >= -self.config.dust_usd]
        self.status[solvent] = SPIRAL
        for g in solvent:
            g = int(g)
            self.event(
                g,
                "spiral",
                "",
                self.spiral_reason(g),
                (),
                (maint[g], maint[g]),
                (target[g], target[g]),
            )
        insolvent = groups[equity[groups] < -self.config.dust_usd]
        if insolvent.size == 0:
            return
        self.sell_everything(insolvent)
        if bankruptcy.close_unfilled(self, insolvent):
            self.sell_everything(insolvent)
        if bankruptcy.settle_closed_pnl(self, insolvent):  # a loss left in a closed position
            self.sell_everything(insolvent)
        bankruptcy.cover_deficits(self, insolvent)
        self.status[insolvent] = BANKRUPT

    def spiral_reason(self, g: int) -> str:
        arr, st, prices = self.start, self.state, self.tables.price_usd
        rows = slice(int(arr.bal_start[g]), int(arr.bal_start[g + 1]))
        value = st.bal_qty[rows] * prices[arr.bal_asset[rows]]
        liab = float(-value[value < 0].sum())
        coll = float(value[value > 0].sum())
        bonus = float(self.asset_fee[:, 0].max(initial=0.0) + self.asset_fee[:, 1].max(initial=0.0))
        ratio = liab / coll if coll > 0 else math.inf
        return (
            f"liquidation spiral: no step raises health; liability/collateral = {ratio:.4f} "
            f"vs 1/(1+bonus) = {spiral_threshold(bonus):.4f}; left for manual resolution"
        )

    def sell_everything(self, groups: IntArray) -> None:
        """Insolvent groups: close every position, sell every collateral for the liabilities."""
        for _ in range(3):
            cands = self.candidates(groups)
            if cands.size == 0:
                return
            rank = _rank_in_group(cands.group)
            for r in range(int(rank.max()) + 1):
                batch = cands.take(np.flatnonzero(rank == r))
                maint, target, _ = self.levels(self.state)
                self.commit(batch, np.ones(batch.size), maint, target)

    # -- journal --------------------------------------------------------------------------------
    def bucket_of(self, g: int) -> tuple[str, str]:
        return self.start.account_ids[int(self.start.group_account[g])], self.group_names[g]

    def bal_change(self, r: int) -> RowChange:
        account, bucket = self.bucket_of(int(self.start.bal_group[r]))
        symbol = self.tables.asset_symbols[int(self.start.bal_asset[r])]
        return RowChange(account, bucket, "balance", symbol, float(self.state.bal_qty[r]))

    def pos_change(self, r: int) -> RowChange:
        account, bucket = self.bucket_of(int(self.start.pos_group[r]))
        symbol = self.tables.market_symbols[int(self.start.pos_market[r])]
        st = self.state
        return RowChange(
            account, bucket, "position", symbol, float(st.pos_qty[r]), float(st.pos_funding[r])
        )

    def event(
        self,
        g: int,
        kind: EventKind,
        instrument: str,
        reason: str,
        changes: Sequence[RowChange],
        maint: tuple[float, float],
        target: tuple[float, float],
        **figures: Any,
    ) -> None:
        """Journal one step of group ``g``: health (before, after) and the step's figures."""
        if not self.journal:
            return
        account, bucket = self.bucket_of(g)
        numbers: dict[str, Any] = {
            k: v if isinstance(v, str) else float(v) for k, v in figures.items()
        }
        self.events.append(
            LiquidationEvent(
                seq=len(self.events) + 1,
                account=account,
                bucket=bucket,
                kind=kind,
                instrument=instrument,
                reason=reason,
                maint_health_before_usd=float(maint[0]),
                maint_health_after_usd=float(maint[1]),
                target_health_before_usd=float(target[0]),
                target_health_after_usd=float(target[1]),
                changes=tuple(changes),
                **numbers,
            )
        )

    # -- result ---------------------------------------------------------------------------------
    def result(self) -> LiquidationResult:
        arr = self.start
        maint_after, _, equity_after = self.levels(self.state)
        starts = arr.account_group_start[:-1]
        has_groups = np.diff(arr.account_group_start) > 0

        def per_account(values: Any) -> Any:
            sums = np.zeros(arr.n_accounts, dtype=np.asarray(values).dtype)
            if arr.n_groups:
                sums[has_groups] = np.add.reduceat(values, starts[has_groups])
            return sums

        status = np.zeros(arr.n_accounts, dtype=np.int64)
        if arr.n_groups:
            status[has_groups] = np.maximum.reduceat(self.status, starts[has_groups])
        columns = (
            per_account(self.equity_before),
            per_account(equity_after),
            per_account(self.maint_before),
            per_account(maint_after),
            per_account(self.steps),
        )
        final = self.arrays_of(self.state)
        return LiquidationResult(
            self.config, self.tables, self.start, final, self.events, self.flows, status, columns
        )


def _rank_in_group(group: IntArray) -> IntArray:
    """0, 1, 2, ... within each run of equal (sorted) group ids."""
    return np.arange(group.size) - np.searchsorted(group, group, side="left")


def book_with_arrays(
    book: Book, tables: MarketTables, arrays: PortfolioArrays, accounts: Sequence[Account]
) -> Book:
    """The book with ``accounts`` replaced by the balances and positions held in ``arrays``."""
    replaced = {acc.id: acc for acc in accounts_from_arrays(tables, arrays, accounts)}
    new_accounts = [replaced.get(acc.id, acc) for acc in book.accounts]
    return book.model_copy(update={"accounts": new_accounts})


def accounts_from_arrays(
    tables: MarketTables, arrays: PortfolioArrays, accounts: Sequence[Account]
) -> list[Account]:
    """Rebuild accounts from arrays: balances summed over buckets, allocations per bucket."""
    out = []
    for i, account in enumerate(accounts):
        balances: dict[str, float] = {}
        positions: list[Position] = []
        for g in range(int(arrays.account_group_start[i]), int(arrays.account_group_start[i + 1])):
            bucket: dict[str, float] = {}
            for r in range(int(arrays.bal_start[g]), int(arrays.bal_start[g + 1])):
                symbol = tables.asset_symbols[int(arrays.bal_asset[r])]
                bucket[symbol] = float(arrays.bal_qty[r])
                balances[symbol] = balances.get(symbol, 0.0) + float(arrays.bal_qty[r])
            for r in range(int(arrays.pos_start[g]), int(arrays.pos_start[g + 1])):
                qty, funding = float(arrays.pos_qty[r]), float(arrays.pos_funding[r])
                isolated = arrays.group_position[g] >= 0
                if qty == 0.0 and funding == 0.0 and not isolated:
                    continue
                positions.append(
                    Position(
                        market=tables.market_symbols[int(arrays.pos_market[r])],
                        qty=qty,
                        entry_price=float(arrays.pos_entry[r]),
                        unrealized_funding=funding,
                        isolated_collateral={k: v for k, v in bucket.items() if v > 0.0}
                        if isolated
                        else {},
                    )
                )
        kept = {k: v for k, v in balances.items() if v != 0.0 or k in account.balances}
        out.append(account.model_copy(update={"balances": kept, "positions": positions}))
    return out


def replay_journal(
    book: Book, events: Sequence[LiquidationEvent], accounts: Sequence[Account] | None = None
) -> Book:
    """The book after a journal: each event's row changes set over the starting book, in order.

    ``accounts`` are those the run liquidated (default: all). The result equals the run's
    ``book_after`` exactly (the same values, set in the same order).
    """
    chosen = list(book.accounts if accounts is None else accounts)
    tables = compile_market(book)
    arrays = compile_accounts(tables, chosen, settle_rows=True)
    names = arrays.group_names(tables)
    group_of = {
        (arrays.account_ids[int(arrays.group_account[g])], names[g]): g
        for g in range(arrays.n_groups)
    }
    bal_row = {
        (int(arrays.bal_group[r]), tables.asset_symbols[int(arrays.bal_asset[r])]): r
        for r in range(arrays.bal_qty.size)
    }
    pos_row = {
        (int(arrays.pos_group[r]), tables.market_symbols[int(arrays.pos_market[r])]): r
        for r in range(arrays.pos_qty.size)
    }
    bal_qty, pos_qty, pos_funding = (
        arrays.bal_qty.copy(),
        arrays.pos_qty.copy(),
        arrays.pos_funding.copy(),
    )
    cancelled: set[str] = set()
    for number, event in enumerate(events):
        if event.kind == "cancel":
            cancelled.add(event.account)
        for change in event.changes:
            g = group_of.get((change.account, change.bucket))
            rows = bal_row if change.kind == "balance" else pos_row
            r = rows.get((g, change.symbol), -1) if g is not None else -1
            if r < 0:
                raise InputError(
                    f"journal[{number}].changes",
                    f"{change.account}/{change.bucket}/{change.symbol}",
                    "no such row in the starting book",
                )
            if change.kind == "balance":
                bal_qty[r] = change.qty
            else:
                pos_qty[r], pos_funding[r] = change.qty, change.funding
    final = replace(arrays, bal_qty=bal_qty, pos_qty=pos_qty, pos_funding=pos_funding)
    chosen = [a.model_copy(update={"orders": []}) if a.id in cancelled else a for a in chosen]
    return book_with_arrays(book, tables, final, chosen)
