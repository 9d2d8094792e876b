"""Pydantic models of the portfolio file: assets, markets and accounts.

Units: every ``price`` of an asset is USD per unit; a market's ``mark_price`` and a position's
``entry_price`` and ``unrealized_funding`` are in units of the market's settle asset; ``_frac``
fields are fractions (0.05 = 5 %); ``_usd`` fields are USD.

Field-level checks live here (pydantic); checks that need the whole book (a position naming an
unknown market, duplicate account ids, isolated allocations larger than the balance) live in
:meth:`Book._check_references` and raise :class:`~crossmargin.errors.InputError` naming the
dotted field path.

Every number is bounded (the constants below; docs/methodology.md, "Bounds") so that every
intermediate of the kernel, the liquidation-price search, the portfolio grid and the risk
analytics stays finite in float64, and is a real number: ``true`` or ``"3000"`` is refused
(pydantic strict floats; integers are accepted). Names and account ids are printable text.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from itertools import pairwise
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

from crossmargin.amm.schema import LPPositionSpec, PoolSpec, check_pool_references
from crossmargin.errors import FieldValueError, InputError, UnknownNameError
from crossmargin.haircuts.config import DynamicHaircutConfig, VolatilityMethod
from crossmargin.locations.schema import (
    InFlightCredit,
    InFlightTransfer,
    LocatedBalance,
    Location,
    check_location_table,
    check_locations,
    split_located_balances,
)

# Bounds of every number in the file (docs/methodology.md, "Bounds"). The largest USD figure
# they allow is about QTY_MAX * PRICE_MAX * PRICE_MAX (a mark in settle units times the settle
# asset's price) = 1e39, 1e45 after the liquidation-price search's 1e6x move, 1e47 with a
# +10,000 % shock on top; squared (a variance) 1e94 - far from float64's 1.8e308, with room
# for sums over millions of rows.
#: USD (or settle-asset) price per unit: any asset, mark, strike, entry or override.
PRICE_MIN = 1e-12
PRICE_MAX = 1e12
#: Units of an asset or underlying: balances, positions, allocations, trades (1e15 covers the
#: whole supply of any meme coin: SHIB has 5.9e14 units).
QTY_MAX = 1e15
#: Settle-asset amounts that scale like qty x price: unrealized funding.
AMOUNT_MAX = QTY_MAX * PRICE_MAX
#: USD thresholds and sizes: tiers, brackets, open interest and its caps, liquidity size.
USD_MAX = 1e30
#: Relative price moves (--shock, stress scenarios): more than -100 %, at most +10,000 %.
SHOCK_MAX = 100.0
#: Liability weights (a borrow counted at 100x its value is already prohibitive).
LIAB_WEIGHT_MAX = 100.0
#: Size-premium (imf) factors: at 1 a single unit already needs full margin.
IMF_MAX = 1.0
#: Mark implied volatility per year (1e-4 = 0.01 %): keeps the Black-76 Greeks finite.
VOL_MIN = 1e-4
VOL_MAX = 20.0
#: Dynamic-haircut horizons, days.
HORIZON_DAYS_MAX = 3650.0
#: Entries of a collateral-tier or bracket list.
MAX_TIERS = 32
#: Names (assets, markets) and account ids: printable characters, no surrounding whitespace.
NAME_MAX_CHARS = 64
ID_MAX_CHARS = 128
PATH_MAX_CHARS = 4096


def _bounded(*, ge: float | None = None, gt: float | None = None, le: float | None = None) -> Any:
    """A strict, finite float within the bounds (ints are accepted; bools and strings are not)."""
    return Field(strict=True, allow_inf_nan=False, ge=ge, gt=gt, le=le)


Price = Annotated[float, _bounded(ge=PRICE_MIN, le=PRICE_MAX)]
EntryPrice = Annotated[float, _bounded(ge=0, le=PRICE_MAX)]
Quantity = Annotated[float, _bounded(ge=-QTY_MAX, le=QTY_MAX)]
NonNegativeQuantity = Annotated[float, _bounded(ge=0, le=QTY_MAX)]
Funding = Annotated[float, _bounded(ge=-AMOUNT_MAX, le=AMOUNT_MAX)]
PositiveUsd = Annotated[float, _bounded(gt=0, le=USD_MAX)]
NonNegativeUsd = Annotated[float, _bounded(ge=0, le=USD_MAX)]
Fraction = Annotated[float, _bounded(ge=0, le=1)]
LiabilityWeight = Annotated[float, _bounded(ge=1, le=LIAB_WEIGHT_MAX)]
ImfFactor = Annotated[float, _bounded(ge=0, le=IMF_MAX)]
MarkVol = Annotated[float, _bounded(ge=VOL_MIN, le=VOL_MAX)]


def _printable(value: str) -> str:
    """Names are shown verbatim in tables and errors: no control, format or separator
    characters (str.isprintable; the ASCII space is allowed inside), no surrounding space."""
    if not value.isprintable():
        bad = next(c for c in value if not c.isprintable())
        raise FieldValueError("", value, f"must be printable text (has {bad!r})")
    if value != value.strip():
        raise FieldValueError("", value, "must not start or end with whitespace")
    return value


Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX_CHARS), AfterValidator(_printable)]
AccountId = Annotated[str, Field(min_length=1, max_length=ID_MAX_CHARS), AfterValidator(_printable)]
ProfileName = Literal["generic", "derive-pm2", "deribit"]


def _as_utc(value: datetime) -> datetime:
    """A time without a zone is UTC (so naive and zoned times in one file compare)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


#: Upper bounds of the dynamic-haircut parameters (lower bounds: DynamicHaircutConfig's own).
_DYNAMIC_MAX = {
    "maint_horizon_days": HORIZON_DAYS_MAX,
    "init_horizon_days": HORIZON_DAYS_MAX,
    "liab_weight_floor": LIAB_WEIGHT_MAX,
    "liab_weight_cap": LIAB_WEIGHT_MAX,
    "max_step_frac": 100.0,
}


def _dynamic_config(value: Any) -> Any:
    """``dynamic:`` - numbers only (a bool or a string is not read as one), finite and within
    the bounds; its own cross-field errors get the full field path."""
    if not isinstance(value, dict):
        return value
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, int | float | None):
            raise FieldValueError(str(key), item, "must be a number")
        if item is None:
            continue
        limit = _DYNAMIC_MAX.get(str(key), USD_MAX)
        if isinstance(item, float) and not math.isfinite(item):
            raise FieldValueError(str(key), item, "must be a finite number")
        if not -limit <= item <= limit:
            raise FieldValueError(str(key), item, f"must be within +-{limit:g}")
    try:
        return DynamicHaircutConfig.model_validate(value)
    except InputError as exc:  # raised by its model validator: no path of its own
        raise FieldValueError(exc.field, exc.value, exc.reason) from None
    except ValidationError as exc:  # one line naming the sub-field, not pydantic's report
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise FieldValueError(where, error.get("input"), error["msg"]) from None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class CollateralTier(_Model):
    """Collateral value above ``above_usd`` counts at ``factor`` x the asset weight.

    Progressive (marginal) like a tax bracket, as Binance's tiered collateral ratio.
    """

    above_usd: PositiveUsd
    factor: Fraction


class Asset(_Model):
    """A token that can be deposited (collateral) or borrowed (liability).

    With ``weights: dynamic`` the four weights are computed when the file is loaded from the
    price history in ``history`` (volatility, liquidity; see
    :mod:`crossmargin.haircuts.dynamic`); weights given as well are the previous ones, from
    which the new ones move at most ``dynamic.max_step_frac``.
    """

    price: Price = Field(description="Oracle price, USD per unit.")
    weights: Literal["static", "dynamic"] = "static"
    init_asset_weight: Fraction | None = None
    maint_asset_weight: Fraction | None = None
    init_liab_weight: LiabilityWeight | None = None
    maint_liab_weight: LiabilityWeight | None = None
    collateral_tiers: list[CollateralTier] = Field(
        default_factory=list,
        max_length=MAX_TIERS,
        description="Progressive tiers: value above each threshold counts at a lower factor.",
    )
    imf_factor: ImfFactor = Field(
        0.0,
        description="Drift-v2 size premium: asset weight min(w, 1.1/(1+imf*sqrt(qty))), "
        "liability weight max(w, 0.8*w + imf*sqrt(qty)), qty in units of the asset.",
    )
    history: Annotated[str, Field(max_length=PATH_MAX_CHARS)] | None = Field(
        None, description="weights: dynamic - price-history CSV, relative to the book file."
    )
    history_asset: Name | None = Field(
        None, description="weights: dynamic - the asset's key in a multi-asset history file."
    )
    volatility_method: VolatilityMethod = "ewma"
    liquidity_position_usd: PositiveUsd = 1_000_000.0
    dynamic: Annotated[
        DynamicHaircutConfig,
        BeforeValidator(_dynamic_config),
    ] = Field(default_factory=DynamicHaircutConfig)

    WEIGHT_FIELDS: ClassVar[tuple[str, ...]] = (
        "init_asset_weight",
        "maint_asset_weight",
        "init_liab_weight",
        "maint_liab_weight",
    )

    @property
    def has_weights(self) -> bool:
        return all(getattr(self, name) is not None for name in self.WEIGHT_FIELDS)

    @model_validator(mode="after")
    def _check_weights(self) -> Self:
        if self.weights == "static":
            for name in self.WEIGHT_FIELDS:
                if getattr(self, name) is None:
                    raise FieldValueError(name, None, "required unless weights: dynamic")
        elif self.history is None:
            raise FieldValueError("history", None, "weights: dynamic needs a price history")
        previous_above, previous_factor = 0.0, 1.0
        for i, tier in enumerate(self.collateral_tiers):
            if tier.above_usd <= previous_above:
                raise FieldValueError(
                    f"collateral_tiers[{i}].above_usd",
                    tier.above_usd,
                    "tier thresholds must be strictly increasing",
                )
            if tier.factor > previous_factor:
                raise FieldValueError(
                    f"collateral_tiers[{i}].factor",
                    tier.factor,
                    "tier factors must not increase with size",
                )
            previous_above, previous_factor = tier.above_usd, tier.factor
        if not self.has_weights:
            return self
        init_aw, maint_aw = self.init_asset_weight, self.maint_asset_weight
        init_lw, maint_lw = self.init_liab_weight, self.maint_liab_weight
        assert init_aw is not None and maint_aw is not None  # has_weights
        assert init_lw is not None and maint_lw is not None
        if init_aw > maint_aw:
            raise FieldValueError(
                "init_asset_weight", init_aw, f"must not exceed maint_asset_weight {maint_aw}"
            )
        if init_lw < maint_lw:
            raise FieldValueError(
                "init_liab_weight", init_lw, f"must not be below maint_liab_weight {maint_lw}"
            )
        return self


class MarginBracket(_Model):
    """Notional bracket: from ``notional_floor_usd`` on, these margin fractions apply.

    The maintenance (and initial) amount is derived so that the requirement is continuous at every
    bracket edge (Binance: cum_n = floor_n * (rate_n - rate_{n-1}) + cum_{n-1}).
    """

    notional_floor_usd: PositiveUsd
    initial_margin_frac: Fraction
    maint_margin_frac: Fraction


class _MarketBase(_Model):
    underlying: Name
    settle_asset: Name = "USDC"
    mark_price: Price | None = Field(
        None,
        description="Mark price in settle-asset units per unit of underlying; default: the "
        "underlying's USD price divided by the settle asset's USD price.",
    )
    initial_margin_frac: Fraction
    maint_margin_frac: Fraction
    brackets: list[MarginBracket] = Field(default_factory=list, max_length=MAX_TIERS)
    imf_factor: ImfFactor = Field(
        0.0,
        description="Drift-v2 size premium on the margin fraction: "
        "max(f, 0.8*f + imf*sqrt(|qty|)), qty in units of the underlying.",
    )
    open_interest_usd: NonNegativeUsd = Field(
        0.0, description="Current open interest of the market, USD (for OI scaling)."
    )
    oi_lower_cap_usd: NonNegativeUsd = Field(
        0.0, description="dYdX v4 OIMF: open interest from which initial fractions rise."
    )
    oi_upper_cap_usd: NonNegativeUsd = Field(
        0.0,
        description="dYdX v4 OIMF: open interest at which initial fractions reach 1; 0 = off.",
    )
    init_pnl_weight: Fraction = Field(1.0, description="Weight of positive unrealized PnL (init).")
    maint_pnl_weight: Fraction = Field(
        1.0, description="Weight of positive unrealized PnL (maint)."
    )
    pnl_imf_factor: ImfFactor = Field(
        0.0,
        description="Drift-v2 discount of positive PnL: min(w, 1.1/(1+imf*sqrt(pnl_usd))).",
    )

    @model_validator(mode="after")
    def _check_fracs(self) -> Self:
        if self.initial_margin_frac < self.maint_margin_frac:
            raise FieldValueError(
                "initial_margin_frac",
                self.initial_margin_frac,
                f"must not be below maint_margin_frac {self.maint_margin_frac}",
            )
        if self.init_pnl_weight > self.maint_pnl_weight:
            raise FieldValueError(
                "init_pnl_weight",
                self.init_pnl_weight,
                f"must not exceed maint_pnl_weight {self.maint_pnl_weight}",
            )
        if 0.0 < self.oi_upper_cap_usd <= self.oi_lower_cap_usd:
            raise FieldValueError(
                "oi_upper_cap_usd",
                self.oi_upper_cap_usd,
                f"must exceed oi_lower_cap_usd {self.oi_lower_cap_usd} (or be 0: off)",
            )
        previous_floor = 0.0
        previous_init, previous_maint = self.initial_margin_frac, self.maint_margin_frac
        for i, bracket in enumerate(self.brackets):
            where = f"brackets[{i}]"
            if bracket.notional_floor_usd <= previous_floor:
                raise FieldValueError(
                    f"{where}.notional_floor_usd",
                    bracket.notional_floor_usd,
                    "bracket floors must be strictly increasing",
                )
            if bracket.maint_margin_frac < previous_maint:
                raise FieldValueError(
                    f"{where}.maint_margin_frac",
                    bracket.maint_margin_frac,
                    "margin fractions must not decrease with notional",
                )
            if bracket.initial_margin_frac < previous_init:
                raise FieldValueError(
                    f"{where}.initial_margin_frac",
                    bracket.initial_margin_frac,
                    "margin fractions must not decrease with notional",
                )
            if bracket.initial_margin_frac < bracket.maint_margin_frac:
                raise FieldValueError(
                    f"{where}.initial_margin_frac",
                    bracket.initial_margin_frac,
                    f"must not be below maint_margin_frac {bracket.maint_margin_frac}",
                )
            previous_floor = bracket.notional_floor_usd
            previous_init, previous_maint = bracket.initial_margin_frac, bracket.maint_margin_frac
        return self


class PerpMarket(_MarketBase):
    """A linear perpetual future: PnL = qty * (mark - entry) - funding, in the settle asset."""

    kind: Literal["perp"] = "perp"


class FutureMarket(_MarketBase):
    """A linear dated future, margined like a perpetual until ``expiry``."""

    kind: Literal["future"]
    expiry: UtcDatetime


class OptionMarket(_MarketBase):
    """A European option on ``underlying``, premium and strike in settle-asset units.

    Cross and isolated accounts margin it by the standard (per-position) option rule of Deribit
    and bit.com: a long option needs no maintenance margin and its premium ``|q| V`` at init
    (paid in full: it lends nothing to other positions); a short one needs
    ``|q| max(maint_margin_frac S, maint_margin_frac V)`` at maint and
    ``|q| max(initial_margin_frac S - OTM, initial_min_margin_frac S, <maint>)`` at init, with
    ``S`` the underlying price, ``V`` the option's mark and ``OTM`` its out-of-the-money amount
    (the mark itself is already a liability through the position's PnL). Portfolio accounts
    margin it by scenario revaluation (:mod:`crossmargin.portfolio`). The mark is Black-76 on
    the underlying's price with ``mark_vol``, or with the vol implied by ``mark_price``; time to
    expiry runs from the book's ``as_of``.
    """

    kind: Literal["option"]
    strike: Price
    expiry: UtcDatetime
    option_type: Literal["call", "put"]
    mark_vol: MarkVol | None = Field(
        None, description="Mark implied volatility, per 1.0 per year (0.65 = 65 %)."
    )
    initial_margin_frac: Fraction = 0.15
    initial_min_margin_frac: Fraction = Field(
        0.10, description="Floor of the short-option initial fraction after the OTM credit."
    )
    maint_margin_frac: Fraction = 0.075

    @model_validator(mode="after")
    def _check_option(self) -> Self:
        if self.brackets:
            raise FieldValueError("brackets", "[...]", "not used by option markets")
        if self.imf_factor:
            raise FieldValueError("imf_factor", self.imf_factor, "not used by option markets")
        return self


def _market_kind(value: Any) -> str | None:
    """The union tag: ``kind``, ``perp`` when absent (as the schema documents)."""
    kind = value.get("kind", "perp") if isinstance(value, dict) else getattr(value, "kind", None)
    return kind if isinstance(kind, str) else None


Market = Annotated[
    Annotated[PerpMarket, Tag("perp")]
    | Annotated[FutureMarket, Tag("future")]
    | Annotated[OptionMarket, Tag("option")],
    Discriminator(
        _market_kind,
        custom_error_type="market_kind",
        custom_error_message="Input tag (kind) must be 'perp', 'future' or 'option'",
    ),
]


class Position(_Model):
    """A signed derivative position (qty > 0 long, < 0 short) in units of the underlying."""

    market: Name
    qty: Quantity
    entry_price: EntryPrice = Field(description="Average entry, settle-asset units.")
    unrealized_funding: Funding = Field(
        0.0,
        description="Funding owed by the account and not yet settled, settle-asset units "
        "(negative: owed to the account). Subtracted from PnL.",
    )
    isolated_collateral: dict[Name, NonNegativeQuantity] = Field(
        default_factory=dict,
        description="Isolated mode only: quantity of each asset of the account's balances "
        "allocated to this position's margin bucket.",
    )


class OpenOrder(_Model):
    """A resting order in a market (issue #15): ``qty`` units at ``price`` (or the mark).

    Margined at its worst case: for each market, the kernel is evaluated with every bid
    filled and with every ask filled, and the side that leaves the lower contribution counts
    (Mango v4 ``PerpInfo`` bids/asks, Drift v2 worst-case base; ``crossmargin.margin.orders``).
    """

    market: Name
    side: Literal["buy", "sell"]
    qty: Annotated[float, _bounded(gt=0, le=QTY_MAX)]
    price: Annotated[float, _bounded(gt=0, le=PRICE_MAX)] | None = Field(
        None,
        description="Limit price, settle-asset units: the fill's PnL at it counts. Omitted: "
        "the order fills at the mark, as Mango v4 and Drift v2 margin it.",
    )


class Account(_Model):
    """An account: one pool of balances and positions (cross), one bucket per position
    (isolated), or one pool margined by scenario revaluation (portfolio)."""

    id: AccountId
    mode: Literal["cross", "isolated", "portfolio"] = "cross"
    profile: ProfileName | None = Field(
        None,
        description="mode: portfolio - the portfolio-margin profile (generic, derive-pm2, "
        "deribit); default generic.",
    )
    balances: dict[Name, Quantity] = Field(
        default_factory=dict,
        description="Asset -> quantity at the home venue (negative is a borrow); "
        "{qty, location} (or a list of them) for collateral held elsewhere.",
    )
    positions: list[Position] = Field(default_factory=list)
    # issue #17: where collateral lives (crossmargin.locations)
    remote_balances: list[LocatedBalance] = Field(
        default_factory=list, description="Lots held at other locations (from balances)."
    )
    in_flight: list[InFlightTransfer] = Field(
        default_factory=list, description="Transfers between locations not yet final."
    )
    lp_positions: list[LPPositionSpec] = Field(
        default_factory=list, description="Uniswap v3 LP positions held as collateral."
    )
    orders: list[OpenOrder] = Field(
        default_factory=list, description="Open orders, margined at their worst-case fill."
    )

    _split_located = model_validator(mode="before")(split_located_balances)


DepthLevel = tuple[
    Annotated[float, _bounded(ge=0, le=1)], Annotated[float, _bounded(gt=0, le=QTY_MAX)]
]


class DepthBook(_Model):
    """Order-book depth of one instrument, quoted relative to its reference price (issue #15).

    Each level is ``[offset_frac, qty]``: a bid at 0.01 sits 1 % below the reference, an ask
    at 0.01 1 % above; levels best first. A liquidation walks them (partial fills when the
    depth runs out: what is left is auto-deleveraged or closed at the mark).
    """

    kind: Literal["book"]
    bids: list[DepthLevel] = Field(default_factory=list)
    asks: list[DepthLevel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _best_first(self) -> Self:
        for side in ("bids", "asks"):
            offsets = [level[0] for level in getattr(self, side)]
            if any(later < first for first, later in pairwise(offsets)):
                raise FieldValueError(side, offsets, "levels must be best first (offsets rising)")
        return self


class DepthImpact(_Model):
    """Square-root impact of one instrument: slippage ``spread/2 + k sigma sqrt(q / V)``,
    fills capped at ``participation_frac x V`` a day (Almgren et al. 2005)."""

    kind: Literal["sqrt_impact"]
    sigma_daily: Annotated[float, _bounded(gt=0, le=10)]
    daily_volume_qty: Annotated[float, _bounded(gt=0, le=QTY_MAX)]
    k: Annotated[float, _bounded(gt=0, le=100)] = 1.0
    spread_frac: Annotated[float, _bounded(ge=0, le=1)] = 0.0
    participation_frac: Annotated[float, _bounded(gt=0, le=1)] = 0.1


Depth = Annotated[DepthBook | DepthImpact, Field(discriminator="kind")]


class Book(_Model):
    """A portfolio file: the market (assets, markets) and the accounts to margin."""

    as_of: UtcDatetime | None = Field(
        None,
        description="Valuation time; options' time to expiry runs from it (required with options).",
    )
    pnl_convention: Literal["separate", "settle_netted"] = Field(
        "separate",
        description="'separate': positive PnL x PnL weight is an asset, margin and negative PnL "
        "are liabilities. 'settle_netted' (Mango v4): each market's PnL minus margin, positive "
        "part x PnL weight, is added to the settle-asset balance before that asset is weighted.",
    )
    assets: dict[Name, Asset] = Field(min_length=1)
    markets: dict[Name, Market] = Field(default_factory=dict)
    accounts: list[Account] = Field(default_factory=list)
    # issue #17: locations of collateral and AMM pools as liquidity
    locations: dict[Name, Location] = Field(
        default_factory=dict, description="Chains/venues holding collateral (home implicit)."
    )
    in_flight_credit: InFlightCredit = Field(default_factory=InFlightCredit)
    pools: dict[Name, PoolSpec] = Field(
        default_factory=dict, description="AMM pools: reserves or tick-liquidity tables."
    )
    depth: dict[Name, Depth] = Field(
        default_factory=dict,
        description="Liquidation depth per market or asset (order-book levels or square-root "
        "impact); without an entry an instrument fills at its reference price.",
    )

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        check_location_table(self.locations, set(self.assets), set(self.pools))
        check_pool_references(
            self.pools,
            set(self.assets),
            [(f"accounts[{i}]", a.lp_positions) for i, a in enumerate(self.accounts)],
        )
        for symbol, market in self.markets.items():
            for field in ("underlying", "settle_asset"):
                name = getattr(market, field)
                if name not in self.assets:
                    raise UnknownNameError(
                        f"markets.{symbol}.{field}", name, "unknown asset (not in 'assets')"
                    )
        seen_ids: set[str] = set()
        for i, account in enumerate(self.accounts):
            where = f"accounts[{i}]"
            if account.id in seen_ids:
                raise InputError(f"{where}.id", account.id, "duplicate account id")
            seen_ids.add(account.id)
            for asset in account.balances:
                if asset not in self.assets:
                    raise UnknownNameError(
                        f"{where}.balances.{asset}", asset, "unknown asset (not in 'assets')"
                    )
            check_locations(
                where, account.remote_balances, account.in_flight, self.locations, set(self.assets)
            )
            if account.profile is not None and account.mode != "portfolio":
                raise InputError(
                    f"{where}.profile", account.profile, "only used with mode: portfolio"
                )
            self._check_positions(where, account)
            self._check_orders(where, account)
        for name in self.depth:
            if name not in self.markets and name not in self.assets:
                raise UnknownNameError(f"depth.{name}", name, "not a market or an asset")
        return self

    def _check_orders(self, where: str, account: Account) -> None:
        for j, order in enumerate(account.orders):
            at = f"{where}.orders[{j}]"
            if order.market not in self.markets:
                raise UnknownNameError(
                    f"{at}.market", order.market, "unknown market (not in 'markets')"
                )
            if account.mode == "portfolio":
                raise InputError(
                    f"{at}", order.market, "open orders are not margined in portfolio mode"
                )

    def _check_positions(self, where: str, account: Account) -> None:
        seen_markets: set[str] = set()
        allocated: dict[str, float] = {}
        for j, position in enumerate(account.positions):
            at = f"{where}.positions[{j}]"
            if position.market not in self.markets:
                raise UnknownNameError(
                    f"{at}.market", position.market, "unknown market (not in 'markets')"
                )
            if position.market in seen_markets:
                raise InputError(
                    f"{at}.market", position.market, "duplicate position in the same market"
                )
            seen_markets.add(position.market)
            market = self.markets[position.market]
            if isinstance(market, OptionMarket) and self.as_of is None:
                raise InputError(
                    "as_of", None, f"{at}: an option position needs the book's valuation time"
                )
            # every dated instrument is refused past its expiry, not only options
            if (
                isinstance(market, OptionMarket | FutureMarket)
                and self.as_of is not None
                and market.expiry <= self.as_of
            ):
                raise InputError(
                    f"markets.{position.market}.expiry",
                    market.expiry.isoformat(),
                    f"expired at as_of {self.as_of.isoformat()} (settle it first)",
                )
            if position.isolated_collateral and account.mode != "isolated":
                raise InputError(
                    f"{at}.isolated_collateral",
                    dict(position.isolated_collateral),
                    f"only allowed in isolated mode (account mode is {account.mode!r})",
                )
            for asset, qty in position.isolated_collateral.items():
                if asset not in self.assets:
                    raise UnknownNameError(
                        f"{at}.isolated_collateral.{asset}", asset, "unknown asset"
                    )
                allocated[asset] = allocated.get(asset, 0.0) + qty
        for asset, qty in allocated.items():
            held = account.balances.get(asset, 0.0)
            if qty > max(held, 0.0) * (1.0 + 1e-12):
                raise InputError(
                    f"{where}.positions[].isolated_collateral.{asset}",
                    qty,
                    f"allocated more than the account's balance {held}",
                )

    def account(self, account_id: str) -> Account:
        """The account with this id; :class:`UnknownNameError` if there is none."""
        for account in self.accounts:
            if account.id == account_id:
                return account
        raise UnknownNameError(
            "account", account_id, "no account with this id; " + _existing(account_id, self)
        )


def _existing(account_id: str, book: Book, listed: int = 8) -> str:
    """The nearest id and the ids the book has (the first ``listed``), for an unknown id."""
    import difflib

    ids = [a.id for a in book.accounts]
    if not ids:
        return "the book has no accounts"
    near = difflib.get_close_matches(account_id, ids, n=1)
    shown = ", ".join(ids[:listed]) + (
        f" and {len(ids) - listed:,} more" if len(ids) > listed else ""
    )
    return (f"did you mean {near[0]!r}? " if near else "") + f"the book has: {shown}"
