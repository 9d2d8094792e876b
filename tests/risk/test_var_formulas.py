"""VaR / ES formulas against outside numbers (textbook constants, scipy distributions)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from crossmargin.errors import InputError
from crossmargin.risk.var import (
    cornish_fisher_var_es,
    cornish_fisher_z,
    delta_gamma_moments,
    nearest_correlation,
    normal_var_es,
    var_es,
)


def test_normal_var_es_constants() -> None:
    # Jorion, "Value at Risk" (3rd ed. 2007), table of normal quantiles: z(99 %) = 2.326,
    # z(97.5 %) = 1.960; ES multipliers phi(z)/(1-a): 2.665 (99 %), 2.338 (97.5 %). The Basel
    # FRTB (BCBS d352, 2016) replaced 99 % VaR by 97.5 % ES because the two are close under
    # normality: 2.338 vs 2.326.
    var99, es99 = normal_var_es(1.0, 0.99)
    var975, es975 = normal_var_es(1.0, 0.975)
    assert var99 == pytest.approx(2.3263, abs=1e-4)
    assert es99 == pytest.approx(2.6652, abs=1e-4)
    assert var975 == pytest.approx(1.9600, abs=1e-4)
    assert es975 == pytest.approx(2.3378, abs=1e-4)
    assert es975 == pytest.approx(var99, rel=0.005)
    # mean shifts both; sigma scales both
    assert normal_var_es(1000.0, 0.99, mean_usd=50.0)[0] == pytest.approx(2326.35 - 50.0, abs=0.01)


def test_cornish_fisher_reduces_to_normal() -> None:
    var, es = cornish_fisher_var_es(0.0, 1.0, 0.0, 0.0, 0.99)
    assert var == pytest.approx(2.3263478740, abs=1e-9)
    assert es == pytest.approx(normal_var_es(1.0, 0.99)[1], rel=1e-6)  # quadrature of the tail


def test_cornish_fisher_hand_computed_quantile() -> None:
    # z = -2.326348 (1 % quantile), S = -1, K = 3, by hand (Zangari 1996 / Jorion eq. 12.20):
    # w = z + (z^2 - 1) S/6 + (z^3 - 3z) K/24 - (2 z^3 - 5 z) S^2/36
    z = -2.3263478740
    by_hand = z + (z * z - 1) * -1 / 6 + (z**3 - 3 * z) * 3 / 24 - (2 * z**3 - 5 * z) * 1 / 36
    assert cornish_fisher_z(z, -1.0, 3.0) == pytest.approx(by_hand, rel=1e-14)
    # by hand: -2.32635 - 0.73532 - 0.70134 + 0.37633 = -3.38668 (a fatter left tail)
    assert by_hand == pytest.approx(-3.38668, abs=1e-5)
    var, es = cornish_fisher_var_es(0.0, 1.0, -1.0, 3.0, 0.99)
    assert var == pytest.approx(3.38668, abs=1e-5) and es >= var


def test_cornish_fisher_matches_a_skewed_distribution_better_than_normal() -> None:
    # Against scipy's exact quantile of a chi-square(8) (skew sqrt(8/8)=1, excess kurt 12/8)
    df = 8.0
    mean, sd = df, math.sqrt(2 * df)
    skew, kurt = math.sqrt(8 / df), 12 / df
    # PnL = -chi2: the loss tail is chi2's right tail
    exact = stats.chi2.ppf(0.99, df) - mean
    var_cf, _ = cornish_fisher_var_es(0.0, sd, -skew, kurt, 0.99)
    var_n, _ = normal_var_es(sd, 0.99)
    assert abs(var_cf - exact) < 0.1 * abs(var_n - exact)


def test_delta_gamma_moments_one_factor_against_noncentral_chi_square() -> None:
    # X = d r + g r^2 / 2, r ~ N(0, s^2) is an affine map of a noncentral chi-square(1, lam):
    # X = (g s^2 / 2) Y - d^2 / (2 g), Y = (r/s + d/(g s))^2, lam = (d / (g s))^2 (scipy.ncx2)
    d, g, s = 1200.0, -35_000.0, 0.04
    mo = delta_gamma_moments(np.array([d]), np.array([[g]]), np.array([[s * s]]))
    lam = (d / (g * s)) ** 2
    m, v, sk, ku = (float(x) for x in stats.ncx2.stats(1, lam, moments="mvsk"))
    a = g * s * s / 2.0
    assert mo.mean_usd == pytest.approx(a * m - d * d / (2 * g), rel=1e-9)
    assert mo.sd_usd == pytest.approx(abs(a) * math.sqrt(v), rel=1e-9)
    assert mo.skew == pytest.approx(-sk, rel=1e-9)  # a < 0 flips the skew
    assert mo.excess_kurtosis == pytest.approx(ku, rel=1e-9)


def test_delta_gamma_moments_multivariate_against_simulation() -> None:
    rng = np.random.default_rng(0)
    delta = np.array([1000.0, -400.0, 250.0])
    gamma = np.array([[-5000.0, 800.0, 0.0], [800.0, 2000.0, -300.0], [0.0, -300.0, 1000.0]])
    a = rng.normal(size=(3, 3))
    cov = 1e-3 * (a @ a.T + np.eye(3))
    mo = delta_gamma_moments(delta, gamma, cov)
    r = rng.multivariate_normal(np.zeros(3), cov, 2_000_000)
    x = r @ delta + 0.5 * np.einsum("ij,jk,ik->i", r, gamma, r)
    assert mo.mean_usd == pytest.approx(x.mean(), abs=0.01 * x.std())
    assert mo.sd_usd == pytest.approx(x.std(), rel=0.01)
    assert mo.skew == pytest.approx(stats.skew(x), abs=0.03)
    assert mo.excess_kurtosis == pytest.approx(stats.kurtosis(x), abs=0.1)


def test_empirical_var_es_order_statistics() -> None:
    losses = np.arange(1.0, 101.0)  # 1..100
    assert var_es(losses, 0.99) == (100.0, 100.0)  # k = 1
    assert var_es(losses, 0.975) == (98.0, 99.0)  # k = ceil(2.5) = 3: 98, 99, 100
    assert var_es(losses, 0.95) == (96.0, 98.0)


def test_empirical_var_converges_to_the_normal_quantile() -> None:
    x = np.random.default_rng(1).standard_normal(400_000)
    var, es = var_es(x, 0.99)
    assert var == pytest.approx(2.3263, abs=0.02)
    assert es == pytest.approx(2.6652, abs=0.02)


@given(
    st.lists(st.floats(-1e9, 1e9, allow_nan=False), min_size=1, max_size=300),
    st.floats(0.5, 0.999),
    st.floats(0.5, 0.999),
)
def test_es_at_least_var_and_var_monotone_in_confidence(
    losses: list[float], c1: float, c2: float
) -> None:
    x = np.array(losses)
    lo, hi = sorted((c1, c2))
    v_lo, e_lo = var_es(x, lo)
    v_hi, e_hi = var_es(x, hi)
    # ES is a mean of tail losses: summation may round it a few ulp below an equal VaR
    slack = 1e-12 * max(1.0, float(np.max(np.abs(x))))
    assert e_lo >= v_lo - slack and e_hi >= v_hi - slack
    assert v_hi >= v_lo and e_hi >= e_lo - slack


@given(st.floats(0.0, 1e7), st.floats(0.5, 0.999), st.floats(-3.0, 3.0), st.floats(0.0, 10.0))
def test_parametric_es_at_least_var(sd: float, c: float, skew: float, kurt: float) -> None:
    v, e = normal_var_es(sd, c)
    assert e >= v
    v, e = cornish_fisher_var_es(0.0, sd, skew, kurt, c)
    assert e >= v and math.isfinite(v)


def test_bad_confidence_and_losses_raise() -> None:
    with pytest.raises(InputError, match="confidence"):
        var_es(np.ones(10), 1.0)
    with pytest.raises(InputError, match="losses"):
        var_es(np.array([1.0, np.nan]), 0.99)
    with pytest.raises(InputError, match="sd_usd"):
        normal_var_es(float("nan"), 0.99)


def test_nearest_correlation_repairs_a_singular_matrix() -> None:
    # rank-1: three perfectly correlated assets, plus a sign error making it indefinite
    bad = np.array([[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    fixed = nearest_correlation(bad)
    np.linalg.cholesky(fixed)  # positive definite now
    assert np.allclose(np.diag(fixed), 1.0) and np.allclose(fixed, bad, atol=1e-6)
    indefinite = np.array([[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]])
    np.linalg.cholesky(nearest_correlation(indefinite))
    good = np.array([[1.0, 0.3], [0.3, 1.0]])
    assert np.array_equal(nearest_correlation(good), good)


def test_cornish_fisher_es_closed_form_against_quadrature() -> None:
    # ES = -(1/p) * integral_0^p q(u) du, integrated numerically by scipy.integrate.quad
    from scipy import integrate

    mean, sd, skew, kurt, alpha = 10.0, 100.0, -0.8, 2.5, 0.975

    def q(u: float) -> float:
        return mean + sd * float(cornish_fisher_z(stats.norm.ppf(u), skew, kurt))

    value, _ = integrate.quad(q, 0.0, 1.0 - alpha, limit=200)
    _, es = cornish_fisher_var_es(mean, sd, skew, kurt, alpha)
    assert es == pytest.approx(-value / (1.0 - alpha), rel=1e-7)
