"""crossmargin: cross-collateralized margin for digital-asset derivatives.

Three lines from a portfolio file to a per-account report::

    import crossmargin as cm
    report = cm.margin(cm.load_book("book.yaml"))
    print(report[0].maint.health_usd, report[0].liquidation_prices)
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from crossmargin.errors import CrossmarginError, InputError, NotSupportedError, UnknownNameError

if TYPE_CHECKING:
    from crossmargin.book import Account, Book, Position, book_from_data, load_book, load_demo_book
    from crossmargin.margin import (
        AccountMargin,
        CapitalComparison,
        MarginEngine,
        Trade,
        WhatIf,
    )
    from crossmargin.margin.arrays import Mode

#: Public names imported on first use (PEP 562): ``import crossmargin`` - and so the command
#: line, which lives in this package - does not pay for numba, pydantic and the kernel up front.
_LAZY = {
    "Account": "crossmargin.book",
    "Book": "crossmargin.book",
    "Position": "crossmargin.book",
    "book_from_data": "crossmargin.book",
    "load_book": "crossmargin.book",
    "load_demo_book": "crossmargin.book",
    "AccountMargin": "crossmargin.margin",
    "CapitalComparison": "crossmargin.margin",
    "MarginEngine": "crossmargin.margin",
    "Trade": "crossmargin.margin",
    "WhatIf": "crossmargin.margin",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'crossmargin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


class _Package(types.ModuleType):
    """``crossmargin.margin`` is the function below, also once the subpackage of the same name
    is imported (the import system would bind the subpackage here; it stays in sys.modules)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "margin" and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__version__ = "0.1.0"


def margin(
    book: Book, mode: Mode | None = None, prices: Mapping[str, float] | None = None
) -> list[AccountMargin]:
    """Margin report of every account of ``book``, optionally in another mode or at other prices.

    Collateral at other locations and transfers in flight are credited (issue #17): the book is
    compiled by :func:`crossmargin.locations.view.located_view`, price overrides of an asset
    reach its located lots, and an asset's liquidation price moves all its lots together."""
    from crossmargin.locations.liqprice import joint_liquidation_prices
    from crossmargin.locations.view import located_view
    from crossmargin.margin import MarginEngine

    view = located_view(book)
    engine, moved = MarginEngine(view.book), view.prices(prices)
    return joint_liquidation_prices(view, engine, engine.margin(mode=mode, prices=moved), moved)


def compare(book: Book) -> list[CapitalComparison]:
    """Collateral each account requires under isolated vs cross margin (remote lots
    credited, as in :func:`margin`)."""
    from crossmargin.locations.view import located_view
    from crossmargin.margin import MarginEngine

    return MarginEngine(located_view(book).book).compare()


def what_if(
    book: Book,
    account_id: str,
    trades: tuple[Trade, ...] = (),
    withdrawals: Mapping[str, float] | None = None,
    prices: Mapping[str, float] | None = None,
) -> WhatIf:
    """An account before and after a hypothetical trade, withdrawal or price move (remote
    lots credited and moved with their asset, as in :func:`margin`)."""
    from crossmargin.locations.view import located_view
    from crossmargin.margin import MarginEngine

    view = located_view(book)
    return MarginEngine(view.book).what_if(account_id, trades, withdrawals, view.prices(prices))


__all__ = [
    "Account",
    "AccountMargin",
    "Book",
    "CapitalComparison",
    "CrossmarginError",
    "InputError",
    "MarginEngine",
    "NotSupportedError",
    "Position",
    "Trade",
    "UnknownNameError",
    "WhatIf",
    "__version__",
    "book_from_data",
    "compare",
    "load_book",
    "load_demo_book",
    "margin",
    "what_if",
]
