"""Pools in the book: reserves, ranges, inline tick tables and CSV tables; one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crossmargin.amm.pools import ConcentratedPool, ConstantProductPool, build_pool
from crossmargin.book.io import book_from_data, load_book
from crossmargin.errors import InputError

ASSETS = {
    "USDC": {"price": 1.0}
    | dict.fromkeys(
        ("init_asset_weight", "maint_asset_weight", "init_liab_weight", "maint_liab_weight"), 1.0
    ),
    "ETH": {
        "price": 3000.0,
        "init_asset_weight": 0.8,
        "maint_asset_weight": 0.9,
        "init_liab_weight": 1.2,
        "maint_liab_weight": 1.1,
    },
}
RANGES = [{"tick_lower": 78000, "tick_upper": 82020, "liquidity": 5.0e4}]


def _book(pool: dict[str, Any]) -> Any:
    return book_from_data({"assets": ASSETS, "pools": {"p": {"base": "ETH", **pool}}})


def test_reserves_pool() -> None:
    book = _book({"kind": "constant_product", "base_qty": 1000, "quote_qty": 3.0e6})
    pool = build_pool(book.pools["p"])
    assert isinstance(pool, ConstantProductPool) and pool.price == 3000.0


def test_ranges_table_and_csv_describe_the_same_pool(tmp_path: Path) -> None:
    common = {"kind": "concentrated", "price": 3000.0}
    by_ranges = build_pool(_book({**common, "ranges": RANGES}).pools["p"])
    inline = {**common, "ticks": [78000, 82020], "liquidity_net": [5.0e4, -5.0e4]}
    by_table = build_pool(_book(inline).pools["p"])
    (tmp_path / "ticks.csv").write_text("tick,liquidity_net\n78000,50000\n82020,-50000\n")
    yaml_text = (
        "assets:\n"
        "  USDC: {price: 1, init_asset_weight: 1, maint_asset_weight: 1, init_liab_weight: 1,"
        " maint_liab_weight: 1}\n"
        "  ETH: {price: 3000, init_asset_weight: 0.8, maint_asset_weight: 0.9,"
        " init_liab_weight: 1.2, maint_liab_weight: 1.1}\n"
        "pools:\n  p: {kind: concentrated, base: ETH, price: 3000, ticks_csv: ticks.csv}\n"
    )
    (tmp_path / "book.yaml").write_text(yaml_text)
    book = load_book(tmp_path / "book.yaml")
    by_csv = build_pool(book.pools["p"], tmp_path)
    for pool in (by_table, by_csv):
        assert isinstance(pool, ConcentratedPool)
        assert pool.swap(10.0).quote_usd == by_ranges.swap(10.0).quote_usd


@pytest.mark.parametrize(
    ("pool", "match"),
    [
        (
            {"kind": "constant_product", "base_qty": -5, "quote_qty": 1},
            r"pools\.p\.constant_product\.base_qty: reserves must be > 0",
        ),
        (
            {"kind": "constant_product", "base_qty": 5, "quote_qty": 0},
            "quote_qty: reserves must be > 0",
        ),
        (
            {"kind": "concentrated", "price": 3000, "ticks": [60, 0], "liquidity_net": [1, -1]},
            r"ticks\[1\]: out of order",
        ),
        (
            {"kind": "concentrated", "price": 3000, "ticks": [0, 60], "liquidity_net": [-1, 1]},
            "liquidity below zero",
        ),
        (
            {
                "kind": "concentrated",
                "price": 3000,
                "ranges": [{"tick_lower": 61} | {"tick_upper": 120, "liquidity": 1}],
            },
            "not a multiple of 60",
        ),
        ({"kind": "curve"}, "kind"),
    ],
)
def test_bad_pools_are_one_line_errors(pool: dict[str, Any], match: str) -> None:
    with pytest.raises(InputError, match=match) as caught:
        _book(pool)
    assert "\n" not in str(caught.value)


def test_csv_out_of_order_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("tick,liquidity_net\n60,1\n0,-1\n")
    spec = _book({"kind": "concentrated", "price": 1.0, "ticks_csv": "t.csv"}).pools["p"]
    with pytest.raises(InputError, match=r"ticks_csv\.ticks\[1\]: out of order"):
        build_pool(spec, tmp_path)
    (tmp_path / "t.csv").write_text("tick,net\n0,1\n")
    with pytest.raises(InputError, match="header must be tick,liquidity_net"):
        build_pool(spec, tmp_path)


def test_unknown_pool_asset() -> None:
    with pytest.raises(InputError, match=r"pools\.p\.base: unknown asset"):
        book_from_data(
            {
                "assets": ASSETS,
                "pools": {
                    "p": {"kind": "constant_product", "base": "BTC"}
                    | {"base_qty": 1, "quote_qty": 1}
                },
            }
        )
