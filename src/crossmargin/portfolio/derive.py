r"""Derive (ex-Lyra) PM2 reference cases: converter, loader and comparison with the reference.

A case (``test_*.json`` of derivexyz/v2-core ``test/risk-managers/unit-tests/PMRM_2/
portfolio_cases/``, commit 7736900d) has three parts: ``Scenario`` (the account and its feeds),
``Parameters`` (grid and PM2 parameters) and ``Result`` (every intermediate figure of Derive's
own model). :func:`derive_case_to_portfolio` reads the first two the way Derive's contracts read
their feeds (``PMRM_2._arrangePortfolio`` and ``_initialiseExpiries``, the test harness
``TestPMRM_2_PortfolioCasesNEW._setFeeds``):

* one underlying, ``BASE``: spot ``SpotPrice``; its confidence is the lower of
  ``SpotConfidence`` and, when the account holds perps, ``PerpConfidence``;
* each option expiry (``Expiry`` seconds from now, :math:`T` = seconds / (365 x 86400)) takes
  its feed from ``OptionFeeds`` (matched on ``FeedExpiry``): forward ``Forward``; within the
  last 30 minutes the forward's fixed part is :math:`F (1800 - t_s)/1800` (the settlement TWAP
  already averaged), and an expired option (0 s) is valued at intrinsic value on a fully fixed
  forward; rate :math:`\max(r, 0)` (Derive assumes non-negative rates) and discount
  :math:`e^{-rT}`; confidence the lower of ``ForwardConfidence`` and ``RateConfidence``;
* each option's vol comes from the expiry's raw SVI slice ``SVIparam = [a, b, rho, m, sigma,
  F_svi, tau]`` as Derive's feed computes it (lyra-utils ``SVI.getVol``): log-moneyness
  :math:`k = \ln(K/F_{svi})` clamped to :math:`\pm 4\sqrt{a + b\sigma}`, total variance
  :math:`w(k)` (:class:`crossmargin.pricing.SviSlice`, checked for butterfly arbitrage) capped
  at 144, vol :math:`\sqrt{w/\tau}`; the option's confidence is ``OptionVolConfidences``;
* a perp position ``NumPerps`` at ``PerpPrice`` worth ``UnrealisedPerpPNL + UnrealisedFunding``;
* collateral valued ``Amount x Price / StablePrice``, shocked with the underlying when
  ``IsRiskCancelling``, with its ``MMHaircut`` and ``IMHaircut`` and the confidence
  ``min(Confidence, SpotConfidence)``; cash ``Cash``; the cash asset's price ``StablePrice``.

:func:`derive_case_profile` maps ``Parameters`` onto a :class:`~crossmargin.portfolio.profiles.
Profile` (field by field, see the code), with the case's own scenario list.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crossmargin.errors import InputError
from crossmargin.portfolio.engine import PortfolioMarginResult, portfolio_margin
from crossmargin.portfolio.positions import (
    CollateralSpec,
    ExpirySpec,
    OptionSpec,
    PerpSpec,
    PortfolioSpec,
    UnderlyingSpec,
)
from crossmargin.portfolio.profiles import (
    BasisParams,
    ContingencyParams,
    Profile,
    ScenarioSpec,
    SkewShockParams,
    StaticDiscountParams,
    VolShockParams,
)
from crossmargin.pricing import SviSlice

UNDERLYING = "BASE"
SECONDS_PER_YEAR = 365.0 * 86_400.0
SETTLEMENT_WINDOW_S = 1_800.0
"""Derive's settlement TWAP: the last 30 minutes before expiry (docs "Common Parameters")."""
SVI_MAX_TOTAL_VARIANCE = 144.0
"""Cap of the SVI total variance in Derive's vol feed (lyra-utils ``SVI.MAX_TOTAL_VAR``)."""
SVI_K_BOUND_SCALE = 4.0
"""Log-moneyness bound ``4 sqrt(a + b sigma)`` of Derive's vol feed (``SVI.TOTAL_VOL_SCALAR``)."""

REFERENCE_REL_TOL = 1e-6
"""Relative tolerance of the comparison with a case's ``Result``."""
REFERENCE_ABS_FLOOR_USD = 1.0
"""Below 1 USD in magnitude a figure is compared absolutely: |ours - ref| <= 1e-6 USD."""

_VOL_STATES = {"Up": "up", "Down": "down", "None": "none", "LINEAR": "linear", "ABS": "abs"}


def load_derive_case(path: str | Path) -> dict[str, Any]:
    """Read one case file (JSON)."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file", str(file), "no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError("file", str(file), f"not a readable JSON case: {exc}") from None
    if not isinstance(data, dict):
        raise InputError("file", str(file), "top level must be an object")
    return data


def _get(data: Mapping[str, Any], path: str) -> Any:
    node: Any = data
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise InputError(path, None, "required field is missing")
        node = node[part]
    return node


def _num(data: Mapping[str, Any], path: str) -> float:
    value = _get(data, path)
    return _to_float(path, value)


def _to_float(path: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(path, value, "must be a number") from None
    if not math.isfinite(number):
        raise InputError(path, value, "must be finite")
    return number


def derive_vol(strike_usd: float, svi: list[float], where: str) -> float:
    """Vol of ``strike_usd`` from a Derive SVI feed ``[a, b, rho, m, sigma, F, tau]``."""
    a, b, rho, m, sigma, forward, tau = svi
    if forward <= 0.0:
        raise InputError(f"{where}[5]", forward, "SVI forward must be > 0")
    if tau <= 0.0:
        raise InputError(f"{where}[6]", tau, "SVI tau (years) must be > 0")
    if a + b * sigma < 0.0:
        raise InputError(f"{where}[0]", a, "a + b*sigma must be >= 0 (Derive's k bound)")
    bound = SVI_K_BOUND_SCALE * math.sqrt(a + b * sigma)
    k = min(max(math.log(strike_usd / forward), -bound), bound)
    w = float(SviSlice(tau, a, b, rho, m, sigma).total_variance(k))
    return math.sqrt(min(w, SVI_MAX_TOTAL_VARIANCE) / tau)


def derive_case_to_portfolio(case: Mapping[str, Any]) -> tuple[PortfolioSpec, Profile]:
    """The account (as validated data) and the profile of one Derive PM2 case (module doc).

    Raises :class:`~crossmargin.errors.InputError` naming the case field (``Scenario.
    OptionFeeds[2].SVIparam``, ``Scenario.Options[0].Expiry``...) for a missing or invalid
    value, an option without a feed, or an SVI slice with butterfly arbitrage.
    """
    scenario = _get(case, "Scenario")
    spot_conf = _num(case, "Scenario.SpotConfidence")
    n_perps = _num(case, "Scenario.NumPerps")
    underlying_conf = spot_conf
    if n_perps != 0.0:
        underlying_conf = min(spot_conf, _num(case, "Scenario.PerpConfidence"))

    feeds: dict[int, tuple[int, Mapping[str, Any]]] = {}
    for i, feed in enumerate(scenario.get("OptionFeeds", [])):
        feeds[int(_num(feed, "FeedExpiry"))] = (i, feed)
    svi_slices: dict[int, list[float]] = {}
    expiries: dict[str, ExpirySpec] = {}
    options: list[OptionSpec] = []
    for j, option in enumerate(scenario.get("Options", [])):
        where = f"Scenario.Options[{j}]"
        seconds = int(_num(option, "Expiry"))
        if seconds not in feeds:
            raise InputError(f"{where}.Expiry", seconds, "no OptionFeeds entry has this FeedExpiry")
        i, feed = feeds[seconds]
        fwhere = f"Scenario.OptionFeeds[{i}]"
        key = f"T+{seconds}s"
        if key not in expiries:
            expiries[key] = _expiry(feed, fwhere, seconds)
            svi = _get(feed, "SVIparam")
            if not isinstance(svi, list) or len(svi) != 7:
                raise InputError(f"{fwhere}.SVIparam", svi, "must be [a, b, rho, m, sigma, F, tau]")
            params = [_to_float(f"{fwhere}.SVIparam[{n}]", x) for n, x in enumerate(svi)]
            try:
                SviSlice(params[6], *params[:5]).check(i)
            except InputError as exc:
                raise InputError(
                    f"{fwhere}.SVIparam ({exc.field})", exc.value, exc.reason
                ) from None
            svi_slices[seconds] = params
        strike = _num(option, "Strike")
        if strike <= 0.0:
            raise InputError(f"{where}.Strike", strike, "must be > 0")
        is_call = _num(option, "IsCall")
        if is_call not in (0.0, 1.0):
            raise InputError(f"{where}.IsCall", is_call, "must be 1 (call) or 0 (put)")
        options.append(
            OptionSpec(
                expiry=key,
                strike_usd=strike,
                option_type="call" if is_call == 1.0 else "put",
                qty=_num(option, "Amount"),
                vol=derive_vol(strike, svi_slices[seconds], f"{fwhere}.SVIparam"),
                confidence=_num(feed, "OptionVolConfidences"),
            )
        )

    perps = []
    if n_perps != 0.0:
        perps.append(
            PerpSpec(
                underlying=UNDERLYING,
                qty=n_perps,
                mark_usd=_num(case, "Scenario.PerpPrice"),
                value_usd=_num(case, "Scenario.UnrealisedPerpPNL")
                + _num(case, "Scenario.UnrealisedFunding"),
            )
        )
    collaterals = []
    for coll in scenario.get("Collaterals", []):
        collaterals.append(
            CollateralSpec(
                name=str(_get(coll, "Name")),
                amount=_num(coll, "Amount"),
                price_usd=_num(coll, "Price"),
                shocked_with=UNDERLYING if bool(_get(coll, "IsRiskCancelling")) else None,
                mm_haircut_frac=_num(coll, "MMHaircut"),
                im_haircut_frac=_num(coll, "IMHaircut"),
                confidence=min(_num(coll, "Confidence"), spot_conf),
            )
        )
    spec = PortfolioSpec.from_data(
        {
            "cash_usd": _num(case, "Scenario.Cash"),
            "stable_price_usd": _num(case, "Scenario.StablePrice"),
            "allow_expired": True,
            "underlyings": {
                UNDERLYING: UnderlyingSpec(
                    spot_usd=_num(case, "Scenario.SpotPrice"), confidence=underlying_conf
                )
            },
            "expiries": expiries,
            "options": options,
            "perps": perps,
            "collaterals": collaterals,
        }
    )
    return spec, derive_case_profile(case)


def _expiry(feed: Mapping[str, Any], where: str, seconds: int) -> ExpirySpec:
    if seconds < 0:
        raise InputError(f"{where}.FeedExpiry", seconds, "must be >= 0 seconds")
    forward = _num(feed, "Forward")
    if forward <= 0.0:
        raise InputError(f"{where}.Forward", forward, "must be > 0")
    fixed = 0.0
    if seconds < SETTLEMENT_WINDOW_S:
        fixed = forward * (SETTLEMENT_WINDOW_S - seconds) / SETTLEMENT_WINDOW_S
    return ExpirySpec(
        underlying=UNDERLYING,
        t_yrs=seconds / SECONDS_PER_YEAR,
        forward_usd=forward,
        forward_fixed_usd=min(fixed, forward),
        rate=max(_num(feed, "Rate"), 0.0),
        confidence=min(_num(feed, "ForwardConfidence"), _num(feed, "RateConfidence")),
    )


#: profile section -> (parameter model, {field: key in the case's Parameters})
_SECTIONS: dict[str, tuple[type[Any], dict[str, str]]] = {
    "vol_shock": (
        VolShockParams,
        {
            "range_up_frac": "VolShock.VOLRANGEUP",
            "range_down_frac": "VolShock.VOLRANGEDOWN",
            "short_term_power": "VolShock.SHORTTERMPOWER",
            "long_term_power": "VolShock.LONGTERMPOWER",
            "dte_floor_days": "VolShock.DTE_FLOOR",
            "min_vol_up": "VolShock.MIN_VOL_EVAL_SHOCKED",
        },
    ),
    "skew_shock": (
        SkewShockParams,
        {
            "linear_cap": "SkewShock.LINEAR_SCALE_CAP",
            "linear_cap_per_sqrt_yr": "SkewShock.LINEAR_CBASE",
            "abs_cap": "SkewShock.ABS_SCALE_CAP",
            "abs_cap_per_sqrt_yr": "SkewShock.ABS_CBASE",
            "min_k_star": "SkewShock.MIN_K_STAR",
            "width_scale": "SkewShock.MIN_WIDTH_SCALE",
            "vol_param_static": "SkewShock.VOL_PARAM_STATIC",
            "vol_param_per_sqrt_yr": "SkewShock.VOL_PARAM_SCALE",
        },
    ),
    "static_discount": (
        StaticDiscountParams,
        {
            "long_base": "Margin.BASE_STATIC_DISCOUNT",
            "long_rate_mult": "Margin.LONG_RATE_MULTSCALE",
            "long_rate_add": "Margin.LONG_RATE_ADDSCALE",
            "short_base": "Margin.BASE_STATIC_DISCOUNT_NEG",
            "short_rate_mult": "Margin.SHORT_RATE_MULTSCALE",
            "short_rate_add": "Margin.SHORT_RATE_ADDSCALE",
        },
    ),
    "basis": (
        BasisParams,
        {
            "spot_up_mult": "BasisContingency.SCENARIO_SPOT_UP",
            "spot_down_mult": "BasisContingency.SCENARIO_SPOT_DOWN",
            "add_factor": "BasisContingency.BASIS_CONT_ADD_FACTOR",
            "mult_factor_per_yr": "BasisContingency.BASIS_CONT_MULT_FACTOR",
        },
    ),
    "contingency": (
        ContingencyParams,
        {
            "perp_mm_frac": "OtherContingency.MM_PERP_PERCENT",
            "perp_im_frac": "OtherContingency.IM_PERP_PERCENT",
            "option_mm_frac": "OtherContingency.MM_OPTION_PERCENT",
            "option_im_frac": "OtherContingency.IM_OPTION_PERCENT",
            "confidence_threshold": "OtherContingency.CONF_THRESHOLD",
            "confidence_margin_frac": "OtherContingency.CONF_MARGIN",
            "peg_loss_threshold": "OtherContingency.PEG_LOSS_THRESHOLD",
            "peg_loss_factor": "OtherContingency.PEG_LOSS_FACTOR",
        },
    ),
}


def derive_case_profile(case: Mapping[str, Any]) -> Profile:
    """The case's ``Parameters`` as a :class:`Profile` (names: Derive's -> ours, in the code)."""

    def p(path: str) -> float:
        return _num(case, f"Parameters.{path}")

    scenarios = []
    for i, entry in enumerate(_get(case, "Parameters.Scenarios")):
        where = f"Parameters.Scenarios[{i}]"
        direction = _get(entry, "VolShockDirection")
        if direction not in _VOL_STATES:
            raise InputError(f"{where}.VolShockDirection", direction, f"one of {list(_VOL_STATES)}")
        scenarios.append(
            ScenarioSpec(
                spot_shock_frac=_num(entry, "SpotShock") - 1.0,
                vol=_VOL_STATES[direction],
                dampening=_num(entry, "DampeningFactor"),
            )
        )
    return Profile.from_data(
        {
            "name": "derive-pm2",
            "description": "Derive PM2 with a reference case's parameters",
            "sources": ["derivexyz/v2-core@7736900d test/risk-managers/unit-tests/PMRM_2"],
            "scenarios": scenarios,
            **{
                section: model(**{field: p(key) for field, key in keys.items()})
                for section, (model, keys) in _SECTIONS.items()
            },
            "mm_loss_factor": p("Margin.MM_LOSS_FACTOR"),
            "im_loss_factor": p("Margin.IM_LOSS_FACTOR"),
        }
    )


def reference_scenario_pnl(case: Mapping[str, Any]) -> list[float]:
    """The case's per-scenario PnL in scenario order (``reg_losses``, ``tail_losses``,
    ``skew_losses``: the order of ``Parameters.Scenarios``, as Derive's harness reads them)."""
    result = case.get("Result") or {}
    out = [float(x[2]) for x in result.get("reg_losses", [])]
    out += [float(x[2]) for x in result.get("tail_losses", [])]
    out += [float(x[1]) for x in result.get("skew_losses", [])]
    return out


def close_to_reference(ours: float, ref: float) -> bool:
    """``|ours - ref| <= 1e-6 * max(|ref|, 1 USD)`` (:data:`REFERENCE_REL_TOL`)."""
    return abs(ours - ref) <= REFERENCE_REL_TOL * max(abs(ref), REFERENCE_ABS_FLOOR_USD)


def compare_with_reference(result: PortfolioMarginResult, case: Mapping[str, Any]) -> list[str]:
    """Differences between our result and the case's ``Result`` (empty: it matches).

    Checked, when the case has them: ``MM``, ``IM``, the forward (basis) contingency, the
    option and portfolio mark-to-market, and each scenario's PnL.
    """
    ref = case.get("Result") or {}
    risk = result.underlyings[0]
    problems: list[str] = []

    def check(name: str, ours: float, theirs: float) -> None:
        if not close_to_reference(ours, theirs):
            problems.append(f"{name}: ours {ours!r} vs reference {theirs!r}")

    for name, ours in (
        ("MM", result.maint.margin_usd),
        ("IM", result.initial.margin_usd),
        ("ForwardContingency", risk.basis_contingency_usd),
        ("PortfolioMTM", result.mtm_usd),
        ("OptionMTM", result.option_mtm_usd),
    ):
        if name in ref:
            check(name, ours, _num(ref, name))
    if any(key in ref for key in ("reg_losses", "tail_losses", "skew_losses")):
        expected = reference_scenario_pnl(case)
        if len(expected) != risk.grid.n:
            problems.append(f"scenario count: ours {risk.grid.n} vs reference {len(expected)}")
        else:
            for i, theirs in enumerate(expected):
                label = f"scenario {i} ({risk.grid.label(i)})"
                check(label, float(risk.scenario_pnl_usd[i]), theirs)
    return problems


def run_derive_case(case: Mapping[str, Any]) -> PortfolioMarginResult:
    """Portfolio margin of a case's account under the case's own parameters."""
    spec, profile = derive_case_to_portfolio(case)
    return portfolio_margin(spec.to_portfolio(), profile)


def import_derive(path: str | Path) -> dict[str, Any]:
    """A case as plain data for ``crossmargin import-derive CASE.json`` (YAML-able).

    Keys: ``portfolio`` (a :class:`PortfolioSpec`: underlyings, expiries, options with their
    SVI vols, perps, collaterals, cash), ``profile`` (a :class:`Profile`), ``margin`` (our
    result, :meth:`PortfolioMarginResult.to_dict` without per-scenario lists unless they
    differ), ``reference`` (the case's ``MM`` and ``IM``, when it has a ``Result``) and
    ``mismatches`` (empty when we reproduce every figure of the ``Result`` to 1e-6).
    """
    case = load_derive_case(path)
    spec, profile = derive_case_to_portfolio(case)
    result = portfolio_margin(spec.to_portfolio(), profile)
    mismatches = compare_with_reference(result, case)
    ref = case.get("Result") or {}
    return {
        "case": Path(path).stem,
        "portfolio": spec.model_dump(mode="json"),
        "profile": profile.model_dump(mode="json"),
        "margin": result.to_dict(scenarios=bool(mismatches)),
        "reference": {key: _num(ref, key) for key in ("MM", "IM") if key in ref},
        "mismatches": mismatches,
    }
