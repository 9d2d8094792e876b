r"""A book with located collateral as rows of the one kernel.

The kernel weighs each balance row by its asset's weights. A lot of ``ETH`` at ``arbitrum``
becomes a row of the *located asset* ``ETH@arbitrum``: the same price as ``ETH`` (prices are
expanded with :meth:`LocatedView.prices`), the same tiers and size premium, asset weights
multiplied by the location's credit factor:

.. math::

    \text{credit} = q P \, w_{a,L} \, (1 - h_\ell) \ \text{(open, delayed)}, \qquad
    0 \ \text{(halted)}; \qquad \text{equity} = q P \ \text{(always)}

with :math:`h_\ell` the bridge haircut. Liability weights are unchanged (a remote borrow is
owed in full). A transfer in flight is the row ``ETH@arbitrum>home``: weight 0 (policy
``none``) or the destination's credit factor x (1 - discount) (policy ``discount``; 0 if the
source is halted); once its finality has passed it is credited at its destination. Every
figure then comes from :class:`~crossmargin.margin.engine.MarginEngine` on :attr:`LocatedView.
book` - the location is a dimension of the row, not a second engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from crossmargin.amm.schema import LPPositionSpec
from crossmargin.book.schema import Account, Asset, Book
from crossmargin.locations.schema import (
    HOME,
    IN_FLIGHT_SEP,
    LOCATED_SEP,
    InFlightTransfer,
    LocatedBalance,
    Location,
)

HOME_LOCATION = Location()
#: the 'where' of an LP position's rows: withdrawn and sold at home, no transfer
LP_LOCATION = "lp"


def location_of(book: Book, name: str) -> Location:
    """The model of a location (home: no haircut, final at once, open)."""
    return HOME_LOCATION if name == HOME else book.locations[name]


def transfer_finality_s(book: Book, transfer: InFlightTransfer) -> float:
    """Seconds until a transfer is final: the longer of its two ends (delays included)."""
    return max(
        location_of(book, transfer.from_location).effective_finality_s,
        location_of(book, transfer.to_location).effective_finality_s,
    )


def is_final(book: Book, transfer: InFlightTransfer) -> bool:
    return transfer.elapsed_s >= transfer_finality_s(book, transfer) and (
        location_of(book, transfer.from_location).state != "halted"
    )


def in_flight_factor(book: Book, transfer: InFlightTransfer) -> float:
    """Multiplier of the asset weight of a transfer not yet final."""
    if location_of(book, transfer.from_location).state == "halted":
        return 0.0  # stuck on a halted bridge
    policy = book.in_flight_credit
    if policy.mode == "none":
        return 0.0
    return location_of(book, transfer.to_location).credit_factor * (1.0 - policy.discount_frac)


def located_symbol(asset: str, location: str) -> str:
    return asset if location == HOME else f"{asset}{LOCATED_SEP}{location}"


def in_flight_symbol(transfer: InFlightTransfer) -> str:
    return (
        f"{transfer.asset}{LOCATED_SEP}{transfer.from_location}"
        f"{IN_FLIGHT_SEP}{transfer.to_location}"
    )


@dataclass(frozen=True)
class LocatedView:
    """The compiled book and, for each added symbol, its base asset and where it lives."""

    book: Book
    source: Book
    base_of: dict[str, str] = field(default_factory=dict)
    where: dict[str, str] = field(default_factory=dict)  # location, or 'from>to' in flight

    def prices(self, overrides: Mapping[str, float] | None) -> dict[str, float]:
        """Price overrides of base assets carried to their located and in-flight symbols."""
        out = dict(overrides or {})
        for symbol, base in self.base_of.items():
            if base in out and symbol not in out:
                out[symbol] = out[base]
        return out

    def base_price_vector(self, base_prices: Mapping[str, float]) -> dict[str, float]:
        """Prices of every symbol of the compiled book from the base assets' prices."""
        return {
            s: base_prices.get(self.base_of.get(s, s), a.price) for s, a in self.book.assets.items()
        }


def compiled_view(book: Book) -> LocatedView:
    """The view of an already compiled book (e.g. after a what-if on :attr:`LocatedView.book`):
    its located symbols' base assets and locations read from their names."""
    base_of = {s: s.split(LOCATED_SEP, 1)[0] for s in book.assets if LOCATED_SEP in s}
    where = {s: s.split(LOCATED_SEP, 1)[1] for s in base_of}
    return LocatedView(book, book, base_of, where)


def lp_holdings(book: Book, position: LPPositionSpec) -> dict[str, float]:
    """Base and quote an LP position holds at the book's prices (pool price = base USD /
    quote USD: the pool is assumed arbitraged to the oracle)."""
    from crossmargin.amm.lp import LPPosition

    spec = book.pools[position.pool]
    price = book.assets[spec.base].price / book.assets[spec.quote].price
    lp = LPPosition(position.tick_lower, position.tick_upper, position.liquidity)
    base, quote = lp.amounts(price)
    return {spec.base: base, spec.quote: quote}


def _scaled(asset: Asset, factor: float) -> Asset:
    if factor == 1.0:
        return asset
    init_aw, maint_aw = asset.init_asset_weight, asset.maint_asset_weight
    return asset.model_copy(
        update={
            "init_asset_weight": None if init_aw is None else init_aw * factor,
            "maint_asset_weight": None if maint_aw is None else maint_aw * factor,
        }
    )


def first_located_field(book: Book) -> tuple[str, object] | None:
    """``(field, value)`` of the book's first located lot, transfer in flight or LP position
    (for a command that cannot margin them to name in its refusal); None if there is none."""
    for i, account in enumerate(book.accounts):
        if account.remote_balances:
            lot = account.remote_balances[0]
            return f"accounts[{i}].balances.{lot.asset}", {"qty": lot.qty, "location": lot.location}
        if account.in_flight:
            transfer = account.in_flight[0]
            return f"accounts[{i}].in_flight[0]", f"{transfer.qty:g} {transfer.asset}"
        if account.lp_positions:
            return f"accounts[{i}].lp_positions[0]", account.lp_positions[0].pool
    return None


def refuse_located(book: Book, reason: str) -> None:
    """Raise an :class:`~crossmargin.errors.InputError` naming the first located field of
    ``book`` (``reason``: why this command cannot credit it, and what to use instead)."""
    from crossmargin.errors import InputError

    found = first_located_field(book)
    if found is not None:
        raise InputError(found[0], found[1], reason)


def located_view(book: Book) -> LocatedView:
    """The book with remote lots and transfers in flight as rows of located assets.

    A book without locations, remote lots or transfers is returned as it is.
    """
    if not any(a.remote_balances or a.in_flight or a.lp_positions for a in book.accounts):
        return LocatedView(book, book)
    assets = dict(book.assets)
    base_of: dict[str, str] = {}
    where: dict[str, str] = {}
    accounts: list[Account] = []
    for account in book.accounts:
        balances = dict(account.balances)
        lots: list[tuple[str, float, str, float]] = [
            (lot.asset, lot.qty, lot.location, location_of(book, lot.location).credit_factor)
            for lot in account.remote_balances
        ]
        for transfer in account.in_flight:
            if is_final(book, transfer):  # landed: credited at its destination
                factor = location_of(book, transfer.to_location).credit_factor
                lots.append((transfer.asset, transfer.qty, transfer.to_location, factor))
                continue
            symbol = in_flight_symbol(transfer)
            assets.setdefault(
                symbol, _scaled(book.assets[transfer.asset], in_flight_factor(book, transfer))
            )
            base_of[symbol] = transfer.asset
            where[symbol] = f"{transfer.from_location}{IN_FLIGHT_SEP}{transfer.to_location}"
            balances[symbol] = balances.get(symbol, 0.0) + transfer.qty
        for position in account.lp_positions:
            for asset, qty in lp_holdings(book, position).items():
                symbol = f"{asset}{LOCATED_SEP}{LP_LOCATION}:{position.haircut_frac:g}"
                assets.setdefault(symbol, _scaled(book.assets[asset], 1.0 - position.haircut_frac))
                base_of[symbol] = asset
                where[symbol] = LP_LOCATION
                balances[symbol] = balances.get(symbol, 0.0) + qty
        for asset, qty, location, factor in lots:
            symbol = located_symbol(asset, location)
            if symbol != asset:
                assets.setdefault(symbol, _scaled(book.assets[asset], factor))
                base_of[symbol] = asset
                where[symbol] = location
            balances[symbol] = balances.get(symbol, 0.0) + qty
        accounts.append(
            account.model_copy(
                update={
                    "balances": balances,
                    "remote_balances": [],
                    "in_flight": [],
                    "lp_positions": [],  # now rows: compiling again must not add them twice
                }
            )
        )
    compiled = book.model_copy(update={"assets": assets, "accounts": accounts})
    return LocatedView(compiled, book, base_of, where)


def source_from_compiled(view: LocatedView, compiled: Book) -> Book:
    """The source book's accounts with the quantities of a compiled book (e.g. a liquidation's
    ``book_after``): located rows back to remote lots, in-flight rows back to their transfers.
    LP rows cannot be mapped back (a liquidated LP is withdrawn): refused if any moved."""
    from crossmargin.errors import NotSupportedError

    by_id = {a.id: a for a in compiled.accounts}
    accounts: list[Account] = []
    for account in view.source.accounts:
        rows = by_id[account.id].balances
        balances: dict[str, float] = {}
        remote: list[LocatedBalance] = []
        flights = list(account.in_flight)
        for symbol, qty in rows.items():
            where = view.where.get(symbol)
            if where is None:
                balances[symbol] = qty
            elif where == LP_LOCATION:
                if account.lp_positions:
                    raise NotSupportedError("a liquidated LP position cannot be mapped back")
            elif IN_FLIGHT_SEP in where:
                continue  # in flight is never filled by the located execution
            elif qty != 0.0:
                remote.append(LocatedBalance(asset=view.base_of[symbol], qty=qty, location=where))
        accounts.append(
            account.model_copy(
                update={"balances": balances, "remote_balances": remote, "in_flight": flights}
            )
        )
    return view.source.model_copy(update={"accounts": accounts})
