"""evaluate_groups on a subset of groups: the entries it does not evaluate are defined (0)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from crossmargin.book import load_demo_book
from crossmargin.margin.arrays import INIT, MAINT, compile_accounts, compile_market
from crossmargin.margin.kernel import evaluate_groups


def _poisoned_empty(shape: Any, dtype: Any = float, **kwargs: Any) -> Any:
    """np.empty as it may come back from the allocator: stale memory, here +inf everywhere."""
    return np.full(shape, np.inf, dtype=dtype, **kwargs)


@pytest.mark.parametrize("level", [MAINT, INIT])
def test_subset_leaves_zeros_not_stale_memory(level: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13: the subset path returned np.empty arrays, whose unevaluated entries were
    whatever the allocator held (inf - inf in a caller's ``wa - wl`` raised a RuntimeWarning
    in test_many_books). The allocator is poisoned so that the old code fails every time."""
    book = load_demo_book()
    tables = compile_market(book)
    arrays = compile_accounts(tables, book.accounts, settle_rows=True)
    full = evaluate_groups(tables, arrays, level)  # also compiles before np.empty is patched
    groups = np.array([1, 4], dtype=np.int64)
    monkeypatch.setattr(np, "empty", _poisoned_empty)
    subset = evaluate_groups(tables, arrays, level, groups=groups)
    others = np.setdiff1d(np.arange(arrays.n_groups), groups)
    for whole, part in zip(full, subset, strict=True):
        assert part.shape == (arrays.n_groups,)
        np.testing.assert_array_equal(part[groups], whole[groups])
        np.testing.assert_array_equal(part[others], 0.0)


def test_subset_into_out_touches_only_its_groups() -> None:
    """With ``out`` the caller owns the buffers: the other entries keep the caller's values."""
    book = load_demo_book()
    tables = compile_market(book)
    arrays = compile_accounts(tables, book.accounts, settle_rows=True)
    full = evaluate_groups(tables, arrays, MAINT)
    out = (
        np.full(arrays.n_groups, -7.0),
        np.full(arrays.n_groups, -7.0),
        np.full(arrays.n_groups, -7.0),
    )
    groups = np.array([0, 3], dtype=np.int64)
    returned = evaluate_groups(tables, arrays, MAINT, out=out, groups=groups)
    others = np.setdiff1d(np.arange(arrays.n_groups), groups)
    for whole, buffer, back in zip(full, out, returned, strict=True):
        assert back is buffer
        np.testing.assert_array_equal(buffer[groups], whole[groups])
        np.testing.assert_array_equal(buffer[others], -7.0)
