"""An account of a portfolio file (:class:`~crossmargin.book.Book`) as a portfolio-margin account.

For accounts with ``mode: portfolio`` (to be added to the book schema) and for ``compare``'s
portfolio column. The mapping:

* every underlying of the account's option, perp and future markets is an underlying, at its
  asset's USD price (confidence 1);
* options are grouped into expiries by (underlying, expiry): time to expiry from the book's
  ``as_of`` (or the ``as_of`` argument), forward = the underlying's price (no rate, no basis:
  the book has neither yet); the strike is in settle-asset units; the vol is, in order of
  preference, ``vols[market]``, the market's ``mark_vol`` (when the schema has one) or the
  Black-76 implied vol of its ``mark_price`` (a premium in settle-asset units);
* perps and dated futures are linear perps at their mark (a future's expiry is ignored),
  valued at their unrealized PnL ``qty (mark - entry) - funding`` (USD);
* a positive balance is collateral with haircuts ``1 - maint_asset_weight`` (MM) and
  ``maint_asset_weight - init_asset_weight`` (extra for IM), shocked with the underlying when
  it is one (risk-cancelling, as Derive's base collateral); a negative balance is borrowed cash
  at its USD value (borrowing an underlying is not supported).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from crossmargin.book.schema import Book, OptionMarket
from crossmargin.errors import InputError, NotSupportedError
from crossmargin.portfolio.positions import PortfolioSpec
from crossmargin.pricing import implied_vol

SECONDS_PER_YEAR = 365.0 * 86_400.0


def portfolio_from_book(
    book: Book,
    account_id: str,
    *,
    as_of: datetime | None = None,
    vols: Mapping[str, float] | None = None,
) -> PortfolioSpec:
    """The account ``account_id`` of ``book`` as a :class:`PortfolioSpec` (module docstring).

    Raises :class:`~crossmargin.errors.InputError` naming the field for an option without a
    vol or premium, a missing valuation time, an expired option or missing asset weights.
    """
    account = book.account(account_id)
    when = as_of or book.as_of
    vols = vols or {}
    where = f"accounts[{book.accounts.index(account)}]"
    underlyings: dict[str, dict[str, Any]] = {}
    expiries: dict[str, dict[str, Any]] = {}
    options: list[dict[str, Any]] = []
    perps: list[dict[str, Any]] = []
    for position in account.positions:
        market = book.markets[position.market]
        spot = book.assets[market.underlying].price
        settle = book.assets[market.settle_asset].price
        underlyings[market.underlying] = {"spot_usd": spot}
        if isinstance(market, OptionMarket):
            if when is None:
                raise InputError("as_of", None, "a valuation time is needed to value options")
            t = (market.expiry - when).total_seconds() / SECONDS_PER_YEAR
            if t <= 0.0:
                raise InputError(
                    f"markets.{position.market}.expiry", market.expiry.isoformat(), "expired"
                )
            key = f"{market.underlying}-{market.expiry:%Y%m%dT%H%M}"
            expiries[key] = {"underlying": market.underlying, "t_yrs": t, "forward_usd": spot}
            strike = market.strike * settle
            options.append(
                {
                    "expiry": key,
                    "strike_usd": strike,
                    "option_type": market.option_type,
                    "qty": position.qty,
                    "vol": _vol(position.market, market, vols, spot, strike, t, settle),
                }
            )
        else:
            mark = market.mark_price * settle if market.mark_price is not None else spot
            perps.append(
                {
                    "underlying": market.underlying,
                    "qty": position.qty,
                    "mark_usd": mark,
                    "value_usd": position.qty * (mark - position.entry_price * settle)
                    - position.unrealized_funding * settle,
                }
            )
    cash = 0.0
    collaterals: list[dict[str, Any]] = []
    for symbol, qty in account.balances.items():
        asset = book.assets[symbol]
        if qty < 0.0:
            if symbol in underlyings:
                raise NotSupportedError(
                    f"{where}.balances.{symbol}: borrowing an underlying ({qty}) in a "
                    "portfolio-margin account"
                )
            cash += qty * asset.price
            continue
        if asset.maint_asset_weight is None or asset.init_asset_weight is None:
            raise InputError(f"assets.{symbol}.maint_asset_weight", None, "weights are needed")
        collaterals.append(
            {
                "name": symbol,
                "amount": qty,
                "price_usd": asset.price,
                "shocked_with": symbol if symbol in underlyings else None,
                "mm_haircut_frac": 1.0 - asset.maint_asset_weight,
                "im_haircut_frac": asset.maint_asset_weight - asset.init_asset_weight,
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


def _vol(
    symbol: str,
    market: OptionMarket,
    vols: Mapping[str, float],
    spot: float,
    strike: float,
    t: float,
    settle: float,
) -> float:
    if symbol in vols:
        return float(vols[symbol])
    mark_vol = getattr(market, "mark_vol", None)
    if mark_vol is not None:
        return float(mark_vol)
    if market.mark_price is not None:
        premium = market.mark_price * settle
        vol = implied_vol(premium, spot, strike, t, 1.0, market.option_type == "call")
        return float(vol)
    raise InputError(
        f"markets.{symbol}.mark_vol",
        None,
        "an option in a portfolio-margin account needs a vol (mark_vol) or a premium (mark_price)",
    )
