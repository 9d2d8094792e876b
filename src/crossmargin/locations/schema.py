"""Portfolio-file models of where collateral lives (issue #17): locations, located balances,
transfers in flight and the in-flight credit policy.

Kept apart from :mod:`crossmargin.book.schema` (which imports them) so the plain book stays
as it was: a balance given as a number lives at the home venue. A balance may instead be
``{qty: 10, location: arbitrum}`` or a list of such lots; :func:`split_located_balances` moves
the remote lots out of ``balances`` (which keeps home quantities only) into
``remote_balances`` before the account is validated.

Units: ``_s`` seconds, ``_usd`` USD, ``_frac`` fractions (0.05 = 5 %), ``qty`` units of the
asset.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from crossmargin.errors import FieldValueError

#: the venue of the book itself; a plain balance lives here
HOME = "home"
#: separator of a located asset's symbol in the compiled book: ``ETH@arbitrum``
LOCATED_SEP = "@"
#: separator of an in-flight asset's symbol: ``ETH@arbitrum>home``
IN_FLIGHT_SEP = ">"


def base_asset(symbol: str) -> str:
    """The asset a compiled symbol stands for: ``ETH@arbitrum`` and ``ETH@arbitrum>home`` are
    ``ETH`` (their price and returns are ETH's); a plain symbol is itself."""
    return symbol.split(LOCATED_SEP, 1)[0] if LOCATED_SEP in symbol else symbol


#: the longest finality or elapsed time accepted: a year
SECONDS_MAX = 365.0 * 86_400.0
QTY_MAX = 1e15
USD_MAX = 1e30

LocationState = Literal["open", "delayed", "halted"]


def _bounded(*, ge: float | None = None, gt: float | None = None, le: float | None = None) -> Any:
    return Field(strict=True, allow_inf_nan=False, ge=ge, gt=gt, le=le)


Fraction = Annotated[float, _bounded(ge=0, le=1)]
Seconds = Annotated[float, _bounded(ge=0, le=SECONDS_MAX)]
PositiveQty = Annotated[float, _bounded(gt=0, le=QTY_MAX)]
SignedQty = Annotated[float, _bounded(ge=-QTY_MAX, le=QTY_MAX)]
Usd = Annotated[float, _bounded(ge=0, le=USD_MAX)]
LocationName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Location(_Model):
    """A chain or venue holding collateral, and the bridge/transfer model to the home venue.

    Margin credit of collateral here is ``value x asset weight x (1 - bridge_haircut_frac)``
    while ``state`` is ``open`` or ``delayed`` and 0 while ``halted`` (the collateral still
    counts in the owner's equity). A transfer out of here is final after ``finality_s``
    (``+ delay_s`` while delayed) and costs ``transfer_cost_usd + transfer_cost_frac x value``.
    """

    bridge_haircut_frac: Fraction = Field(
        0.0, description="Credit lost for bridge and custody risk: credit x (1 - this)."
    )
    finality_s: Seconds = Field(0.0, description="Seconds until a transfer from here is final.")
    delay_s: Seconds = Field(0.0, description="Extra seconds of finality while delayed.")
    transfer_cost_usd: Usd = Field(0.0, description="Fixed cost of one transfer, USD.")
    transfer_cost_frac: Fraction = Field(0.0, description="Cost per USD transferred.")
    state: LocationState = Field("open", description="open, delayed or halted.")
    depth_pool: str | None = Field(
        None, description="Name of a pool in 'pools' where collateral here is liquidated."
    )

    @property
    def credit_factor(self) -> float:
        """Multiplier of the asset weight: 0 when halted, else 1 - bridge haircut."""
        return 0.0 if self.state == "halted" else 1.0 - self.bridge_haircut_frac

    @property
    def effective_finality_s(self) -> float:
        return self.finality_s + (self.delay_s if self.state == "delayed" else 0.0)


class LocatedBalance(_Model):
    """A lot of ``asset`` held at a remote ``location`` (negative: borrowed there)."""

    asset: str
    qty: SignedQty
    location: LocationName


class InFlightTransfer(_Model):
    """``qty`` of ``asset`` sent from ``from`` to ``to``, ``elapsed_s`` seconds ago."""

    asset: str
    qty: PositiveQty
    from_location: LocationName = Field(alias="from")
    to_location: LocationName = Field(alias="to")
    elapsed_s: Seconds = 0.0


class InFlightCredit(_Model):
    """Credit of a transfer not yet final: ``none`` (0) or ``discount`` (the destination's
    credit x (1 - discount_frac)). Once final it is credited at its destination."""

    mode: Literal["none", "discount"] = "none"
    discount_frac: Fraction = 0.5


def split_located_balances(data: Any) -> Any:
    """Account input: move ``{qty, location}`` balances (or lists of them) that are not at
    home into ``remote_balances``; home lots join the plain balance. Numbers are untouched."""
    if not isinstance(data, dict) or not isinstance(data.get("balances"), dict):
        return data
    plain: dict[Any, Any] = {}
    remote: list[Any] = list(data.get("remote_balances") or [])
    for asset, value in data["balances"].items():
        lots = value if isinstance(value, list) else [value] if isinstance(value, dict) else None
        if lots is None:
            plain[asset] = value
            continue
        home_qty: Any = None
        for i, lot in enumerate(lots):
            where = f"balances.{asset}" + (f"[{i}]" if isinstance(value, list) else "")
            if not isinstance(lot, dict) or set(lot) - {"qty", "location"} or "qty" not in lot:
                raise FieldValueError(where, lot, "a balance is a number or {qty, location}")
            qty, location = lot["qty"], lot.get("location", HOME)
            if location == HOME:
                if isinstance(qty, bool) or not isinstance(qty, int | float):
                    raise FieldValueError(f"{where}.qty", qty, "must be a number")
                home_qty = qty if home_qty is None else home_qty + qty
            else:
                remote.append({"asset": asset, "qty": qty, "location": location})
        if home_qty is not None:
            plain[asset] = home_qty
    return {**data, "balances": plain, "remote_balances": remote}


def check_locations(
    where: str,
    remote: list[LocatedBalance],
    in_flight: list[InFlightTransfer],
    locations: dict[str, Location],
    assets: set[str],
) -> None:
    """Every named location is defined (or home) and every asset known; raises
    :class:`~crossmargin.errors.UnknownNameError` naming the field."""
    from crossmargin.errors import InputError, UnknownNameError

    known = set(locations) | {HOME}
    for lot in remote:
        at = f"{where}.balances.{lot.asset}"
        if lot.asset not in assets:
            raise UnknownNameError(at, lot.asset, "unknown asset (not in 'assets')")
        if lot.location not in known:
            raise UnknownNameError(f"{at}.location", lot.location, "unknown location")
    for i, transfer in enumerate(in_flight):
        at = f"{where}.in_flight[{i}]"
        if transfer.asset not in assets:
            raise UnknownNameError(f"{at}.asset", transfer.asset, "unknown asset")
        for key, name in (("from", transfer.from_location), ("to", transfer.to_location)):
            if name not in known:
                raise UnknownNameError(f"{at}.{key}", name, "unknown location")
        if transfer.from_location == transfer.to_location:
            raise InputError(f"{at}.to", transfer.to_location, "same as 'from'")


def check_location_table(
    locations: dict[str, Location], assets: set[str], pools: set[str] | None = None
) -> None:
    """``home`` is implicit; asset symbols may not contain the located separators; a
    ``depth_pool`` names a pool of the book."""
    from crossmargin.errors import InputError, UnknownNameError

    for name, location in locations.items():
        if location.depth_pool is not None and location.depth_pool not in (pools or set()):
            raise UnknownNameError(
                f"locations.{name}.depth_pool", location.depth_pool, "unknown pool (not in 'pools')"
            )
    if HOME in locations:
        raise InputError(f"locations.{HOME}", HOME, "reserved: the home venue is implicit")
    if locations:
        for symbol in assets:
            if LOCATED_SEP in symbol or IN_FLIGHT_SEP in symbol:
                raise InputError(
                    f"assets.{symbol}", symbol, "with locations, asset names may not contain @ or >"
                )
