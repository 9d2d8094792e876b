"""The portfolio file: validated models of assets, markets and accounts, and their loaders."""

from crossmargin.book.io import book_from_data, load_book, load_demo_book, parse_book
from crossmargin.book.schema import (
    Account,
    Asset,
    Book,
    CollateralTier,
    FutureMarket,
    MarginBracket,
    OptionMarket,
    PerpMarket,
    Position,
)

__all__ = [
    "Account",
    "Asset",
    "Book",
    "CollateralTier",
    "FutureMarket",
    "MarginBracket",
    "OptionMarket",
    "PerpMarket",
    "Position",
    "book_from_data",
    "load_book",
    "load_demo_book",
    "parse_book",
]
