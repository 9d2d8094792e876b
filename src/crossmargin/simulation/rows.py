"""Row bookkeeping for the simulator: take the rows of some accounts out of a batch, put them back.

A :class:`~crossmargin.margin.arrays.PortfolioArrays` keeps each account's groups, and each
group's rows, contiguous; a subset is therefore a gather of whole row ranges, and writing the
liquidation engine's result back is a scatter to the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import TypeVar

import numpy as np

from crossmargin.margin.arrays import FloatArray, IntArray, PortfolioArrays

T = TypeVar("T")


def _ranges(starts: IntArray, stops: IntArray) -> IntArray:
    """Concatenation of ``arange(starts[i], stops[i])`` without a Python loop."""
    lengths = stops - starts
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
    return (offsets + np.arange(total)).astype(np.int64)


def _pick(values: tuple[T, ...], index: IntArray) -> tuple[T, ...]:
    """``values[i] for i in index`` at C speed (a round may take 100,000 accounts)."""
    if index.size == 0:
        return ()
    picked = itemgetter(*index.tolist())(values)
    return picked if index.size > 1 else (picked,)


@dataclass(frozen=True, eq=False)
class Subset:
    """Some accounts of a batch as a batch of their own, and where their rows came from."""

    arrays: PortfolioArrays
    accounts: IntArray  # account indices in the full batch
    bal_rows: IntArray  # full-batch balance row of each subset balance row
    pos_rows: IntArray


def account_groups(arrays: PortfolioArrays, accounts: IntArray) -> IntArray:
    """The group ids of ``accounts`` (sorted account indices), in order."""
    return _ranges(arrays.account_group_start[accounts], arrays.account_group_start[accounts + 1])


def take_accounts(arrays: PortfolioArrays, accounts: IntArray) -> Subset:
    """The accounts ``accounts`` (sorted indices) of ``arrays`` as their own batch.

    Every index map is the size of the subset (a few accounts of a million-account batch cost
    only their rows): rows stay in order, so a row's new index is its offset within its group
    plus the group's new start.
    """
    g0 = arrays.account_group_start[accounts]
    g1 = arrays.account_group_start[accounts + 1]
    groups = _ranges(g0, g1)
    bal_lo, bal_hi = arrays.bal_start[groups], arrays.bal_start[groups + 1]
    pos_lo, pos_hi = arrays.pos_start[groups], arrays.pos_start[groups + 1]
    bal_rows = _ranges(bal_lo, bal_hi)
    pos_rows = _ranges(pos_lo, pos_hi)
    n_new = np.arange(groups.size, dtype=np.int64)
    bal_count, pos_count = bal_hi - bal_lo, pos_hi - pos_lo
    new_bal_start = np.cumsum(bal_count) - bal_count
    new_pos_start = np.cumsum(pos_count) - pos_count
    pos_new_group = np.repeat(n_new, pos_count)
    # a settle row is a balance row of the position's own group: shift by the group's offset
    settle = arrays.pos_settle_row[pos_rows]
    settle_new = settle - np.repeat(bal_lo - new_bal_start, pos_count)
    # an isolated bucket's position row is in the bucket's own group
    group_position = arrays.group_position[groups]
    position_new = group_position - (pos_lo - new_pos_start)
    group_account = np.repeat(np.arange(accounts.size, dtype=np.int64), g1 - g0)
    sub = PortfolioArrays(
        account_ids=_pick(arrays.account_ids, accounts),
        account_mode=_pick(arrays.account_mode, accounts),
        group_account=group_account,
        group_position=np.where(group_position >= 0, position_new, -1).astype(np.int64),
        account_group_start=np.concatenate(([0], np.cumsum(g1 - g0))).astype(np.int64),
        bal_group=np.repeat(n_new, bal_count),
        bal_asset=arrays.bal_asset[bal_rows],
        bal_qty=arrays.bal_qty[bal_rows].copy(),
        pos_group=pos_new_group,
        pos_market=arrays.pos_market[pos_rows],
        pos_qty=arrays.pos_qty[pos_rows].copy(),
        pos_entry=arrays.pos_entry[pos_rows].copy(),
        pos_funding=arrays.pos_funding[pos_rows].copy(),
        pos_settle_row=np.where(settle >= 0, settle_new, -1).astype(np.int64),
    )
    return Subset(sub, accounts, bal_rows, pos_rows)


def put_back(
    full_bal_qty: FloatArray,
    full_pos_qty: FloatArray,
    full_pos_funding: FloatArray,
    subset: Subset,
    result: PortfolioArrays,
) -> None:
    """Write a subset's balances, positions and funding (after liquidation) into the full rows."""
    full_bal_qty[subset.bal_rows] = result.bal_qty
    full_pos_qty[subset.pos_rows] = result.pos_qty
    full_pos_funding[subset.pos_rows] = result.pos_funding
