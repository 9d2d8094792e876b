"""The branch-free kernel gives the results of the kernel it replaced (issue 14).

The oracle is a frozen plain-Python copy of the previous row-by-row kernel
(tests/margin/kernel_oracle.py). Both evaluate the same formulas; the only change of
arithmetic is the progressive collateral tiers, now summed as hinges
``V - sum_k (f_{k-1} - f_k) (V - above_k)^+`` instead of band by band (equal in exact
arithmetic; the hinge sum rounds relative to the untiered value ``V``, so a deep tier with a
factor near 0 keeps an error of a few ulps of ``V``, not of the tiered value). Tolerance:
weighted assets, weighted liabilities, equity and balance contributions within 1e-12 of the
group's gross USD (``1 + |WA| + |WL| + sum 3 |q| P`` over its balances and ``|c|`` over its
positions); position contributions within 1e-12 relative to ``1 + |c|``; rounding is ~1e-16,
anything wrong in a formula is orders of magnitude larger. On random books (hypothesis,
tests/strategies.py: tiers, brackets, size premia, options, both PnL conventions, isolated
buckets), at random prices, with and without a per-group shock and a group subset. The
parallel variant must equal the serial one, and row contributions must add up to health.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossmargin.book import Book
from crossmargin.haircuts.weights import size_discounted_asset_weight, size_premium_liab_weight
from crossmargin.margin.arrays import INIT, MAINT, MarketTables, PortfolioArrays, compile_book
from crossmargin.margin.kernel import (
    PARALLEL_BLOCK_GROUPS,
    discount_from,
    discounted_weight,
    evaluate_groups,
    premium_from,
)
from tests.margin import kernel_oracle
from tests.strategies import books

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
Floats = npt.NDArray[np.float64]


def _oracle(
    tables: MarketTables,
    arrays: PortfolioArrays,
    level: int,
    prices: Floats,
    shock_asset: int,
    shock_mult: Floats,
    groups: npt.NDArray[np.int64],
) -> tuple[Floats, Floats, Floats, Floats, Floats]:
    n = arrays.n_groups
    out = (np.zeros(n), np.zeros(n), np.zeros(n))
    bal_contrib, pos_contrib = np.zeros(arrays.bal_qty.size), np.zeros(arrays.pos_qty.size)
    kernel_oracle.health_kernel(
        level,
        prices,
        shock_asset,
        shock_mult,
        tables.asset_weight,
        tables.liab_weight,
        tables.asset_imf,
        tables.tier_above_usd,
        tables.tier_factor,
        tables.tier_count,
        tables.market_underlying,
        tables.market_settle,
        tables.market_basis,
        tables.margin_frac,
        tables.market_imf,
        tables.bracket_floor_usd,
        tables.bracket_frac,
        tables.bracket_cum_usd,
        tables.bracket_count,
        tables.pnl_weight,
        tables.pnl_imf,
        tables.pnl_convention,
        tables.market_is_option,
        tables.option_strike,
        tables.option_vol,
        tables.option_t_yrs,
        tables.option_is_call,
        tables.option_min_frac,
        arrays.bal_start,
        arrays.bal_asset,
        arrays.bal_qty,
        arrays.pos_start,
        arrays.pos_market,
        arrays.pos_qty,
        arrays.pos_entry,
        arrays.pos_funding,
        arrays.pos_settle_row,
        out[0],
        out[1],
        out[2],
        bal_contrib,
        pos_contrib,
        groups,
    )
    return (*out, bal_contrib, pos_contrib)


def _new(
    tables: MarketTables,
    arrays: PortfolioArrays,
    level: int,
    prices: Floats,
    shock_asset: int,
    shock_mult: Floats,
    groups: npt.NDArray[np.int64],
    parallel: bool = False,
) -> tuple[Floats, Floats, Floats, Floats, Floats]:
    n = arrays.n_groups
    out = (np.zeros(n), np.zeros(n), np.zeros(n))
    bal_contrib, pos_contrib = np.zeros(arrays.bal_qty.size), np.zeros(arrays.pos_qty.size)
    evaluate_groups(
        tables,
        arrays,
        level,
        prices,
        shock_asset,
        shock_mult,
        bal_contrib,
        pos_contrib,
        out,
        groups,
        parallel=parallel,
    )
    return (*out, bal_contrib, pos_contrib)


NAMES = ("weighted_assets", "weighted_liabs", "equity", "bal_contrib", "pos_contrib")
TOLERANCE_REL = 1e-12


def _assert_equal(got: tuple[Floats, ...], want: tuple[Floats, ...]) -> None:
    for name, a, b in zip(NAMES, got, want, strict=True):
        assert np.array_equal(a, b, equal_nan=True), (name, a, b)


def _assert_close(
    got: tuple[Floats, ...], want: tuple[Floats, ...], arrays: PortfolioArrays, prices: Floats
) -> None:
    n = arrays.n_groups
    gross = (
        1.0
        + np.abs(want[0])
        + np.abs(want[1])
        + np.bincount(arrays.bal_group, 3.0 * np.abs(arrays.bal_qty) * prices[arrays.bal_asset], n)
        + np.bincount(arrays.pos_group, np.abs(want[4]), n)
    )
    scales = (gross, gross, gross, gross[arrays.bal_group], 1.0 + np.abs(want[4]))
    for name, a, b, scale in zip(NAMES, got, want, scales, strict=True):
        assert np.all(np.abs(a - b) <= TOLERANCE_REL * scale), (name, a, b)


@SETTINGS
@given(
    book=st.one_of(books(), books(convention="settle_netted")),
    data=st.data(),
)
def test_branch_free_kernel_equals_the_frozen_previous_kernel(
    book: Book, data: st.DataObject
) -> None:
    tables, arrays = compile_book(book)
    moves = data.draw(
        st.lists(st.floats(0.5, 2.0), min_size=tables.n_assets, max_size=tables.n_assets)
    )
    prices = tables.price_usd * np.array(moves)
    shock_asset = data.draw(st.integers(-1, tables.n_assets - 1))
    shock_mult = (
        np.array(
            data.draw(
                st.lists(st.floats(0.2, 3.0), min_size=arrays.n_groups, max_size=arrays.n_groups)
            )
        )
        if shock_asset >= 0
        else np.ones(0)
    )
    subset = data.draw(st.lists(st.integers(0, arrays.n_groups - 1), unique=True))
    groups = np.array(sorted(subset), dtype=np.int64)
    for level in (INIT, MAINT):
        want = _oracle(tables, arrays, level, prices, shock_asset, shock_mult, groups)
        got = _new(tables, arrays, level, prices, shock_asset, shock_mult, groups)
        _assert_close(got, want, arrays, prices)
        _assert_equal(  # the parallel variant runs the same row function: bit-identical
            _new(tables, arrays, level, prices, shock_asset, shock_mult, groups, parallel=True),
            got,
        )


@SETTINGS
@given(book=books(convention="separate"))
def test_row_contributions_add_up_to_health(book: Book) -> None:
    tables, arrays = compile_book(book)
    wa, wl, _eq, bal_contrib, pos_contrib = _new(
        tables, arrays, MAINT, tables.price_usd, -1, np.ones(0), np.zeros(0, dtype=np.int64)
    )
    per_group = np.bincount(arrays.bal_group, bal_contrib, arrays.n_groups) + np.bincount(
        arrays.pos_group, pos_contrib, arrays.n_groups
    )
    scale = 1.0 + np.abs(wa) + np.abs(wl)
    assert np.all(np.abs(per_group - (wa - wl)) <= 1e-12 * scale)


def test_a_large_batch_runs_in_parallel_blocks_with_the_serial_results() -> None:
    """The demo book's accounts repeated past one parallel block (several blocks and threads);
    the oracle checks a spread-out sample of the groups."""
    from crossmargin.book import load_demo_book
    from crossmargin.margin.arrays import compile_accounts, compile_market

    book = load_demo_book()
    tables = compile_market(book)
    copies = 1 + 2 * PARALLEL_BLOCK_GROUPS // len(book.accounts)
    accounts = [
        a.model_copy(update={"id": f"{a.id}-{c}"}) for c in range(copies) for a in book.accounts
    ]
    arrays = compile_accounts(tables, accounts)
    assert arrays.n_groups > 2 * PARALLEL_BLOCK_GROUPS
    prices = tables.price_usd * np.linspace(0.9, 1.1, tables.n_assets)
    none = np.zeros(0, dtype=np.int64)
    for level in (INIT, MAINT):
        serial = _new(tables, arrays, level, prices, -1, np.ones(0), none)
        parallel = _new(tables, arrays, level, prices, -1, np.ones(0), none, parallel=True)
        _assert_equal(parallel, serial)
        # a group list split across the threads (every group, in reverse order)
        every = np.arange(arrays.n_groups - 1, -1, -1, dtype=np.int64)
        listed = _new(tables, arrays, level, prices, -1, np.ones(0), every, parallel=True)
        _assert_equal(listed, serial)
        sample = np.arange(0, arrays.n_groups, 97, dtype=np.int64)
        want = _oracle(tables, arrays, level, prices, -1, np.ones(0), sample)
        got = _new(tables, arrays, level, prices, -1, np.ones(0), sample)
        _assert_close(got, want, arrays, prices)
        for k in range(3):
            assert np.array_equal(serial[k][sample], got[k][sample])


@settings(max_examples=300, deadline=None)
@given(
    weight=st.floats(0.0, 2.0),
    imf=st.floats(0.0, 0.05),
    rel=st.sampled_from([0.0, 1e-15, -1e-15, 1e-12, -1e-12, 1e-9, -1e-9, 1e-6, -1e-6, 0.5, 2.0]),
)
def test_size_thresholds_skip_only_sizes_where_the_weight_is_unchanged(
    weight: float, imf: float, rel: float
) -> None:
    """The kernel skips the square root below :func:`discount_from` / :func:`premium_from`;
    at and around the thresholds the result equals the full formula (haircuts.weights)."""
    for threshold in (discount_from(weight, imf), premium_from(weight, imf)):
        base = threshold if np.isfinite(threshold) and threshold > 0 else 1.0
        size = base * (1.0 + rel)
        assert discounted_weight(
            weight, imf, size, discount_from(weight, imf)
        ) == size_discounted_asset_weight(weight, imf, size)
        below = size <= premium_from(weight, imf)
        if below:  # the kernel keeps the base weight: the full formula must give it too
            assert size_premium_liab_weight(weight, imf, size) == weight
