"""An account of a portfolio file (:class:`~crossmargin.book.Book`) as a portfolio-margin account.

For accounts with ``mode: portfolio`` and for ``compare``'s portfolio column. The mapping:

* every underlying of the account's option, perp and future markets is an underlying, at its
  asset's USD price (confidence 1);
* options are grouped into expiries by (underlying, expiry): time to expiry from the book's
  ``as_of``, forward = the underlying's price (no rate, no basis: the book has neither yet);
  the strike is in settle-asset units; the vol is ``vols[market]`` if given, else the one the
  risk kernel marks the option with (its ``mark_vol``, or the Black-76 vol implied by its
  ``mark_price``: :func:`crossmargin.margin.arrays.compile_market`), so both margin models
  value an option alike;
* perps and dated futures are linear perps at their mark, valued at their unrealized PnL
  ``qty (mark - entry) - funding`` (USD); a future carries its years to expiry from ``as_of``
  (0 without one) for the roll shock of profiles that have one (Deribit);
* a positive balance of an underlying is collateral shocked with it in every scenario
  (risk-cancelling, as Derive's base collateral) and, its price risk being in the grid, takes
  no haircut; any other positive balance is collateral with haircuts ``1 - maint_asset_weight``
  (MM) and ``maint_asset_weight - init_asset_weight`` (extra for IM); a negative balance is
  borrowed cash at its USD value (borrowing an underlying is not supported).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crossmargin.book.schema import Account, Book, FutureMarket, OptionMarket
from crossmargin.errors import InputError, NotSupportedError
from crossmargin.locations.schema import base_asset
from crossmargin.margin.arrays import FloatArray, MarketTables, compile_market
from crossmargin.margin.kernel import market_marks_usd
from crossmargin.portfolio.positions import PortfolioSpec


def has_derivatives(account: Account) -> bool:
    """Whether the account holds a position (a portfolio account without one is a spot pool)."""
    return bool(account.positions)


def portfolio_from_book(
    book: Book,
    account_id: str,
    *,
    vols: Mapping[str, float] | None = None,
    tables: MarketTables | None = None,
    price_usd: FloatArray | None = None,
) -> PortfolioSpec:
    """The account ``account_id`` of ``book`` as a :class:`PortfolioSpec` (module docstring).

    ``tables`` are the book's compiled market (compiled here if not given); ``price_usd``
    overrides the asset prices (a stress or what-if move; vols stay fixed). Raises
    :class:`~crossmargin.errors.InputError` naming the field for an option that cannot be
    valued and :class:`~crossmargin.errors.NotSupportedError` for a borrowed underlying.
    """
    account = book.account(account_id)
    tables = tables if tables is not None else compile_market(book)
    prices = tables.price_usd if price_usd is None else price_usd
    vols = vols or {}
    index = next(i for i, a in enumerate(book.accounts) if a is account)
    where = f"accounts[{index}]"
    underlyings: dict[str, dict[str, Any]] = {}
    expiries: dict[str, dict[str, Any]] = {}
    options: list[dict[str, Any]] = []
    perps: list[dict[str, Any]] = []
    marks = market_marks_usd(tables, prices)
    for position in account.positions:
        m = tables.market_id(position.market)
        market = book.markets[position.market]
        spot = float(prices[tables.market_underlying[m]])
        settle = float(prices[tables.market_settle[m]])
        underlyings[market.underlying] = {"spot_usd": spot}
        if isinstance(market, OptionMarket):
            given_vol = position.market in vols and tables.option_t_yrs[m] > 0.0
            if m in tables.option_issue and not given_vol:
                raise tables.option_issue[m]
            t = float(tables.option_t_yrs[m])
            key = f"{market.underlying}-{market.expiry:%Y%m%dT%H%M}"
            expiries[key] = {"underlying": market.underlying, "t_yrs": t, "forward_usd": spot}
            options.append(
                {
                    "expiry": key,
                    "strike_usd": market.strike * settle,
                    "option_type": market.option_type,
                    "qty": position.qty,
                    "vol": float(vols.get(position.market, tables.option_vol[m])),
                }
            )
        else:
            mark = float(marks[m])
            t_yrs = 0.0
            if isinstance(market, FutureMarket) and book.as_of is not None:
                seconds = (market.expiry - book.as_of).total_seconds()
                t_yrs = max(seconds, 0.0) / (365.0 * 86_400.0)
            perps.append(
                {
                    "underlying": market.underlying,
                    "qty": position.qty,
                    "mark_usd": mark,
                    "value_usd": position.qty * (mark - position.entry_price * settle)
                    - position.unrealized_funding * settle,
                    "t_yrs": t_yrs,
                }
            )
    cash = 0.0
    collaterals: list[dict[str, Any]] = []
    for symbol, qty in account.balances.items():
        asset = book.assets[symbol]
        price = float(prices[tables.asset_id(symbol)])
        if qty < 0.0:
            if symbol in underlyings:
                raise NotSupportedError(
                    f"{where}.balances.{symbol}: borrowing an underlying ({qty}) in a "
                    "portfolio-margin account"
                )
            cash += qty * price
            continue
        assert asset.maint_asset_weight is not None and asset.init_asset_weight is not None
        base = base_asset(symbol)  # ETH@arbitrum (#17) is ETH's price risk
        shocked = base in underlyings
        # shocked with its underlying, its price risk is in the grid: no haircut on top but a
        # located lot's own (bridge) factor: its weight / the base asset's weight
        home_weight = book.assets[base].maint_asset_weight if base != symbol else None
        located_frac = 0.0 if not home_weight else 1.0 - asset.maint_asset_weight / home_weight
        collaterals.append(
            {
                "name": symbol,
                "amount": qty,
                "price_usd": price,
                "shocked_with": base if shocked else None,
                "mm_haircut_frac": located_frac if shocked else 1.0 - asset.maint_asset_weight,
                "im_haircut_frac": 0.0
                if shocked
                else asset.maint_asset_weight - asset.init_asset_weight,
            }
        )
    if not underlyings:
        raise InputError(
            f"{where}.positions", [], "a portfolio account needs a derivative position"
        )
    return PortfolioSpec.from_data(
        {
            "cash_usd": cash,
            "underlyings": underlyings,
            "expiries": expiries,
            "options": options,
            "perps": perps,
            "collaterals": collaterals,
        }
    )
