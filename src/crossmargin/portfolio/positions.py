r"""One account as struct-of-arrays (underlyings, expiries, options, perps, collateral).

Rows are grouped so that every kernel loop reads contiguous memory:

* **underlyings** ``[n_u]``: spot :math:`S_u` (USD) and the confidence of its feeds;
* **expiries** ``[n_e]`` sorted by underlying (CSR offsets ``expiry_start[n_u + 1]``): time to
  expiry :math:`T` (years), forward :math:`F` and its fixed part :math:`F^{fix}` (USD), rate
  :math:`r` (continuously compounded, per year), discount factor :math:`D = e^{-rT}` and the
  confidence of the forward and rate feeds;
* **options** ``[n_o]`` sorted by expiry (CSR offsets ``option_start[n_e + 1]``): strike
  :math:`K` (USD), call/put, signed quantity :math:`q` (units of the underlying, > 0 long) and
  mark volatility :math:`\sigma` (per 1.0, annualized);
* **perps** ``[n_p]`` sorted by underlying: quantity, mark price (USD) and value (unrealized PnL
  plus unsettled funding, USD, part of the mark-to-market);
* **collateral** ``[n_c]``: value (USD), haircuts and, for *risk-cancelling* collateral (a token
  that moves with an underlying, e.g. wstETH in an ETH account), the underlying it is shocked
  with (``-1``: not shocked, only haircut).

Under a spot shock :math:`m` (a multiplier, 1.18 for +18 %) the forward moves by its variable
part only (Derive's forward feed: during the 30-minute settlement TWAP the part already averaged
is fixed, ``src/risk-managers/PMRM_2.sol::_initialiseExpiries`` and the forward portions of
``IForwardFeed``):

.. math::  F(m) = (F - F^{fix})\,m + F^{fix}

Values are in *cash units*: the account's cash asset (USDC for Derive), which is worth
``stable_price_usd`` USD; collateral values are ``amount * price_usd / stable_price_usd``
(Derive ``PMRM_2._arrangeAssets``). With ``stable_price_usd = 1`` cash units are USD.

Validation happens here, once, with every error naming the field, the row and the value:
the kernels never see a NaN, a non-positive price, strike or volatility, or an expired option
(unless ``allow_expired``: then the option is worth its intrinsic value on a fully fixed
forward, as on Derive until settlement).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Self

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crossmargin.errors import FieldValueError, InputError, UnknownNameError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

NOT_SHOCKED = -1
"""``collateral_underlying`` of collateral that does not move with any underlying."""


@dataclass(frozen=True, eq=False)
class Portfolio:
    """One account's positions as arrays (module docstring: layout, units, forward rule).

    Build it with :func:`portfolio_from_arrays` (validated, sorted) or
    :meth:`PortfolioSpec.to_portfolio`; do not construct it directly.
    """

    underlying_names: tuple[str, ...]
    spot_usd: FloatArray  # [n_u]
    underlying_confidence: FloatArray  # [n_u] in [0, 1]
    expiry_start: IntArray  # [n_u + 1] CSR offsets into the expiry rows

    expiry_names: tuple[str, ...]
    expiry_underlying: IntArray  # [n_e]
    expiry_t_yrs: FloatArray  # [n_e] >= 0
    expiry_fwd_usd: FloatArray  # [n_e] > 0
    expiry_fwd_fixed_usd: FloatArray  # [n_e] in [0, F]
    expiry_rate: FloatArray  # [n_e] per year
    expiry_df: FloatArray  # [n_e] exp(-rate * t)
    expiry_confidence: FloatArray  # [n_e]
    option_start: IntArray  # [n_e + 1] CSR offsets into the option rows

    option_expiry: IntArray  # [n_o]
    option_strike_usd: FloatArray  # [n_o] > 0
    option_is_call: BoolArray  # [n_o]
    option_qty: FloatArray  # [n_o]
    option_vol: FloatArray  # [n_o] > 0
    option_confidence: FloatArray  # [n_o]

    perp_underlying: IntArray  # [n_p]
    perp_qty: FloatArray  # [n_p]
    perp_mark_usd: FloatArray  # [n_p] > 0
    perp_value_usd: FloatArray  # [n_p]
    perp_t_yrs: FloatArray  # [n_p] time to expiry of a dated future, years; 0: perpetual
    perp_start: IntArray  # [n_u + 1]

    collateral_names: tuple[str, ...]
    collateral_value_usd: FloatArray  # [n_c] >= 0
    collateral_underlying: IntArray  # [n_c] underlying row, or NOT_SHOCKED
    collateral_mm_haircut_frac: FloatArray  # [n_c]
    collateral_im_haircut_frac: FloatArray  # [n_c] extra for initial margin
    collateral_confidence: FloatArray  # [n_c]

    cash_usd: float
    stable_price_usd: float

    @property
    def n_underlyings(self) -> int:
        return len(self.underlying_names)

    @property
    def n_options(self) -> int:
        return int(self.option_qty.shape[0])


def _floats(name: str, values: npt.ArrayLike, n: int | None = None) -> FloatArray:
    try:
        array = np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))
    except (TypeError, ValueError) as exc:
        raise InputError(name, values, "must be an array of numbers") from exc
    if n is not None and array.shape[0] != n:
        raise InputError(name, array.shape[0], f"length must be {n}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{name}[{i}]", float(array[i]), "must be finite")
    return array


def _check(name: str, array: FloatArray, ok: BoolArray, reason: str) -> None:
    bad = np.flatnonzero(~ok)
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{name}[{i}]", float(array[i]), reason)


def _indices(
    name: str, values: npt.ArrayLike, n: int, upper: int, allow_minus_one: bool
) -> IntArray:
    array = np.asarray(values)
    if array.size and not np.issubdtype(array.dtype, np.integer):
        raise InputError(name, values, "must be integer row indices")
    array = np.ascontiguousarray(array.astype(np.int64).reshape(-1))
    if array.shape[0] != n:
        raise InputError(name, array.shape[0], f"length must be {n}")
    low = -1 if allow_minus_one else 0
    bad = np.flatnonzero((array < low) | (array >= upper))
    if bad.size:
        i = int(bad[0])
        raise InputError(f"{name}[{i}]", int(array[i]), f"must be in [{low}, {upper})")
    return array


def _offsets(group: IntArray, n_groups: int) -> IntArray:
    start = np.zeros(n_groups + 1, dtype=np.int64)
    np.cumsum(np.bincount(group, minlength=n_groups), out=start[1:])
    return start


def portfolio_from_arrays(
    *,
    underlying_names: Sequence[str],
    spot_usd: npt.ArrayLike,
    underlying_confidence: npt.ArrayLike | None = None,
    expiry_underlying: npt.ArrayLike = (),
    expiry_t_yrs: npt.ArrayLike = (),
    expiry_fwd_usd: npt.ArrayLike = (),
    expiry_fwd_fixed_usd: npt.ArrayLike | None = None,
    expiry_rate: npt.ArrayLike | None = None,
    expiry_confidence: npt.ArrayLike | None = None,
    expiry_names: Sequence[str] | None = None,
    option_expiry: npt.ArrayLike = (),
    option_strike_usd: npt.ArrayLike = (),
    option_is_call: npt.ArrayLike = (),
    option_qty: npt.ArrayLike = (),
    option_vol: npt.ArrayLike = (),
    option_confidence: npt.ArrayLike | None = None,
    perp_underlying: npt.ArrayLike = (),
    perp_qty: npt.ArrayLike = (),
    perp_mark_usd: npt.ArrayLike = (),
    perp_value_usd: npt.ArrayLike | None = None,
    perp_t_yrs: npt.ArrayLike | None = None,
    collateral_names: Sequence[str] = (),
    collateral_value_usd: npt.ArrayLike = (),
    collateral_underlying: npt.ArrayLike | None = None,
    collateral_mm_haircut_frac: npt.ArrayLike | None = None,
    collateral_im_haircut_frac: npt.ArrayLike | None = None,
    collateral_confidence: npt.ArrayLike | None = None,
    cash_usd: float = 0.0,
    stable_price_usd: float = 1.0,
    allow_expired: bool = False,
) -> Portfolio:
    """Validate the arrays of one account and sort them into a :class:`Portfolio`.

    Indices refer to rows of the arrays as given (``option_expiry`` into the expiry arrays,
    ``expiry_underlying``, ``perp_underlying`` and ``collateral_underlying`` into the
    underlyings; ``-1`` for collateral that is not shocked). Optional arrays default to: full
    confidence, no fixed forward part, zero rate and perp value, no haircut, no shock.

    Raises :class:`~crossmargin.errors.InputError` naming the array, the row and the value for:
    a non-finite number, ``spot_usd``, ``expiry_fwd_usd``, ``option_strike_usd``,
    ``option_vol`` or ``perp_mark_usd`` ``<= 0``, a confidence or haircut outside ``[0, 1]``
    (haircuts: ``mm + im <= 1``), a fixed forward part outside ``[0, F]``, an index out of range
    and ``expiry_t_yrs < 0`` - or ``== 0`` unless ``allow_expired``.
    """
    names = tuple(str(n) for n in underlying_names)
    n_u = len(names)
    if len(set(names)) != n_u:
        raise InputError("underlying_names", list(names), "duplicate underlying name")
    spot = _floats("spot_usd", spot_usd, n_u)
    _check("spot_usd", spot, spot > 0.0, "must be > 0")
    u_conf = _confidence("underlying_confidence", underlying_confidence, n_u)

    t = _floats("expiry_t_yrs", expiry_t_yrs)
    n_e = t.shape[0]
    e_und = _indices("expiry_underlying", expiry_underlying, n_e, n_u, False)
    expired_ok = t >= 0.0 if allow_expired else t > 0.0
    _check(
        "expiry_t_yrs",
        t,
        expired_ok,
        "must be >= 0" if allow_expired else "option expired (time to expiry <= 0 years)",
    )
    fwd = _floats("expiry_fwd_usd", expiry_fwd_usd, n_e)
    _check("expiry_fwd_usd", fwd, fwd > 0.0, "must be > 0")
    fixed = _optional("expiry_fwd_fixed_usd", expiry_fwd_fixed_usd, n_e, 0.0)
    _check(
        "expiry_fwd_fixed_usd",
        fixed,
        (fixed >= 0.0) & (fixed <= fwd),
        "fixed part of the forward must be in [0, expiry_fwd_usd]",
    )
    rate = _optional("expiry_rate", expiry_rate, n_e, 0.0)
    e_conf = _confidence("expiry_confidence", expiry_confidence, n_e)
    e_names = (
        tuple(f"{names[int(u)]}#{i}" for i, u in enumerate(e_und))
        if expiry_names is None
        else tuple(str(x) for x in expiry_names)
    )
    if len(e_names) != n_e:
        raise InputError("expiry_names", len(e_names), f"length must be {n_e}")

    strike = _floats("option_strike_usd", option_strike_usd)
    n_o = strike.shape[0]
    _check("option_strike_usd", strike, strike > 0.0, "must be > 0")
    o_exp = _indices("option_expiry", option_expiry, n_o, n_e, False)
    is_call = _flags("option_is_call", option_is_call, n_o)
    qty = _floats("option_qty", option_qty, n_o)
    vol = _floats("option_vol", option_vol, n_o)
    _check("option_vol", vol, vol > 0.0, "must be > 0 (volatility per 1.0, annualized)")
    o_conf = _confidence("option_confidence", option_confidence, n_o)

    p_qty = _floats("perp_qty", perp_qty)
    n_p = p_qty.shape[0]
    p_und = _indices("perp_underlying", perp_underlying, n_p, n_u, False)
    p_mark = _floats("perp_mark_usd", perp_mark_usd, n_p)
    _check("perp_mark_usd", p_mark, p_mark > 0.0, "must be > 0")
    p_value = _optional("perp_value_usd", perp_value_usd, n_p, 0.0)
    p_t = _optional("perp_t_yrs", perp_t_yrs, n_p, 0.0)
    _check("perp_t_yrs", p_t, p_t >= 0.0, "must be >= 0 (years to a future's expiry)")

    c_value = _floats("collateral_value_usd", collateral_value_usd)
    n_c = c_value.shape[0]
    _check("collateral_value_usd", c_value, c_value >= 0.0, "must be >= 0")
    c_names = tuple(str(x) for x in collateral_names)
    if len(c_names) != n_c:
        raise InputError("collateral_names", len(c_names), f"length must be {n_c}")
    c_und = (
        np.full(n_c, NOT_SHOCKED, dtype=np.int64)
        if collateral_underlying is None
        else _indices("collateral_underlying", collateral_underlying, n_c, n_u, True)
    )
    mm_cut = _fraction("collateral_mm_haircut_frac", collateral_mm_haircut_frac, n_c)
    im_cut = _fraction("collateral_im_haircut_frac", collateral_im_haircut_frac, n_c)
    _check(
        "collateral_im_haircut_frac",
        im_cut,
        mm_cut + im_cut <= 1.0,
        "mm + im haircut must not exceed 1",
    )
    c_conf = _confidence("collateral_confidence", collateral_confidence, n_c)

    cash = _floats("cash_usd", [cash_usd])[0]
    stable = _floats("stable_price_usd", [stable_price_usd])
    _check("stable_price_usd", stable, stable > 0.0, "must be > 0")

    # sort: expiries by underlying (stable), options by their expiry's new position
    e_order = np.argsort(e_und, kind="stable")
    e_rank = np.empty(n_e, dtype=np.int64)
    e_rank[e_order] = np.arange(n_e)
    o_exp_sorted = e_rank[o_exp]
    o_order = np.argsort(o_exp_sorted, kind="stable")
    p_order = np.argsort(p_und, kind="stable")
    e_und_sorted = e_und[e_order]
    o_exp_final = o_exp_sorted[o_order]
    p_und_sorted = p_und[p_order]
    return Portfolio(
        underlying_names=names,
        spot_usd=spot,
        underlying_confidence=u_conf,
        expiry_start=_offsets(e_und_sorted, n_u),
        expiry_names=tuple(e_names[int(i)] for i in e_order),
        expiry_underlying=e_und_sorted,
        expiry_t_yrs=t[e_order],
        expiry_fwd_usd=fwd[e_order],
        expiry_fwd_fixed_usd=fixed[e_order],
        expiry_rate=rate[e_order],
        expiry_df=np.exp(-rate[e_order] * t[e_order]),
        expiry_confidence=e_conf[e_order],
        option_start=_offsets(o_exp_final, n_e),
        option_expiry=o_exp_final,
        option_strike_usd=strike[o_order],
        option_is_call=is_call[o_order],
        option_qty=qty[o_order],
        option_vol=vol[o_order],
        option_confidence=o_conf[o_order],
        perp_underlying=p_und_sorted,
        perp_qty=p_qty[p_order],
        perp_mark_usd=p_mark[p_order],
        perp_value_usd=p_value[p_order],
        perp_t_yrs=p_t[p_order],
        perp_start=_offsets(p_und_sorted, n_u),
        collateral_names=c_names,
        collateral_value_usd=c_value,
        collateral_underlying=c_und,
        collateral_mm_haircut_frac=mm_cut,
        collateral_im_haircut_frac=im_cut,
        collateral_confidence=c_conf,
        cash_usd=float(cash),
        stable_price_usd=float(stable[0]),
    )


def _optional(name: str, values: npt.ArrayLike | None, n: int, default: float) -> FloatArray:
    return np.full(n, default) if values is None else _floats(name, values, n)


def _confidence(name: str, values: npt.ArrayLike | None, n: int) -> FloatArray:
    return _fraction(name, values, n, default=1.0)


def _fraction(name: str, values: npt.ArrayLike | None, n: int, default: float = 0.0) -> FloatArray:
    array = _optional(name, values, n, default)
    _check(name, array, (array >= 0.0) & (array <= 1.0), "must be in [0, 1]")
    return array


def _flags(name: str, values: npt.ArrayLike, n: int) -> BoolArray:
    array = np.asarray(values)
    if array.dtype != np.bool_:
        if array.size and not np.issubdtype(array.dtype, np.number):
            raise InputError(name, values, "must be bools (True for a call) or 0/1")
        bad = np.flatnonzero((array != 0) & (array != 1))
        if bad.size:
            i = int(bad[0])
            raise InputError(f"{name}[{i}]", array.reshape(-1)[i], "must be True/False or 1/0")
        array = array != 0
    array = np.ascontiguousarray(array.reshape(-1))
    if array.shape[0] != n:
        raise InputError(name, array.shape[0], f"length must be {n}")
    return array


# --------------------------------------------------------------------------------------------
# The same account as validated data (YAML/JSON-able): what `crossmargin import-derive` prints


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class UnderlyingSpec(_Model):
    """An underlying (risk factor): spot in USD and the confidence of its price feeds."""

    spot_usd: PositiveFloat
    confidence: Fraction = Field(
        1.0, description="Minimum confidence of the spot (and perp) feeds, in [0, 1]."
    )


class ExpirySpec(_Model):
    """One expiry of options on an underlying: time, forward, rate, feed confidence."""

    underlying: Name
    t_yrs: NonNegativeFloat = Field(description="Time to expiry, years (365-day).")
    forward_usd: PositiveFloat
    forward_fixed_usd: NonNegativeFloat = Field(
        0.0, description="Part of the forward that does not move with spot (settlement TWAP)."
    )
    rate: FiniteFloat = Field(0.0, description="Continuously compounded rate, per year.")
    confidence: Fraction = 1.0

    @model_validator(mode="after")
    def _fixed_within_forward(self) -> Self:
        if self.forward_fixed_usd > self.forward_usd:
            raise FieldValueError(
                "forward_fixed_usd",
                self.forward_fixed_usd,
                f"must not exceed forward_usd {self.forward_usd}",
            )
        return self


class OptionSpec(_Model):
    """A European option position; ``qty`` in units of the underlying (> 0 long)."""

    expiry: Name
    strike_usd: PositiveFloat
    option_type: Literal["call", "put"]
    qty: FiniteFloat
    vol: PositiveFloat = Field(description="Mark implied volatility, per 1.0 (0.6 = 60 %).")
    confidence: Fraction = 1.0


class PerpSpec(_Model):
    """A perpetual (or dated future) position; ``value_usd`` is its unrealized PnL plus
    unsettled funding."""

    underlying: Name
    qty: FiniteFloat
    mark_usd: PositiveFloat
    value_usd: FiniteFloat = 0.0
    t_yrs: NonNegativeFloat = Field(
        0.0, description="A dated future's time to expiry, years (0: a perpetual); roll shock."
    )


class CollateralSpec(_Model):
    """A collateral balance, valued ``amount * price_usd / stable_price_usd`` cash units.

    ``shocked_with`` names the underlying the token moves with (risk-cancelling collateral:
    ETH or an ETH liquid-staking token in an ETH account); otherwise it is only haircut.
    """

    name: Name
    amount: NonNegativeFloat
    price_usd: PositiveFloat
    shocked_with: Name | None = None
    mm_haircut_frac: Fraction = 0.0
    im_haircut_frac: Fraction = Field(0.0, description="Extra haircut for initial margin.")
    confidence: Fraction = 1.0

    @model_validator(mode="after")
    def _haircuts(self) -> Self:
        if self.mm_haircut_frac + self.im_haircut_frac > 1.0:
            raise FieldValueError(
                "im_haircut_frac",
                self.im_haircut_frac,
                f"mm + im haircut must not exceed 1 (mm is {self.mm_haircut_frac})",
            )
        return self


class PortfolioSpec(_Model):
    """A portfolio-margin account as data; :meth:`to_portfolio` makes the arrays."""

    cash_usd: FiniteFloat = Field(0.0, description="Cash balance (negative: borrowed).")
    stable_price_usd: PositiveFloat = Field(
        1.0, description="USD price of the cash asset (1.0 when pegged)."
    )
    allow_expired: bool = Field(
        False, description="Accept options at t_yrs = 0 (worth intrinsic value until settled)."
    )
    underlyings: dict[Name, UnderlyingSpec] = Field(min_length=1)
    expiries: dict[Name, ExpirySpec] = Field(default_factory=dict)
    options: list[OptionSpec] = Field(default_factory=list)
    perps: list[PerpSpec] = Field(default_factory=list)
    collaterals: list[CollateralSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references(self) -> Self:
        for key, expiry in self.expiries.items():
            if expiry.underlying not in self.underlyings:
                raise UnknownNameError(
                    f"expiries.{key}.underlying", expiry.underlying, "unknown underlying"
                )
            if expiry.t_yrs == 0.0 and not self.allow_expired:
                raise InputError(
                    f"expiries.{key}.t_yrs",
                    expiry.t_yrs,
                    "option expired (time to expiry 0); set allow_expired to value it",
                )
        for i, option in enumerate(self.options):
            if option.expiry not in self.expiries:
                raise UnknownNameError(f"options[{i}].expiry", option.expiry, "unknown expiry")
        for i, perp in enumerate(self.perps):
            if perp.underlying not in self.underlyings:
                raise UnknownNameError(
                    f"perps[{i}].underlying", perp.underlying, "unknown underlying"
                )
        for i, coll in enumerate(self.collaterals):
            if coll.shocked_with is not None and coll.shocked_with not in self.underlyings:
                raise UnknownNameError(
                    f"collaterals[{i}].shocked_with", coll.shocked_with, "unknown underlying"
                )
        return self

    @classmethod
    def from_data(cls, data: Any) -> PortfolioSpec:
        """Validate parsed YAML/JSON; errors become one :class:`InputError` with the field path."""
        from crossmargin.book.io import input_error_from_validation

        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise input_error_from_validation(exc) from None

    def to_portfolio(self) -> Portfolio:
        """The struct-of-arrays form (validated again by :func:`portfolio_from_arrays`)."""
        u_names = list(self.underlyings)
        u_index = {name: i for i, name in enumerate(u_names)}
        e_names = list(self.expiries)
        e_index = {name: i for i, name in enumerate(e_names)}
        expiries = list(self.expiries.values())
        stable = self.stable_price_usd
        return portfolio_from_arrays(
            underlying_names=u_names,
            spot_usd=[u.spot_usd for u in self.underlyings.values()],
            underlying_confidence=[u.confidence for u in self.underlyings.values()],
            expiry_names=e_names,
            expiry_underlying=np.array([u_index[e.underlying] for e in expiries], np.int64),
            expiry_t_yrs=[e.t_yrs for e in expiries],
            expiry_fwd_usd=[e.forward_usd for e in expiries],
            expiry_fwd_fixed_usd=[e.forward_fixed_usd for e in expiries],
            expiry_rate=[e.rate for e in expiries],
            expiry_confidence=[e.confidence for e in expiries],
            option_expiry=np.array([e_index[o.expiry] for o in self.options], np.int64),
            option_strike_usd=[o.strike_usd for o in self.options],
            option_is_call=np.array([o.option_type == "call" for o in self.options], bool),
            option_qty=[o.qty for o in self.options],
            option_vol=[o.vol for o in self.options],
            option_confidence=[o.confidence for o in self.options],
            perp_underlying=np.array([u_index[p.underlying] for p in self.perps], np.int64),
            perp_qty=[p.qty for p in self.perps],
            perp_mark_usd=[p.mark_usd for p in self.perps],
            perp_value_usd=[p.value_usd for p in self.perps],
            perp_t_yrs=[p.t_yrs for p in self.perps],
            collateral_names=[c.name for c in self.collaterals],
            collateral_value_usd=[c.amount * c.price_usd / stable for c in self.collaterals],
            collateral_underlying=np.array(
                [
                    NOT_SHOCKED if c.shocked_with is None else u_index[c.shocked_with]
                    for c in self.collaterals
                ],
                np.int64,
            ),
            collateral_mm_haircut_frac=[c.mm_haircut_frac for c in self.collaterals],
            collateral_im_haircut_frac=[c.im_haircut_frac for c in self.collaterals],
            collateral_confidence=[c.confidence for c in self.collaterals],
            cash_usd=self.cash_usd,
            stable_price_usd=stable,
            allow_expired=self.allow_expired,
        )
