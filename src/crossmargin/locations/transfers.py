r"""Moving collateral between locations: start a transfer, let time pass, land it.

A transfer of :math:`q` units of an asset at price :math:`P` from :math:`\ell_1` to
:math:`\ell_2` costs

.. math::

    c_{usd} = \sum_{\ell \in \{\ell_1, \ell_2\}} (c^{fixed}_\ell + c^{frac}_\ell \, q P),
    \qquad q_{flight} = q - c_{usd} / P

paid in the asset when the transfer starts; the rest is in flight until
:func:`~crossmargin.locations.view.transfer_finality_s` has passed, then it is a lot at the
destination. Quantity is conserved at every stage: source + in flight + destination + cost =
what the account held (tested). A halted source refuses the transfer.
"""

from __future__ import annotations

from crossmargin.book.schema import Account, Book
from crossmargin.errors import InputError, UnknownNameError
from crossmargin.locations.schema import HOME, InFlightTransfer, LocatedBalance
from crossmargin.locations.view import is_final, location_of


def held_qty(account: Account, asset: str, location: str) -> float:
    """Units of ``asset`` the account holds at ``location`` (not counting transfers)."""
    if location == HOME:
        return account.balances.get(asset, 0.0)
    return sum(
        lot.qty
        for lot in account.remote_balances
        if lot.asset == asset and lot.location == location
    )


def transfer_cost_usd(book: Book, asset: str, qty: float, source: str, destination: str) -> float:
    """Fixed plus proportional cost of both ends, USD at the book's price."""
    value = qty * book.assets[asset].price
    return sum(
        location_of(book, name).transfer_cost_usd
        + location_of(book, name).transfer_cost_frac * value
        for name in (source, destination)
    )


def _with_qty(account: Account, asset: str, location: str, delta: float) -> Account:
    """The account with ``delta`` units added at ``location`` (lots of one location merged)."""
    if location == HOME:
        balances = dict(account.balances)
        balances[asset] = balances.get(asset, 0.0) + delta
        return account.model_copy(update={"balances": balances})
    lots = [
        lot
        for lot in account.remote_balances
        if not (lot.asset == asset and lot.location == location)
    ]
    total = held_qty(account, asset, location) + delta
    if total != 0.0:
        lots.append(LocatedBalance(asset=asset, qty=total, location=location))
    return account.model_copy(update={"remote_balances": lots})


def _replace_account(book: Book, account: Account) -> Book:
    accounts = [account if a.id == account.id else a for a in book.accounts]
    return book.model_copy(update={"accounts": accounts})


def start_transfer(
    book: Book, account_id: str, asset: str, qty: float, source: str, destination: str
) -> tuple[Book, float]:
    """The book with ``qty`` of ``asset`` leaving ``source`` for ``destination``, and the
    cost in USD. Refused (one-line :class:`InputError`): unknown names, a non-positive or
    larger-than-held quantity, a halted source, a cost as large as the transfer."""
    account = book.account(account_id)
    if asset not in book.assets:
        raise UnknownNameError("--asset", asset, "unknown asset (not in 'assets')")
    for option, name in (("--from", source), ("--to", destination)):
        if name != HOME and name not in book.locations:
            raise UnknownNameError(option, name, "unknown location (not in 'locations')")
    if source == destination:
        raise InputError("--to", destination, "same as --from")
    if not (qty > 0.0 and qty < float("inf")):
        raise InputError("--qty", qty, "must be a finite number > 0")
    held = held_qty(account, asset, source)
    if qty > held * (1.0 + 1e-12):
        raise InputError("--qty", qty, f"more than the {held:g} {asset} held at {source}")
    if location_of(book, source).state == "halted":
        raise InputError("--from", source, "the bridge is halted: nothing leaves it")
    cost_usd = transfer_cost_usd(book, asset, qty, source, destination)
    flight_qty = qty - cost_usd / book.assets[asset].price
    if flight_qty <= 0.0:
        raise InputError("--qty", qty, f"the transfer cost {cost_usd:,.2f} USD takes all of it")
    account = _with_qty(account, asset, source, -qty)
    transfer = InFlightTransfer.model_validate(
        {"asset": asset, "qty": flight_qty, "from": source, "to": destination}
    )
    account = account.model_copy(update={"in_flight": [*account.in_flight, transfer]})
    return _replace_account(book, account), cost_usd


def advance(book: Book, seconds: float) -> Book:
    """The book ``seconds`` later: every transfer's clock advances; final ones land."""
    if not (seconds >= 0.0 and seconds < float("inf")):
        raise InputError("seconds", seconds, "must be a finite number >= 0")
    accounts = []
    for account in book.accounts:
        flights: list[InFlightTransfer] = []
        for transfer in account.in_flight:
            moved = transfer.model_copy(update={"elapsed_s": transfer.elapsed_s + seconds})
            if is_final(book, moved):
                account = _with_qty(account, moved.asset, moved.to_location, moved.qty)
            else:
                flights.append(moved)
        accounts.append(account.model_copy(update={"in_flight": flights}))
    return book.model_copy(update={"accounts": accounts})
