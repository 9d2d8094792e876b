"""crossmargin: cross-collateralized margin for digital-asset derivatives.

Three lines from a portfolio file to a per-account report::

    import crossmargin as cm
    report = cm.margin(cm.load_book("book.yaml"))
    print(report[0].maint.health_usd, report[0].liquidation_prices)
"""

from __future__ import annotations

from collections.abc import Mapping

from crossmargin.book import Account, Book, Position, book_from_data, load_book, load_demo_book
from crossmargin.errors import CrossmarginError, InputError, NotSupportedError, UnknownNameError
from crossmargin.margin import (
    AccountMargin,
    CapitalComparison,
    MarginEngine,
    Trade,
    WhatIf,
)
from crossmargin.margin.arrays import Mode

__version__ = "0.1.0"


def margin(
    book: Book, mode: Mode | None = None, prices: Mapping[str, float] | None = None
) -> list[AccountMargin]:
    """Margin report of every account of ``book``, optionally in another mode or at other prices."""
    return MarginEngine(book).margin(mode=mode, prices=prices)


def compare(book: Book) -> list[CapitalComparison]:
    """Collateral each account requires under isolated vs cross margin."""
    return MarginEngine(book).compare()


def what_if(
    book: Book,
    account_id: str,
    trades: tuple[Trade, ...] = (),
    withdrawals: Mapping[str, float] | None = None,
    prices: Mapping[str, float] | None = None,
) -> WhatIf:
    """An account before and after a hypothetical trade, withdrawal or price move."""
    return MarginEngine(book).what_if(account_id, trades, withdrawals, prices)


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
