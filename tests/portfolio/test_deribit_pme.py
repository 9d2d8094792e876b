"""Deribit's published private/pme/simulate example, reproduced by the ``deribit`` profile.

Source: docs.deribit.com/api-reference/account-management/private-simulate, "Response
example" (model_params timestamp 1718619740501 = 2024-06-17 10:22:20 UTC): positions
BTC-PERPETUAL +0.314538364 and BTC-28JUN24 -0.001187534 (BTC), index 65,666.19 USD, marks
65,910.57 / 67,371.75; model params price_range 0.16, buckets_count 4, btc
annualised_move_risk 0.075, min_annualised_move 0.01, mm_factor 0.8. Published, in BTC:
initial_risk_vectors (standard, extended) per instrument, aggregated_risk_vectors,
risk_matrix_margin_details.worst_case 0.05968587238095239, roll_shock 0.00315725898,
risk_matrix_margin 0.06284313098, maintenance_margin 0.050274504784.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from crossmargin.portfolio import PortfolioSpec, portfolio_margin
from crossmargin.portfolio.profiles import EXTENDED_MOVES, deribit_profile

INDEX_USD = 65_666.19
AS_OF = datetime.fromtimestamp(1718619740.501, tz=UTC)
EXPIRY = datetime(2024, 6, 28, 8, 0, tzinfo=UTC)  # Deribit futures expire at 08:00 UTC
T_FUTURE_YRS = (EXPIRY - AS_OF).total_seconds() / (365 * 86_400)

#: initial_risk_vectors "standard", one value per bucket -16 % .. +16 % (3 vol states each)
PERP_STANDARD = [
    -0.05991206933333334,
    -0.04289159509090909,
    -0.027351162086956524,
    -0.013105765166666668,
    0.0,
    0.012097629384615385,
    0.023299138074074074,
    0.033700538999999995,
    0.043384601931034494,
]
FUTURE_STANDARD = [
    0.0002261969523809524,
    0.00016193645454545456,
    0.00010326382608695652,
    0.00004948058333333334,
    0.0,
    -0.00004567438461538462,
    -0.00008796548148148148,
    -0.0001272357857142857,
    -0.00016379779310344832,
]
#: "extended", moves -66 %, -33 %, +50 %, +100 %, +200 %, +300 %, +400 %, +500 %
PERP_EXTENDED = [-0.05991206933333334] * 2 + [0.04338460193103449] * 6
FUTURE_EXTENDED = [0.0002261969523809524] * 2 + [-0.0001637977931034483] * 6
#: aggregated_risk_vectors.btc_btc: the sum, losses only (gains shown as 0)
AGGREGATED_STANDARD = [
    -0.05968587238095239,
    -0.04272965863636364,
    -0.02724789826086957,
    -0.013056284583333334,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
]


def _example() -> PortfolioSpec:
    return PortfolioSpec.from_data(
        {
            "underlyings": {"BTC": {"spot_usd": INDEX_USD}},
            "perps": [
                {"underlying": "BTC", "qty": 0.314538364, "mark_usd": 65_910.57},
                {
                    "underlying": "BTC",
                    "qty": -0.001187534,
                    "mark_usd": 67_371.75,
                    "t_yrs": T_FUTURE_YRS,
                },
            ],
        }
    )


def _vectors(spec: PortfolioSpec) -> tuple[list[float], list[float]]:
    """(standard per bucket, extended per move) of a one-instrument portfolio, in BTC."""
    risk = portfolio_margin(spec.to_portfolio(), deribit_profile()).underlyings[0]
    grid, pnl_btc = risk.grid, risk.scenario_pnl_usd / INDEX_USD
    standard = []
    for j in range(-4, 5):
        rows = np.flatnonzero(
            np.isclose(grid.spot_mult, 1.0 + 0.04 * j)
            & np.array([k == "regular" for k in grid.kind])
        )
        assert rows.size == 3  # vol up, same, down: no vol effect on delta-one
        assert np.ptp(pnl_btc[rows]) == 0.0
        standard.append(float(pnl_btc[rows[0]]))
    extended = []
    for move in EXTENDED_MOVES:
        (row,) = np.flatnonzero(
            np.isclose(grid.spot_mult, 1.0 + move) & np.array([k == "tail" for k in grid.kind])
        )
        extended.append(float(pnl_btc[row]))
    return standard, extended


@pytest.mark.parametrize(
    ("index", "standard", "extended"),
    [(0, PERP_STANDARD, PERP_EXTENDED), (1, FUTURE_STANDARD, FUTURE_EXTENDED)],
)
def test_initial_risk_vectors_per_instrument(
    index: int, standard: list[float], extended: list[float]
) -> None:
    """Each instrument's standard and extended vector: the extended table clamps a delta-one
    position's move to +-16 % (its -66 % entry equals its -16 % one)."""
    data = _example().model_dump()
    data["perps"] = [data["perps"][index]]
    ours_standard, ours_extended = _vectors(PortfolioSpec.from_data(data))
    assert ours_standard == pytest.approx(standard, rel=1e-9, abs=1e-15)
    assert ours_extended == pytest.approx(extended, rel=1e-9, abs=1e-15)


def test_aggregated_vector_and_worst_case() -> None:
    standard, extended = _vectors(_example())
    assert np.minimum(standard, 0.0) == pytest.approx(AGGREGATED_STANDARD, rel=1e-9, abs=1e-15)
    # Deribit publishes the aggregated extended vector as all 0 although its per-instrument
    # extended entries at -66 % sum to -0.0597 (the dampener rule, extended_dampener 100000,
    # is not published): we do not reproduce that vector, only that the extended table never
    # deepens the worst case of a delta-one book beyond its -16 % bucket
    assert min(extended) >= min(standard) - 1e-15
    risk = portfolio_margin(_example().to_portfolio(), deribit_profile()).underlyings[0]
    assert -risk.worst_pnl_usd / INDEX_USD == pytest.approx(0.05968587238095239, rel=1e-12)
    assert risk.grid.spot_mult[risk.worst_scenario] == pytest.approx(0.84)  # bucket -16 %


def test_roll_shock_risk_matrix_margin_and_maintenance() -> None:
    """roll_shock = sum |q| max(0.075 T, 0.01) = 0.01 x 0.315725898 (both T below 0.133 yr);
    risk_matrix_margin = worst_case + roll_shock; MM = 0.8 x risk_matrix_margin. Deribit rounds
    worst_case to 1e-9 BTC before adding (0.059685872 + 0.00315725898 = 0.06284313098):
    agreement within 1e-9 BTC."""
    result = portfolio_margin(_example().to_portfolio(), deribit_profile())
    (risk,) = result.underlyings
    assert risk.roll_shock_usd / INDEX_USD == pytest.approx(0.00315725898, rel=1e-12)
    assert risk.loss_usd / INDEX_USD == pytest.approx(0.06284313098, abs=1e-9)
    assert result.maint.requirement_usd / INDEX_USD == pytest.approx(0.050274504784, abs=1e-9)
    # initial: the risk matrix margin; Deribit's 0.122861343 adds mmp_margin 0.06 and
    # open_orders_margin 0.000018212, account settings the example does not derive
    assert result.initial.requirement_usd / INDEX_USD == pytest.approx(
        0.122861343 - 0.06 - 0.000018212, abs=1e-9
    )


def test_roll_shock_grows_with_time_past_the_floor() -> None:
    """Beyond T = 0.01 / 0.075 years the annualised branch applies (our reading of
    annualised_move_risk; the example pins only the floor)."""
    data = _example().model_dump()
    data["perps"] = [{"underlying": "BTC", "qty": 1.0, "mark_usd": INDEX_USD, "t_yrs": 0.5}]
    risk = portfolio_margin(PortfolioSpec.from_data(data).to_portfolio(), deribit_profile())
    assert risk.underlyings[0].roll_shock_usd == pytest.approx(INDEX_USD * 0.075 * 0.5)
