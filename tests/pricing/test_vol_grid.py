"""The log-moneyness x expiry vol grid: node values, interpolation scheme, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crossmargin.errors import InputError
from crossmargin.pricing import CalendarArbitrageError, PricingInputError, VolGrid

EXPIRIES = [0.1, 0.5, 1.0]
NODES = [-0.5, 0.0, 0.5]
VOLS = [[0.9, 0.7, 0.8], [0.8, 0.6, 0.7], [0.75, 0.55, 0.65]]


def test_nodes_are_reproduced() -> None:
    grid = VolGrid(EXPIRIES, NODES, VOLS)
    for i, t in enumerate(EXPIRIES):
        strikes = 100.0 * np.exp(NODES)
        np.testing.assert_allclose(grid.vol(100.0, strikes, t), VOLS[i], rtol=1e-14)


def test_linear_in_total_variance_along_strike_and_time() -> None:
    grid = VolGrid(EXPIRIES, NODES, VOLS)
    w = np.array(VOLS) ** 2 * np.array(EXPIRIES)[:, None]
    # halfway between two strikes of one expiry
    assert float(grid.total_variance(0.25, 0.5)) == pytest.approx(0.5 * (w[1, 1] + w[1, 2]))
    # a quarter of the way from 0.5 to 1.0 years at k = -0.5
    assert float(grid.total_variance(-0.5, 0.625)) == pytest.approx(0.75 * w[1, 0] + 0.25 * w[2, 0])
    # bilinear in the middle of a cell
    expected = 0.5 * (0.5 * (w[0, 0] + w[0, 1]) + 0.5 * (w[1, 0] + w[1, 1]))
    assert float(grid.total_variance(-0.25, 0.3)) == pytest.approx(expected)


def test_flat_extrapolation_in_strike_and_constant_vol_in_time() -> None:
    grid = VolGrid(EXPIRIES, NODES, VOLS)
    np.testing.assert_allclose(grid.vol(100.0, [1.0, 1e4], 0.5), [0.8, 0.7], rtol=1e-14)
    np.testing.assert_allclose(grid.vol(100.0, 100.0, [0.01, 5.0]), [0.7, 0.55], rtol=1e-14)


def test_single_node_grid_is_a_flat_vol() -> None:
    grid = VolGrid([0.5], [0.0], [[0.4]])
    np.testing.assert_allclose(grid.vol(100.0, [50.0, 100.0, 300.0], [0.1, 1.0, 7.0]), 0.4)


def test_validation_names_the_bad_node() -> None:
    with pytest.raises(InputError, match=r"vols\[1, 2\]"):
        VolGrid(EXPIRIES, NODES, [[0.9, 0.7, 0.8], [0.8, 0.6, -0.7], [0.75, 0.55, 0.65]])
    with pytest.raises(InputError, match=r"log_moneyness\[2\].*increasing"):
        VolGrid(EXPIRIES, [-0.5, 0.0, 0.0], VOLS)
    with pytest.raises(InputError, match=r"shape"):
        VolGrid(EXPIRIES, NODES, VOLS[:2])
    with pytest.raises(CalendarArbitrageError, match=r"vols\[2, 1\]"):
        VolGrid(EXPIRIES, NODES, [[0.9, 0.7, 0.8], [0.8, 0.6, 0.7], [0.75, 0.3, 0.65]])
    grid = VolGrid(EXPIRIES, NODES, VOLS)
    with pytest.raises(PricingInputError, match=r"t_yrs\[1\]"):
        grid.vol(100.0, 100.0, [0.5, 0.0])
    with pytest.raises(PricingInputError, match=r"strike\[0\]"):
        grid.vol(100.0, [math.nan], 0.5)
