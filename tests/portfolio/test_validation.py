"""Bad input: a clear InputError naming the field and the value, never a NaN margin."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crossmargin.errors import InputError
from crossmargin.portfolio import (
    PortfolioSpec,
    Profile,
    derive_case_to_portfolio,
    generic_profile,
    get_profile,
    import_derive,
    load_derive_case,
    portfolio_from_arrays,
    portfolio_margin,
)

OPTION: dict[str, Any] = {
    "expiry": "E",
    "strike_usd": 3200.0,
    "option_type": "call",
    "qty": -1.0,
    "vol": 0.6,
}


def account(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "underlyings": {"ETH": {"spot_usd": 3000.0}},
        "expiries": {"E": {"underlying": "ETH", "t_yrs": 0.1, "forward_usd": 3010.0}},
        "options": [dict(OPTION)],
    }
    data.update(changes)
    return data


def arrays(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "underlying_names": ["ETH"],
        "spot_usd": [3000.0],
        "expiry_underlying": [0],
        "expiry_t_yrs": [0.1],
        "expiry_fwd_usd": [3010.0],
        "option_expiry": [0],
        "option_strike_usd": [3200.0],
        "option_is_call": [True],
        "option_qty": [-1.0],
        "option_vol": [0.6],
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("change", "field", "value"),
    [
        ({"expiry_t_yrs": [0.0]}, "expiry_t_yrs[0]", 0.0),
        ({"expiry_t_yrs": [-0.1]}, "expiry_t_yrs[0]", -0.1),
        ({"option_vol": [0.0]}, "option_vol[0]", 0.0),
        ({"option_vol": [-0.2]}, "option_vol[0]", -0.2),
        ({"option_vol": [float("nan")]}, "option_vol[0]", None),
        ({"option_strike_usd": [0.0]}, "option_strike_usd[0]", 0.0),
        ({"option_strike_usd": [-5.0]}, "option_strike_usd[0]", -5.0),
        ({"spot_usd": [float("inf")]}, "spot_usd[0]", None),
        ({"expiry_fwd_usd": [0.0]}, "expiry_fwd_usd[0]", 0.0),
        ({"option_expiry": [3]}, "option_expiry[0]", 3),
        ({"expiry_fwd_fixed_usd": [4000.0]}, "expiry_fwd_fixed_usd[0]", 4000.0),
        ({"option_is_call": [2]}, "option_is_call[0]", 2),
    ],
)
def test_array_errors_name_field_and_value(change: dict[str, Any], field: str, value: Any) -> None:
    with pytest.raises(InputError) as info:
        portfolio_from_arrays(**arrays(**change))
    assert info.value.field == field
    if value is not None:
        assert info.value.value == value


def test_expired_option_needs_allow_expired_and_is_then_intrinsic() -> None:
    with pytest.raises(InputError, match=r"expiries\.E\.t_yrs"):
        PortfolioSpec.from_data(
            account(expiries={"E": {"underlying": "ETH", "t_yrs": 0.0, "forward_usd": 3010.0}})
        )
    data = account(
        allow_expired=True,
        expiries={
            "E": {
                "underlying": "ETH",
                "t_yrs": 0.0,
                "forward_usd": 3300.0,
                "forward_fixed_usd": 3300.0,
            }
        },
    )
    result = portfolio_margin(PortfolioSpec.from_data(data).to_portfolio(), generic_profile())
    assert result.option_mtm_usd == pytest.approx(-(3300.0 - 3200.0), rel=1e-12)
    # settled: the forward is fixed, so no spot scenario changes the value
    assert np.all(np.abs(result.underlyings[0].option_pnl_usd) < 1e-9)


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("options", 0, "vol"), 0.0, "options[0].vol"),
        (("options", 0, "strike_usd"), -1.0, "options[0].strike_usd"),
        (("options", 0, "expiry"), "NOPE", "options[0].expiry"),
        (("expiries", "E", "underlying"), "BTC", "expiries.E.underlying"),
        (("underlyings", "ETH", "confidence"), 1.5, "underlyings.ETH.confidence"),
    ],
)
def test_spec_errors_name_the_path(path: tuple[Any, ...], value: Any, field: str) -> None:
    data = account()
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(InputError) as info:
        PortfolioSpec.from_data(data)
    assert info.value.field == field


def test_profile_errors() -> None:
    with pytest.raises(InputError, match="profile"):
        get_profile("nope")
    data = generic_profile().model_dump()
    data["scenarios"][0]["vol"] = "linear"  # a skew scenario without skew parameters
    with pytest.raises(InputError, match=r"scenarios\[0\]\.vol"):
        Profile.from_data(data)
    data = generic_profile().model_dump()
    data["aggregation"] = "correlation"
    data["correlation"] = {"BTC": {"ETH": 0.5}, "ETH": {"BTC": 0.4}}
    with pytest.raises(InputError, match=r"correlation\.ETH\.BTC"):
        Profile.from_data(data)


def test_not_positive_semidefinite_correlation_is_refused() -> None:
    names = ["A", "B", "C"]
    data = {
        "underlyings": {n: {"spot_usd": 100.0} for n in names},
        "perps": [{"underlying": n, "qty": 1.0, "mark_usd": 100.0} for n in names],
    }
    profile = generic_profile().model_copy(
        update={
            "aggregation": "correlation",
            "correlation": {"A": {"B": 0.9, "C": 0.9}, "B": {"C": -0.9}},
        }
    )
    with pytest.raises(InputError, match="positive semi-definite"):
        portfolio_margin(PortfolioSpec.from_data(data).to_portfolio(), profile)


def test_zero_skew_width_is_refused() -> None:
    profile = get_profile("derive-pm2")
    assert profile.skew_shock is not None
    skew = profile.skew_shock.model_copy(update={"min_k_star": 0.0, "width_scale": 0.0})
    with pytest.raises(InputError, match=r"skew_shock\.min_k_star"):
        portfolio_margin(
            PortfolioSpec.from_data(account()).to_portfolio(),
            profile.model_copy(update={"skew_shock": skew}),
        )


# ---- Derive cases: missing feeds, butterfly arbitrage -------------------------------------------

CASE: dict[str, Any] = {
    "Scenario": {
        "Cash": 1000,
        "Collaterals": [],
        "SpotPrice": 3000.0,
        "SpotConfidence": 1.0,
        "NumPerps": 0,
        "PerpPrice": 0,
        "PerpConfidence": 0,
        "UnrealisedPerpPNL": 0.0,
        "UnrealisedFunding": 0.0,
        "StablePrice": 1.0,
        "StableConfidence": 1.0,
        "Options": [{"Expiry": 2592000, "Strike": 3200.0, "IsCall": 1, "Amount": -1.0}],
        "OptionFeeds": [
            {
                "FeedExpiry": 2592000,
                "Forward": 3010.0,
                "ForwardConfidence": 1.0,
                "Rate": 0.05,
                "RateConfidence": 1.0,
                "SVIparam": ["0.02", "0.1", "-0.3", "0.0", "0.1", 3010.0, "0.0821917808"],
                "OptionVolConfidences": 1.0,
            }
        ],
    },
}


def derive_case() -> dict[str, Any]:
    """A small case: the account above and the Parameters of Derive's test_1 (its default)."""
    case = copy.deepcopy(CASE)
    case["Parameters"] = json.loads(json.dumps(PARAMETERS))
    return case


PARAMETERS: dict[str, Any] = {
    "Scenarios": [
        {"SpotShock": 1.18, "VolShockDirection": "Up", "DampeningFactor": 1},
        {"SpotShock": 0.82, "VolShockDirection": "Up", "DampeningFactor": 1},
        {"SpotShock": 1, "VolShockDirection": "Down", "DampeningFactor": 1},
        {"SpotShock": 1, "VolShockDirection": "LINEAR", "DampeningFactor": 1.0},
        {"SpotShock": 1, "VolShockDirection": "ABS", "DampeningFactor": 1.0},
    ],
    "SkewShock": {
        "LINEAR_SCALE_CAP": 0.15,
        "LINEAR_CBASE": -0.05,
        "ABS_SCALE_CAP": 0.15,
        "ABS_CBASE": -0.05,
        "MIN_K_STAR": 0.01,
        "MIN_WIDTH_SCALE": 4.0,
        "VOL_PARAM_STATIC": 0.6,
        "VOL_PARAM_SCALE": -0.1,
    },
    "VolShock": {
        "VOLRANGEUP": 0.5,
        "MIN_VOL_EVAL_SHOCKED": 0.45,
        "VOLRANGEDOWN": 0.275,
        "SHORTTERMPOWER": 0.3,
        "LONGTERMPOWER": 0.13,
        "DTE_FLOOR": 1.0,
    },
    "Margin": {
        "MM_LOSS_FACTOR": 0.8,
        "IM_LOSS_FACTOR": 1.0,
        "SHORT_RATE_MULTSCALE": 0.5,
        "LONG_RATE_MULTSCALE": 1,
        "SHORT_RATE_ADDSCALE": 0.08,
        "LONG_RATE_ADDSCALE": 0.08,
        "BASE_STATIC_DISCOUNT": 0.95,
        "BASE_STATIC_DISCOUNT_NEG": 1.04,
    },
    "BasisContingency": {
        "SCENARIO_SPOT_UP": 1.045,
        "SCENARIO_SPOT_DOWN": 0.955,
        "BASIS_CONT_ADD_FACTOR": 0.5,
        "BASIS_CONT_MULT_FACTOR": 2.0,
    },
    "OtherContingency": {
        "PEG_LOSS_THRESHOLD": 0.98,
        "PEG_LOSS_FACTOR": 2.0,
        "CONF_THRESHOLD": 0.55,
        "CONF_MARGIN": 1.0,
        "MM_PERP_PERCENT": 0.015,
        "IM_PERP_PERCENT": 0.005,
        "MM_OPTION_PERCENT": 0.003,
        "IM_OPTION_PERCENT": 0.002,
    },
}


def test_small_derive_case_runs() -> None:
    spec, profile = derive_case_to_portfolio(derive_case())
    result = portfolio_margin(spec.to_portfolio(), profile)
    assert np.isfinite(result.maint.margin_usd) and np.isfinite(result.initial.margin_usd)
    assert result.initial.margin_usd <= result.maint.margin_usd


def test_option_without_feed() -> None:
    case = derive_case()
    case["Scenario"]["Options"][0]["Expiry"] = 86400
    with pytest.raises(InputError) as info:
        derive_case_to_portfolio(case)
    assert info.value.field == "Scenario.Options[0].Expiry"
    assert info.value.value == 86400


def test_svi_with_butterfly_arbitrage() -> None:
    """A steep wing on a tiny minimum variance: g(k) < 0, a negative risk-neutral density."""
    case = derive_case()
    case["Scenario"]["OptionFeeds"][0]["SVIparam"] = [
        "0.0001",
        "1.5",
        "0.9",
        "0.0",
        "0.01",
        3010.0,
        "0.0821917808",
    ]
    with pytest.raises(InputError, match=r"OptionFeeds\[0\]\.SVIparam.*butterfly arbitrage"):
        derive_case_to_portfolio(case)


@pytest.mark.parametrize(
    ("where", "key", "value", "field"),
    [
        ("Scenario", "SpotPrice", "abc", "Scenario.SpotPrice"),
        ("Scenario", "SpotPrice", None, "Scenario.SpotPrice"),
        ("feed", "Forward", -1.0, "Scenario.OptionFeeds[0].Forward"),
        ("option", "IsCall", 3, "Scenario.Options[0].IsCall"),
        ("option", "Strike", 0.0, "Scenario.Options[0].Strike"),
    ],
)
def test_derive_field_errors(where: str, key: str, value: Any, field: str) -> None:
    case = derive_case()
    node = {
        "Scenario": case["Scenario"],
        "feed": case["Scenario"]["OptionFeeds"][0],
        "option": case["Scenario"]["Options"][0],
    }[where]
    if value is None:
        del node[key]
    else:
        node[key] = value
    with pytest.raises(InputError) as info:
        derive_case_to_portfolio(case)
    assert info.value.field == field


def test_import_derive_output(tmp_path: Path) -> None:
    """The dict for ``crossmargin import-derive``: portfolio, profile, margin, reference."""
    case = derive_case()
    case["Result"] = {"MM": 0.0, "IM": 0.0}
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case))
    out = import_derive(path)
    assert set(out) == {"case", "portfolio", "profile", "margin", "reference", "mismatches"}
    assert PortfolioSpec.from_data(out["portfolio"]).to_portfolio().n_options == 1
    assert Profile.from_data(out["profile"]).name == "derive-pm2"
    assert out["mismatches"]  # our result is not 0: the mismatch is reported, not raised
    with pytest.raises(InputError, match="file"):
        load_derive_case(tmp_path / "missing.json")
