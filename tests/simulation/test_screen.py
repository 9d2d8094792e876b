"""The screened cascade (issue 14) gives the result of revaluing every group every round.

``run_cascade(..., screen=True)`` revalues only the groups a bound says can have crossed zero
and finds the health quantiles from the same bound; ``screen=False`` is the previous path
(every group through the kernel, ``np.quantile`` over all). Both must produce identical
rounds (every field, floats compared with ``==``), final rows and prices.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossmargin.margin.arrays import MAINT
from crossmargin.margin.kernel import evaluate_groups
from crossmargin.simulation import CascadeConfig, generate_book, run_cascade, shocked_prices
from crossmargin.simulation.rows import take_accounts
from crossmargin.simulation.screen import HealthScreen


def _same(a: object, b: object) -> None:
    assert a.rounds == b.rounds  # type: ignore[attr-defined]
    for name in ("bal_qty", "pos_qty", "pos_funding"):
        assert np.array_equal(getattr(a.final, name), getattr(b.final, name))  # type: ignore[attr-defined]
    assert np.array_equal(a.final_price_usd, b.final_price_usd)  # type: ignore[attr-defined]
    assert a.converged == b.converged  # type: ignore[attr-defined]


@pytest.mark.parametrize(("model", "shock"), [("engine", -0.25), ("engine", -0.4), ("engine", 0.4)])
def test_screened_cascade_equals_full_revaluation(model: str, shock: float) -> None:
    generated = generate_book(20_000, seed=7)
    arrays = generated.to_arrays()
    prices = shocked_prices(generated.tables, {"ETH": shock, "BTC": shock / 2})
    # a strong impact keeps the cascade going for many rounds
    config = CascadeConfig(model=model, impact_k=5.0, health_quantiles=False)  # type: ignore[arg-type]
    full = run_cascade(generated.tables, arrays, prices, config, screen=False)
    screened = run_cascade(generated.tables, arrays, prices, config, screen=True)
    assert len(full.rounds) > 3  # the screened rounds were exercised
    _same(screened, full)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    moves=st.lists(st.floats(-0.5, 0.5), min_size=3, max_size=3),
    model=st.sampled_from(["engine", "closeout"]),
    impact_k=st.floats(0.5, 20.0),
)
def test_screened_cascade_equals_full_on_random_books_and_shocks(
    seed: int, moves: list[float], model: str, impact_k: float
) -> None:
    generated = generate_book(1_500, seed=seed)
    arrays = generated.to_arrays()
    prices = shocked_prices(generated.tables, dict(zip(("ETH", "BTC", "SOL"), moves, strict=True)))
    config = CascadeConfig(  # type: ignore[arg-type]
        model=model, impact_k=impact_k, health_quantiles=False
    )
    full = run_cascade(generated.tables, arrays, prices, config, screen=False)
    _same(run_cascade(generated.tables, arrays, prices, config, screen=True), full)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), moves=st.lists(st.floats(-0.6, 1.5), min_size=7, max_size=7))
def test_health_moves_within_the_bound(seed: int, moves: list[float]) -> None:
    """The screen's bound holds for every group of a generated book (options, tiers, brackets,
    size premia) under arbitrary moves of every asset."""
    generated = generate_book(2_000, seed=seed)
    tables, arrays = generated.tables, generated.to_arrays()
    wa, wl, _ = evaluate_groups(tables, arrays, MAINT)
    screen = HealthScreen(tables, arrays, tables.price_usd, wa - wl)
    new_prices = tables.price_usd * (1.0 + np.array(moves[: tables.n_assets]))
    wa2, wl2, _ = evaluate_groups(tables, arrays, MAINT, new_prices)
    assert np.all(np.abs((wa2 - wl2) - (wa - wl)) <= screen.max_move_usd(new_prices))


def test_subset_index_maps_keep_settle_rows_and_isolated_buckets() -> None:
    """take_accounts with subset-sized maps: settle rows and bucket positions still point at
    the subset's own rows (an isolated book has both)."""
    from crossmargin.margin.arrays import compile_accounts, compile_market

    generated = generate_book(200, seed=3)
    book = generated.to_book("isolated")
    tables = compile_market(book)
    arrays = compile_accounts(tables, book.accounts, settle_rows=True)
    accounts = np.array([0, 5, 6, 150, 199])
    sub = take_accounts(arrays, accounts)
    s = sub.arrays
    assert np.array_equal(
        s.bal_asset[s.pos_settle_row], arrays.bal_asset[arrays.pos_settle_row[sub.pos_rows]]
    )
    assert np.array_equal(s.bal_group[s.pos_settle_row], s.pos_group)
    buckets = s.group_position >= 0
    assert np.array_equal(s.pos_group[s.group_position[buckets]], np.flatnonzero(buckets))
    full = evaluate_groups(tables, arrays, MAINT)
    part = evaluate_groups(tables, s, MAINT)
    groups = np.concatenate(
        [
            np.arange(arrays.account_group_start[a], arrays.account_group_start[a + 1])
            for a in accounts
        ]
    )
    for f, p in zip(full, part, strict=True):
        assert np.array_equal(f[groups], p)
