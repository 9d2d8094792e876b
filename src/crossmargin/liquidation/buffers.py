r"""Drift v2's liquidation buffer, as a second evaluation of the one risk kernel.

Drift (``state/margin_calculation.rs``, ``MarginContext::liquidation(buffer)``) adds to the
maintenance requirement ``buffer x liability_value`` for every perp (its worst-case notional)
and every borrow (its unweighted value), and ``buffer x c`` for every negative collateral
contribution ``c`` (negative unrealized PnL). An account exits liquidation when

.. math::

    TC + buffer \sum_{c < 0} c \ge MR + buffer \sum_i LV_i ,

so the buffer is proportional to notional and liability *value*, not to the requirement.

The sum :math:`\sum_i LV_i + \sum_{c<0} |c|` is exactly the maint weighted liabilities of the
kernel evaluated on tables with unit weights: asset weight 0, liability weight 1, margin
fraction 1 (a perp's requirement is then its notional; a short option's the underlying's
notional), no size premium, no brackets, PnL kept separate (a negative PnL counts in full).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from crossmargin.margin.arrays import MAINT, PNL_SEPARATE, FloatArray, MarketTables, PortfolioArrays
from crossmargin.margin.kernel import NO_GROUPS, evaluate_groups


def liability_value_tables(tables: MarketTables) -> MarketTables:
    """Tables whose maint weighted liabilities are each group's Drift liability value, USD."""
    return replace(
        tables,
        asset_weight=np.zeros_like(tables.asset_weight),
        liab_weight=np.ones_like(tables.liab_weight),
        asset_imf=np.zeros_like(tables.asset_imf),
        margin_frac=np.ones_like(tables.margin_frac),
        market_imf=np.zeros_like(tables.market_imf),
        bracket_count=np.ones_like(tables.bracket_count),
        pnl_weight=np.zeros_like(tables.pnl_weight),
        pnl_imf=np.zeros_like(tables.pnl_imf),
        option_min_frac=np.zeros_like(tables.option_min_frac),
        pnl_convention=PNL_SEPARATE,
    )


def liability_value_usd(
    unit_tables: MarketTables, arrays: PortfolioArrays, groups: np.ndarray = NO_GROUPS
) -> FloatArray:
    """Per group: sum of perp notionals, borrow values and |negative PnL| (USD).

    ``unit_tables`` from :func:`liability_value_tables`; one kernel call at maint.
    """
    _, weighted_liabs, _ = evaluate_groups(unit_tables, arrays, MAINT, groups=groups)
    return weighted_liabs
