"""MarketTables layout: every field classified; take and tile agree with the full tables."""

from __future__ import annotations

import dataclasses

import numpy as np

from crossmargin.book import load_demo_book
from crossmargin.margin.arrays import MAINT, MarketTables, compile_accounts, compile_market
from crossmargin.margin.kernel import evaluate_groups


def test_every_field_has_a_layout() -> None:
    """take/tile copy arrays by this classification: a new field must be added to it."""
    classified = (
        set(MarketTables.ASSET_AXIS)
        | set(MarketTables.MARKET_AXIS)
        | set(MarketTables.ASSET_ID_FIELDS)
        | set(MarketTables.OTHER_FIELDS)
    )
    assert classified == {f.name for f in dataclasses.fields(MarketTables)}


def test_take_and_tile_value_accounts_as_the_full_tables() -> None:
    book = load_demo_book()
    tables = compile_market(book)
    account = [a for a in book.accounts if a.id == "market-maker"]
    full = evaluate_groups(tables, compile_accounts(tables, account), MAINT)
    arrays = compile_accounts(tables, account)
    markets = np.unique(arrays.pos_market)
    assets = np.unique(
        np.concatenate(
            [arrays.bal_asset, tables.market_underlying[markets], tables.market_settle[markets]]
        )
    )
    sub = tables.take(assets, markets)
    new_asset = np.full(tables.n_assets, -1)
    new_asset[assets] = np.arange(assets.size)
    new_market = np.full(tables.n_markets, -1)
    new_market[markets] = np.arange(markets.size)
    moved = dataclasses.replace(
        arrays, bal_asset=new_asset[arrays.bal_asset], pos_market=new_market[arrays.pos_market]
    )
    for a, b in zip(full, evaluate_groups(sub, moved, MAINT), strict=True):
        np.testing.assert_array_equal(a, b)
    tiled = sub.tile(3)
    assert tiled.n_assets == 3 * sub.n_assets and tiled.n_markets == 3 * sub.n_markets
    # copy 2's rows point at copy 2's ids: same value as the original
    copy2 = dataclasses.replace(
        moved,
        bal_asset=moved.bal_asset + 2 * sub.n_assets,
        pos_market=moved.pos_market + 2 * sub.n_markets,
    )
    for a, b in zip(full, evaluate_groups(tiled, copy2, MAINT), strict=True):
        np.testing.assert_array_equal(a, b)
