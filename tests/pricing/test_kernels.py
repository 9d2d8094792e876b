"""The raw numba kernels: callable from other numba code, and equal to the Python API."""

from __future__ import annotations

import numba
import numpy as np

from crossmargin.pricing import (
    black76,
    black76_first_invalid_row,
    black76_greeks_array,
    black76_price_array,
    black76_price_row,
    black76_row,
    implied_vol_row,
)


@numba.njit(cache=False)
def _shocked_book_value(
    f: np.ndarray,
    k: np.ndarray,
    vol: np.ndarray,
    t: np.ndarray,
    qty: np.ndarray,
    shocks: np.ndarray,
) -> np.ndarray:
    """What scenario margin does: the value of a book under each forward shock."""
    out = np.zeros(shocks.shape[0])
    for s in range(shocks.shape[0]):
        for i in range(f.shape[0]):
            out[s] += qty[i] * black76_price_row(f[i] * shocks[s], k[i], vol[i], t[i], 1.0, True)
    return out


def _rows(n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    f = 100.0 * np.exp(rng.normal(0.0, 0.1, n))
    k = f * np.exp(rng.uniform(-1.0, 1.0, n))
    vol = rng.uniform(0.1, 2.0, n)
    t = rng.uniform(1e-3, 2.0, n)
    df = rng.uniform(0.9, 1.0, n)
    is_call = rng.random(n) < 0.5
    return f, k, vol, t, df, is_call


def test_row_kernel_from_numba_code_matches_the_api() -> None:
    f, k, vol, t, _, _ = _rows(50)
    qty = np.linspace(-2.0, 3.0, 50)
    shocks = np.array([0.7, 1.0, 1.3])
    got = _shocked_book_value(f, k, vol, t, qty, shocks)
    for s, shock in enumerate(shocks):
        expected = float(np.sum(qty * black76(f * shock, k, vol, t).price))
        assert abs(got[s] - expected) <= 1e-12 * np.sum(np.abs(qty) * f)


def test_array_kernels_equal_the_api_bit_for_bit() -> None:
    f, k, vol, t, df, is_call = _rows(1000)
    values = black76(f, k, vol, t, df, is_call)
    out = np.empty(1000)
    black76_price_array(f, k, vol, t, df, is_call, out)
    assert np.array_equal(out, values.price)
    greeks = [np.empty(1000) for _ in range(4)]
    black76_greeks_array(f, k, vol, t, df, is_call, *greeks, np.empty(0))  # no theta
    for got, name in zip(greeks, ("price", "delta", "gamma", "vega"), strict=True):
        assert np.array_equal(got, getattr(values, name)), name
    row = black76_row(f[3], k[3], vol[3], t[3], df[3], is_call[3])
    assert row[4] == values.theta_per_year[3]
    vol_back = implied_vol_row(values.price[3], f[3], k[3], t[3], df[3], is_call[3])
    assert abs(vol_back - vol[3]) <= 1e-9 * vol[3]


def test_first_invalid_row_for_numba_callers() -> None:
    f, k, vol, t, df, _ = _rows(10)
    assert black76_first_invalid_row(f, k, vol, t, df) == -1
    t[7] = 0.0
    assert black76_first_invalid_row(f, k, vol, t, df) == 7
    vol[4] = np.nan
    assert black76_first_invalid_row(f, k, vol, t, df) == 4


def test_black76_matches_scipy_ndtr_formulas() -> None:
    """Textbook formulas with scipy.special.ndtr (accurate in the lower tail) on random rows."""
    from scipy.special import ndtr

    f, k, vol, t, df, is_call = _rows(20_000, seed=3)
    phi = np.where(is_call, 1.0, -1.0)
    total_vol = vol * np.sqrt(t)
    d1 = np.log(f / k) / total_vol + 0.5 * total_vol
    d2 = d1 - total_vol
    pdf1 = np.exp(-0.5 * d1 * d1) / np.sqrt(2.0 * np.pi)
    price = df * phi * (f * ndtr(phi * d1) - k * ndtr(phi * d2))
    values = black76(f, k, vol, t, df, is_call)
    scale = np.maximum(f, k)
    assert np.all(np.abs(values.price - price) <= 1e-10 * price + 1e-14 * scale)
    np.testing.assert_allclose(values.delta, df * phi * ndtr(phi * d1), rtol=1e-10, atol=1e-15)
    # densities below 1e-308 flush to 0 (documented), hence the tiny atol
    np.testing.assert_allclose(values.gamma, df * pdf1 / (f * total_vol), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(values.vega, df * f * pdf1 * np.sqrt(t), rtol=1e-10, atol=1e-300)
