"""_Run.levels on a subset of groups: only the selected entries, never stale memory."""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import pytest

from crossmargin.book import load_demo_book
from crossmargin.liquidation import LiquidationConfig
from crossmargin.liquidation.engine import _Run
from crossmargin.liquidation.execution import OracleTransfer
from crossmargin.margin.arrays import compile_accounts, compile_market


def _poisoned_empty(shape: Any, dtype: Any = float, **kwargs: Any) -> Any:
    """np.empty as it may come back from the allocator: stale memory, here +inf everywhere."""
    return np.full(shape, np.inf, dtype=dtype, **kwargs)


@pytest.mark.parametrize("target", ["maint_buffer", "init", "close_factor"])
def test_levels_of_a_subset_never_warn(
    target: Literal["maint_buffer", "init", "close_factor"], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 13 (test_many_books, RuntimeWarning in ``maint = wa - wl``): a trial state's levels
    on some groups equal the full evaluation there and are 0 elsewhere, whatever the allocator
    hands back - the old code computed inf - inf on the unevaluated entries."""
    book = load_demo_book()
    tables = compile_market(book)
    arrays = compile_accounts(tables, book.accounts, settle_rows=True)
    config = LiquidationConfig(target=target, buffer_frac=0.02)
    run = _Run(tables, arrays, config, OracleTransfer(), journal=False)
    full = run.levels(run.state)  # also compiles the kernel before np.empty is patched
    groups = np.array([2, 5], dtype=np.int64)
    others = np.setdiff1d(np.arange(arrays.n_groups), groups)
    monkeypatch.setattr(np, "empty", _poisoned_empty)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        subset = run.levels(run.state, groups)
    for whole, part in zip(full, subset, strict=True):
        assert np.all(np.isfinite(part))
        np.testing.assert_array_equal(part[groups], whole[groups])
        np.testing.assert_array_equal(part[others], 0.0)
