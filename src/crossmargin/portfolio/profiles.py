r"""Portfolio-margin profiles: validated parameter sets (pydantic) and the three built-in ones.

A profile fixes everything the engine needs besides the positions: the scenario grid, the vol
and skew shocks, static discounting, the basis contingency, the other contingencies, the loss
factors of the two margin levels, the settlement currency of the PnL and the aggregation across
underlyings. Built-in profiles (``get_profile(name)``):

* ``derive-pm2`` - Derive's (ex-Lyra) "Portfolio Margin 2". Grid: docs.derive.xyz "Portfolio
  Margin Parameters [New]" (23 regular scenarios, +-18 % in 4.5 % steps; 8 tail scenarios with
  their dampening) plus the two skew scenarios of the PM2 docs; every other number:
  ``getPMRM2Params`` in v2-core ``scripts/config-mainnet.sol`` (commit 7736900d).
* ``deribit`` - Deribit's standard (segregated) portfolio margin: a price range (BTC 16 %;
  ETH 18 % per issue #3, no citable page found) in 9 evenly spaced buckets, each with vol
  up / same / down; the extended table (-66 % .. +500 %, vol up only): options take a
  fraction ``range/|move|`` of their PnL (Deribit's dampener is not published), perps and
  futures the move clamped to the range (``tail_delta_one: clamped``, as the example's
  extended risk vectors show); PnL in the coin (``Q m / (1 + m)`` for a perp or future);
  the roll shock ``|q| max(0.075 T, 0.01)`` coin per perp / future; MM = 0.8 x the risk
  matrix margin (worst case + roll shock). The pme/simulate example's worst case, roll
  shock, risk matrix margin and MM are reproduced (tests/portfolio/test_deribit_pme.py).
  Sources: support.deribit.com "Portfolio Margin" (article 25944756247837)
  and the ``model_params`` of ``private/pme/simulate`` (docs.deribit.com: price_range 0.16,
  volatility_range_up 0.5 / down 0.25, vega powers 0.3 / 0.13, min_volatility_for_shock_up
  0.5, buckets_count 4, mm_factor 0.8).
* ``generic`` - crossmargin's documented default (docs/portfolio-margin.md): +-15 % in 5 %
  steps with vol up / none / down, four dampened tail moves, basis contingency, Derive-style
  contingencies, no skew shocks and no static discount.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from crossmargin.errors import FieldValueError, InputError
from crossmargin.portfolio.grid import ScenarioGrid, VolState, make_grid

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScenarioSpec(_Model):
    """One scenario: spot move, vol state and the fraction of its PnL that counts."""

    spot_shock_frac: Annotated[float, Field(gt=-1, allow_inf_nan=False)] = Field(
        description="Relative spot move: -0.18 for -18 %."
    )
    vol: VolState = "none"
    dampening: NonNegativeFloat = Field(1.0, description="Fraction of the PnL that counts.")
    kind: Literal["regular", "tail", "skew"] | None = Field(
        None, description="Report group; default: skew for linear/abs, tail if dampening != 1."
    )


class VolShockParams(_Model):
    """Vol multipliers ``1 + range * (30 / max(DTE, floor))^power`` (see grid module)."""

    range_up_frac: NonNegativeFloat
    range_down_frac: NonNegativeFloat
    short_term_power: FiniteFloat
    long_term_power: FiniteFloat
    dte_floor_days: NonNegativeFloat = 1.0
    reference_days: PositiveFloat = 30.0
    power_switch_days: PositiveFloat = Field(
        30.0, description="The short-term power applies up to this many days to expiry."
    )
    min_vol_up: NonNegativeFloat = Field(0.0, description="Floor of an up-shocked vol.")


class SkewShockParams(_Model):
    """Derive's skew shock: cap ``c = cap + cap_per_sqrt_yr sqrt(T)``, width ``k*``."""

    linear_cap: FiniteFloat
    linear_cap_per_sqrt_yr: FiniteFloat
    abs_cap: FiniteFloat
    abs_cap_per_sqrt_yr: FiniteFloat
    min_k_star: NonNegativeFloat
    width_scale: NonNegativeFloat
    vol_param_static: NonNegativeFloat
    vol_param_per_sqrt_yr: FiniteFloat


class StaticDiscountParams(_Model):
    """Derive's static discount of shocked expiry values (long: value >= 0, short: < 0)."""

    long_base: NonNegativeFloat
    long_rate_mult: NonNegativeFloat
    long_rate_add: FiniteFloat
    short_base: NonNegativeFloat
    short_rate_mult: NonNegativeFloat
    short_rate_add: FiniteFloat


class BasisParams(_Model):
    """Forward/basis contingency: ``min(V(up) - V, V(down) - V, 0) (add + mult T)``."""

    spot_up_mult: Annotated[float, Field(gt=1, allow_inf_nan=False)]
    spot_down_mult: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
    add_factor: NonNegativeFloat
    mult_factor_per_yr: NonNegativeFloat


class ContingencyParams(_Model):
    """Add-ons to the scenario loss (fractions of notional at spot; see engine module)."""

    perp_mm_frac: NonNegativeFloat = 0.0
    perp_im_frac: NonNegativeFloat = Field(0.0, description="Extra for initial margin.")
    option_mm_frac: NonNegativeFloat = Field(
        0.0, description="Per net short option per strike, of the spot."
    )
    option_im_frac: NonNegativeFloat = 0.0
    confidence_threshold: Fraction = Field(
        0.0, description="Below this feed confidence, initial margin rises (0: off)."
    )
    confidence_margin_frac: NonNegativeFloat = 1.0
    peg_loss_threshold: NonNegativeFloat = Field(
        0.0, description="Cash-asset price below which the IM loss factor rises (0: off)."
    )
    peg_loss_factor: NonNegativeFloat = 0.0
    roll_annual_frac: NonNegativeFloat = Field(
        0.0,
        description="Roll shock (Deribit annualised_move_risk): a perp or future of |q| adds "
        "|q| S max(roll_annual_frac T, roll_min_frac) to the loss (T: years to expiry).",
    )
    roll_min_frac: NonNegativeFloat = Field(
        0.0, description="Floor of the roll shock per unit of notional (min_annualised_move)."
    )


class Profile(_Model):
    """A complete portfolio-margin parameter set (module docstring)."""

    name: str
    description: str = ""
    sources: list[str] = Field(default_factory=list)
    scenarios: list[ScenarioSpec] = Field(min_length=1)
    scenarios_by_underlying: dict[str, list[ScenarioSpec]] = Field(
        default_factory=dict, description="Grids replacing `scenarios` for these underlyings."
    )
    vol_shock: VolShockParams
    skew_shock: SkewShockParams | None = None
    skew_moves_forward: bool = Field(
        False,
        description="Skew scenarios revalue options on the shocked forward (Derive: no, the "
        "skew scenarios keep the forward; perps and collateral still take the spot move).",
    )
    static_discount: StaticDiscountParams | None = None
    basis: BasisParams | None = None
    contingency: ContingencyParams = Field(default_factory=ContingencyParams)
    mm_loss_factor: PositiveFloat = 0.8
    im_loss_factor: PositiveFloat = 1.0
    settlement: Literal["linear", "coin"] = Field(
        "linear",
        description="'coin': scenario PnL measured in the underlying coin (value/spot), "
        "as on coin-settled venues (Deribit); reported in USD at today's spot.",
    )
    aggregation: Literal["sum", "correlation"] = "sum"
    tail_delta_one: Literal["full", "clamped"] = Field(
        "full",
        description="Tail scenarios for perps, futures and shocked collateral: 'full' takes "
        "the tail move, dampened; 'clamped' (Deribit's extended table) takes the move "
        "clamped to the regular range, undampened - only options see the tail move.",
    )
    correlation: dict[str, dict[str, Annotated[float, Field(ge=-1, le=1)]]] = Field(
        default_factory=dict,
        description="Pairwise correlation of underlyings' worst losses (missing pairs: 1).",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        grids = {"scenarios": self.scenarios} | {
            f"scenarios_by_underlying.{u}": g for u, g in self.scenarios_by_underlying.items()
        }
        for where, grid in grids.items():
            if not grid:
                raise FieldValueError(where, [], "at least one scenario is required")
            for i, scenario in enumerate(grid):
                if scenario.vol in ("linear", "abs") and self.skew_shock is None:
                    raise FieldValueError(
                        f"{where}[{i}].vol", scenario.vol, "a skew scenario needs skew_shock"
                    )
        for a, row in self.correlation.items():
            for b, rho in row.items():
                if a == b and rho != 1.0:
                    raise FieldValueError(f"correlation.{a}.{b}", rho, "self-correlation must be 1")
                back = self.correlation.get(b, {}).get(a)
                if back is not None and back != rho:
                    raise FieldValueError(
                        f"correlation.{b}.{a}", back, f"must equal correlation.{a}.{b} = {rho}"
                    )
        return self

    def grid(self, underlying: str) -> ScenarioGrid:
        """The scenario grid of ``underlying`` (its own, else the default ``scenarios``)."""
        specs = self.scenarios_by_underlying.get(underlying, self.scenarios)
        return make_grid(
            [1.0 + s.spot_shock_frac for s in specs],
            [s.vol for s in specs],
            [s.dampening for s in specs],
            None if any(s.kind is None for s in specs) else [str(s.kind) for s in specs],
        )

    @classmethod
    def from_data(cls, data: Any) -> Profile:
        """Validate parsed YAML/JSON; errors become one :class:`InputError` with the field path."""
        from crossmargin.book.io import input_error_from_validation

        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise input_error_from_validation(exc) from None


def symmetric_grid(
    price_range_frac: float,
    steps_per_side: int,
    inner_vols: Sequence[VolState] = ("up", "none", "down"),
    outer_vols: Sequence[VolState] | None = None,
) -> list[ScenarioSpec]:
    """Moves ``+range, ..., 0, ..., -range`` in ``steps_per_side`` even steps each way.

    Every move gets ``inner_vols``; the two outermost moves get ``outer_vols`` instead when
    given (Derive: only ``("up",)`` at +-18 %). Ordered from the largest rise down, as in
    Derive's and Deribit's tables.
    """
    if steps_per_side < 1:
        raise InputError("steps_per_side", steps_per_side, "must be >= 1")
    out: list[ScenarioSpec] = []
    for j in range(steps_per_side, -steps_per_side - 1, -1):
        move = price_range_frac * j / steps_per_side
        outer = abs(j) == steps_per_side and outer_vols is not None
        for vol in outer_vols if outer and outer_vols is not None else inner_vols:
            out.append(ScenarioSpec(spot_shock_frac=move, vol=vol, kind="regular"))
    return out


def extended_scenarios(
    moves_frac: Sequence[float], price_range_frac: float, factor: float = 1.0
) -> list[ScenarioSpec]:
    """Tail moves with vol up, dampened to ``factor * price_range / |move|`` of their PnL.

    The fraction ``range/|move|`` is the one in Paradex's published table (weights
    0.16/|shock|, anchors.md 3.4) and in Derive's reference grids (0.2 x 0.18/|move|).
    """
    return [
        ScenarioSpec(
            spot_shock_frac=m,
            vol="up",
            dampening=factor * price_range_frac / abs(m),
            kind="tail",
        )
        for m in moves_frac
    ]


DERIVE_TAILS: tuple[tuple[float, float], ...] = (
    (-0.66, 0.21),
    (-0.33, 0.42),
    (0.50, 0.27),
    (1.00, 0.13),
    (2.00, 0.069),
    (3.00, 0.046),
    (4.00, 0.034),
    (5.00, 0.027),
)
"""(move, dampening) of Derive's tail scenarios (docs "Portfolio Margin Parameters [New]")."""

EXTENDED_MOVES: tuple[float, ...] = (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0)
"""Deribit's extended-table moves (support.deribit.com, "Portfolio Margin")."""


def derive_pm2_profile() -> Profile:
    """Derive PM2 with the published grid and the mainnet parameters (module docstring)."""
    scenarios = symmetric_grid(0.18, 4, ("up", "none", "down"), ("up",))
    scenarios += [
        ScenarioSpec(spot_shock_frac=m, vol="up", dampening=d, kind="tail") for m, d in DERIVE_TAILS
    ]
    scenarios += [
        ScenarioSpec(spot_shock_frac=0.0, vol="linear", kind="skew"),
        ScenarioSpec(spot_shock_frac=0.0, vol="abs", kind="skew"),
    ]
    return Profile(
        name="derive-pm2",
        description="Derive (ex-Lyra) Portfolio Margin 2",
        sources=[
            "https://docs.derive.xyz/docs/pm2",
            "https://docs.derive.xyz/docs/portfolio-margin-parameters-new",
            "derivexyz/v2-core@7736900d src/risk-managers/PMRMLib_2.sol, PMRM_2.sol",
            "derivexyz/v2-core@7736900d scripts/config-mainnet.sol getPMRM2Params",
        ],
        scenarios=scenarios,
        vol_shock=VolShockParams(
            range_up_frac=0.5,
            range_down_frac=0.3,
            short_term_power=0.3,
            long_term_power=0.13,
            dte_floor_days=1.0,
            min_vol_up=0.4,
        ),
        skew_shock=SkewShockParams(
            linear_cap=0.25,
            linear_cap_per_sqrt_yr=-0.1,
            abs_cap=0.25,
            abs_cap_per_sqrt_yr=-0.1,
            min_k_star=0.01,
            width_scale=4.0,
            vol_param_static=0.6,
            vol_param_per_sqrt_yr=0.0,
        ),
        static_discount=StaticDiscountParams(
            long_base=1.05,
            long_rate_mult=0.0,
            long_rate_add=0.16,
            short_base=0.95,
            short_rate_mult=0.0,
            short_rate_add=0.16,
        ),
        basis=BasisParams(
            spot_up_mult=1.045, spot_down_mult=0.955, add_factor=0.5, mult_factor_per_yr=2.0
        ),
        contingency=ContingencyParams(
            perp_mm_frac=0.03,
            perp_im_frac=0.01,
            option_mm_frac=0.003,
            option_im_frac=0.002,
            confidence_threshold=0.55,
            confidence_margin_frac=1.0,
            peg_loss_threshold=0.99,
            peg_loss_factor=4.0,
        ),
        mm_loss_factor=0.8,
        im_loss_factor=1.0,
    )


def deribit_profile() -> Profile:
    """Deribit standard portfolio margin, coin-settled (module docstring)."""
    vol_shock = VolShockParams(
        range_up_frac=0.5,
        range_down_frac=0.25,
        short_term_power=0.3,
        long_term_power=0.13,
        dte_floor_days=1.0,
        min_vol_up=0.5,
    )

    def grid(price_range: float) -> list[ScenarioSpec]:
        return symmetric_grid(price_range, 4) + extended_scenarios(EXTENDED_MOVES, price_range)

    # IM = loss + 0.01 coin per net short option per strike; MM = 0.8 x IM (mm_factor)
    return Profile(
        name="deribit",
        description="Deribit standard portfolio margin (segregated, coin-settled)",
        sources=[
            "https://support.deribit.com/hc/en-us/articles/25944756247837-Portfolio-Margin",
            "https://docs.deribit.com/api-reference/account-management/private-simulate",
            "https://www.deribit.com/pages/docs/portfoliomargin",
        ],
        scenarios=grid(0.16),
        scenarios_by_underlying={"BTC": grid(0.16), "ETH": grid(0.18)},
        vol_shock=vol_shock,
        # roll shock: btc annualised_move_risk 0.075, min_annualised_move 0.01 (pme/simulate)
        contingency=ContingencyParams(
            option_mm_frac=0.008,
            option_im_frac=0.002,
            roll_annual_frac=0.075,
            roll_min_frac=0.01,
        ),
        mm_loss_factor=0.8,
        im_loss_factor=1.0,
        settlement="coin",
        tail_delta_one="clamped",
    )


def generic_profile() -> Profile:
    """crossmargin's default (docs/portfolio-margin.md section 'generic')."""
    scenarios = symmetric_grid(0.15, 3) + extended_scenarios((-0.5, -0.33, 0.5, 1.0), 0.15)
    return Profile(
        name="generic",
        description="crossmargin default scenario-grid portfolio margin",
        sources=["docs/portfolio-margin.md"],
        scenarios=scenarios,
        vol_shock=VolShockParams(
            range_up_frac=0.5,
            range_down_frac=0.25,
            short_term_power=0.3,
            long_term_power=0.13,
            dte_floor_days=1.0,
        ),
        basis=BasisParams(
            spot_up_mult=1.045, spot_down_mult=0.955, add_factor=0.5, mult_factor_per_yr=2.0
        ),
        contingency=ContingencyParams(
            perp_mm_frac=0.01,
            perp_im_frac=0.005,
            # 1 % + 1 % of spot per naked short: with the +-15 % grid a naked short option never
            # needs less than the standard per-position rule (0.15 S - OTM, tests/portfolio/
            # test_modes.py); hedged books are unaffected
            option_mm_frac=0.01,
            option_im_frac=0.01,
            confidence_threshold=0.55,
            confidence_margin_frac=1.0,
            peg_loss_threshold=0.99,
            peg_loss_factor=2.0,
        ),
        mm_loss_factor=0.8,
        im_loss_factor=1.0,
    )


PROFILES = {
    "derive-pm2": derive_pm2_profile,
    "deribit": deribit_profile,
    "generic": generic_profile,
}


def get_profile(name: str) -> Profile:
    """A built-in profile by name: ``derive-pm2``, ``deribit`` or ``generic``."""
    try:
        return PROFILES[name]()
    except KeyError:
        raise InputError("profile", name, f"unknown profile (one of {sorted(PROFILES)})") from None
