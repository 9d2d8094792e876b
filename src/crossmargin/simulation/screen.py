r"""Which groups can change sign between cascade rounds: a bound on how far maint health moves.

After an exact evaluation of every group at reference prices :math:`P^0` (health :math:`h^0`),
maint health at prices :math:`P` obeys

.. math::

    |h_g(P) - h^0_g| \le \sum_a L_{g,a} |P_a - P^0_a|

with :math:`L_{g,a}` the sum over the group's rows of a bound on the row's slope in the price
of asset :math:`a`, valid for all prices (not only near :math:`P^0`):

* a balance of :math:`q` units: :math:`|q| \max(w^A, w^L, 1) \max(1, \text{tier factors})`
  (the tiered value has slope <= the largest factor, the size-adjusted weights depend on
  :math:`q` only);
* a perp or future on :math:`u` settled in :math:`s` (mark :math:`b P_u`): in :math:`P_u`,
  :math:`|q| b (W + F)`; in :math:`P_s`, :math:`W (|q e| + |f|)`, with :math:`W = \max(1.1,
  w^{PnL})` the largest slope of the weighted PnL (:math:`x \min(w, 1.1 / (1 + k \sqrt x))`
  has slope <= 1.1) and :math:`F` the largest bracket fraction or size-premium fraction;
* an option (Black-76 premium :math:`V(P_u, K P_s)` with :math:`|\partial V / \partial P_u|
  \le 1`, :math:`|\partial V / \partial (K P_s)| \le 1`; maint requirement
  :math:`|q| f_M \max(P_u, V)`): in :math:`P_u`, :math:`|q| (W + f_M)`; in :math:`P_s`,
  :math:`W (|q| K + |q e| + |f|) + |q| f_M K`.

A group whose :math:`h^0_g` exceeds the bound (with a safety factor) cannot be liquidatable at
:math:`P`; the cascade revalues exactly only the others and the groups whose rows changed.
Only the ``separate`` PnL convention (netted PnL moves a weighted balance row) and the maint
level are covered.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from crossmargin._numba import jit
from crossmargin.margin.arrays import (
    MAINT,
    PNL_SEPARATE,
    FloatArray,
    IntArray,
    MarketTables,
    PortfolioArrays,
)
from crossmargin.margin.kernel import evaluate_groups

#: the bound is multiplied by this, and raised by ``SLACK_REL`` of the group's gross USD
#: sensitivity (rounding of the kernel's sums, ~1e-15 relative, is far below both)
SAFETY_FACTOR = 1.01
SLACK_REL = 1e-9
#: slope of the weighted PnL x min(w, 1.1 / (1 + k sqrt x)) is at most this (and w)
PNL_SLOPE = 1.1


@jit
def _slopes(
    n_assets: int,
    asset_weight: FloatArray,
    liab_weight: FloatArray,
    asset_imf: FloatArray,
    tier_factor: FloatArray,
    tier_count: IntArray,
    market_underlying: IntArray,
    market_settle: IntArray,
    market_basis: FloatArray,
    market_imf: FloatArray,
    bracket_frac: FloatArray,
    bracket_count: IntArray,
    pnl_weight: FloatArray,
    market_is_option: np.ndarray,
    option_strike: FloatArray,
    margin_frac: FloatArray,
    bal_start: IntArray,
    bal_asset: IntArray,
    bal_qty: FloatArray,
    pos_start: IntArray,
    pos_market: IntArray,
    pos_qty: FloatArray,
    pos_entry: FloatArray,
    pos_funding: FloatArray,
    groups: IntArray,
) -> FloatArray:
    """``[len(groups), n_assets]`` slope bounds (module docstring), USD per USD of price."""
    out = np.zeros((groups.shape[0], n_assets))
    tier_max = np.ones(n_assets)
    for a in range(n_assets):
        for k in range(tier_count[a]):
            tier_max[a] = max(tier_max[a], tier_factor[a, k])
    for i in range(groups.shape[0]):
        g = groups[i]
        for r in range(bal_start[g], bal_start[g + 1]):
            a = bal_asset[r]
            q = abs(bal_qty[r])
            lw = liab_weight[MAINT, a]
            if asset_imf[a] > 0.0:
                lw = max(lw, 0.8 * lw + asset_imf[a] * np.sqrt(q))
            out[i, a] += q * max(asset_weight[MAINT, a], lw, 1.0) * tier_max[a]
        for r in range(pos_start[g], pos_start[g + 1]):
            m = pos_market[r]
            q = abs(pos_qty[r])
            w = max(PNL_SLOPE, pnl_weight[MAINT, m])
            carry = abs(pos_qty[r] * pos_entry[r]) + abs(pos_funding[r])
            u = market_underlying[m]
            s = market_settle[m]
            if market_is_option[m]:
                f = margin_frac[MAINT, m]
                strike = option_strike[m]
                out[i, u] += q * (w + f)
                out[i, s] += w * (q * strike + carry) + q * f * strike
            else:
                f = margin_frac[MAINT, m]
                for k in range(bracket_count[m]):
                    f = max(f, bracket_frac[MAINT, m, k])
                if market_imf[m] > 0.0:
                    f = max(f, 0.8 * f + market_imf[m] * np.sqrt(q))
                out[i, u] += q * abs(market_basis[m]) * (w + f)
                out[i, s] += w * carry
    return out


class HealthScreen:
    """Reference health of every group and the slopes that bound its moves (module docstring)."""

    def __init__(
        self,
        tables: MarketTables,
        arrays: PortfolioArrays,
        price_usd: FloatArray,
        health_usd: FloatArray,
    ) -> None:
        self.price_usd = price_usd.copy()
        self.health_usd = health_usd.copy()
        all_groups = np.arange(arrays.n_groups, dtype=np.int64)
        self.slopes = self._slopes(tables, arrays, all_groups)
        self.slack_usd = SLACK_REL * (self.slopes @ self.price_usd) + SLACK_REL

    def refresh(self, tables: MarketTables, arrays: PortfolioArrays, groups: IntArray) -> None:
        """``groups``' rows changed (liquidated): their reference health (at the reference
        prices) and slopes are recomputed, so later rounds screen them like any other."""
        if groups.size == 0:
            return
        at_reference = replace(tables, price_usd=self.price_usd)
        n = arrays.n_groups
        scratch = (np.zeros(n), np.zeros(n), np.zeros(n))
        wa, wl, _ = evaluate_groups(at_reference, arrays, MAINT, out=scratch, groups=groups)
        self.health_usd[groups] = wa[groups] - wl[groups]
        slopes = self._slopes(tables, arrays, groups)
        self.slopes[groups] = slopes
        self.slack_usd[groups] = SLACK_REL * (slopes @ self.price_usd) + SLACK_REL

    @staticmethod
    def _slopes(tables: MarketTables, arrays: PortfolioArrays, groups: IntArray) -> FloatArray:
        slopes: FloatArray = _slopes(
            tables.n_assets,
            tables.asset_weight,
            tables.liab_weight,
            tables.asset_imf,
            tables.tier_factor,
            tables.tier_count,
            tables.market_underlying,
            tables.market_settle,
            tables.market_basis,
            tables.market_imf,
            tables.bracket_frac,
            tables.bracket_count,
            tables.pnl_weight,
            tables.market_is_option,
            tables.option_strike,
            tables.margin_frac,
            arrays.bal_start,
            arrays.bal_asset,
            arrays.bal_qty,
            arrays.pos_start,
            arrays.pos_market,
            arrays.pos_qty,
            arrays.pos_entry,
            arrays.pos_funding,
            groups,
        )
        return slopes

    def max_move_usd(self, price_usd: FloatArray) -> FloatArray:
        """Per group, an upper bound of ``|health(price_usd) - health(reference)|``, USD."""
        moved: FloatArray = self.slopes @ np.abs(price_usd - self.price_usd)
        return SAFETY_FACTOR * moved + self.slack_usd


def supported(tables: MarketTables) -> bool:
    """The screen's bound covers this book (``separate`` PnL convention)."""
    return tables.pnl_convention == PNL_SEPARATE
