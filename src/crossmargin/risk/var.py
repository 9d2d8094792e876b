r"""Value-at-Risk and expected shortfall of an account's equity and maint health.

Five methods, same inputs (the account, the joint daily log returns of its assets), side by
side; formulas and sources in ``docs/risk-analytics.md``. Conventions: PnL
:math:`X = V_s - V_0` in USD (``V`` = equity, or maint health), loss :math:`L = -X`,

.. math::

    \mathrm{VaR}_\alpha = q_\alpha(L), \qquad
    \mathrm{ES}_\alpha = E[L \mid L \ge \mathrm{VaR}_\alpha]

Simulation methods (historical, filtered historical, Monte Carlo) revalue every scenario in
full through the kernel (:class:`~crossmargin.risk.revalue.ScenarioRevaluer`); on ``S``
scenarios the VaR is the order statistic :math:`L_{(S-k+1)}` with
:math:`k = \lceil S(1-\alpha) \rceil` and the ES the mean of the ``k`` largest losses (so
``ES >= VaR`` always). The parametric methods use the kernel's first and second derivatives
in log returns (central finite differences, :func:`sensitivities`).

The 10-day horizon scales the 1-day log-return scenarios by :math:`\sqrt{10}` (square-root of
time, Basel Committee 1996 amendment, sec. B.4(c)) and the parametric covariance by 10.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from crossmargin.book.schema import Book
from crossmargin.display import rounded_repr
from crossmargin.errors import InputError
from crossmargin.market.volatility import RISKMETRICS_LAMBDA, ewma_variance
from crossmargin.risk.returns import (
    MIN_OBSERVATIONS,
    ReturnData,
    ReturnMapping,
    map_assets,
    mapped_returns,
)
from crossmargin.risk.revalue import ScenarioRevaluer

FloatArray = npt.NDArray[np.float64]

METHODS = ("historical", "filtered", "delta-normal", "cornish-fisher", "monte-carlo")
CONFIDENCES = (0.99, 0.975)
HORIZONS_DAYS = (1, 10)
#: default Monte Carlo paths and seed (reproducible)
DEFAULT_PATHS = 20_000
DEFAULT_SEED = 20_261_125
#: relative log-price step of the finite-difference Greeks
FD_STEP = 1e-3
#: grid of Student-t degrees of freedom searched by the copula's profile likelihood
NU_GRID = (2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0, 30.0, 50.0, 100.0)
#: smallest eigenvalue kept in a correlation matrix (documented singular-matrix fallback)
MIN_EIGENVALUE = 1e-8


def _check_confidence(confidence: float) -> float:
    c = float(confidence)
    if not 0.5 <= c < 1.0:
        raise InputError("confidence", confidence, "must be in [0.5, 1)")
    return c


def var_es(losses_usd: FloatArray, confidence: float) -> tuple[float, float]:
    r"""Empirical VaR and ES of a loss sample, USD.

    :math:`k = \lceil S(1-\alpha) \rceil`; VaR is the ``k``-th largest loss, ES the mean of the
    ``k`` largest. ``ES >= VaR`` and VaR is non-decreasing in :math:`\alpha` by construction.
    """
    alpha = _check_confidence(confidence)
    losses = np.asarray(losses_usd, dtype=np.float64)
    if losses.ndim != 1 or losses.size == 0:
        raise InputError("losses", losses.shape, "need a non-empty 1-d sample")
    if not np.all(np.isfinite(losses)):
        raise InputError("losses", "non-finite", "a scenario loss is not a finite number")
    k = max(1, math.ceil(round(losses.size * (1.0 - alpha), 9)))
    worst = np.partition(losses, losses.size - k)[losses.size - k :]
    var = float(worst.min())
    return var, max(float(worst.mean()), var)  # the mean of k equal values can round below


def normal_var_es(sd_usd: float, confidence: float, mean_usd: float = 0.0) -> tuple[float, float]:
    r"""Delta-normal VaR and ES of a PnL :math:`X \sim N(\mu, \sigma^2)` (Jorion 2007, ch. 5):

    .. math::  \mathrm{VaR} = \sigma z_\alpha - \mu, \quad
               \mathrm{ES} = \sigma \varphi(z_\alpha) / (1-\alpha) - \mu

    with :math:`z_{0.99} = 2.3263`, :math:`\varphi(z_{0.99})/0.01 = 2.6652`.
    """
    alpha = _check_confidence(confidence)
    if not (math.isfinite(sd_usd) and sd_usd >= 0.0):
        raise InputError("sd_usd", sd_usd, "must be a finite number >= 0")
    z = float(stats.norm.ppf(alpha))
    var = sd_usd * z - mean_usd
    es = sd_usd * float(stats.norm.pdf(z)) / (1.0 - alpha) - mean_usd
    return var, max(es, var)  # equal only through rounding (e.g. a subnormal sd)


def cornish_fisher_z(z: FloatArray | float, skew: float, excess_kurtosis: float) -> Any:
    r"""Cornish-Fisher (1938) quantile of a standardized variable, to the fourth cumulant:

    .. math:: w = z + \frac{(z^2-1)S}{6} + \frac{(z^3-3z)K}{24} - \frac{(2z^3-5z)S^2}{36}

    (Zangari 1996, RiskMetrics Monitor Q4; Jorion 2007, eq. 12.20), ``S`` the skewness, ``K``
    the excess kurtosis. Exact for ``S = K = 0``.
    """
    z2 = np.multiply(z, z)
    return (
        z
        + (z2 - 1.0) * skew / 6.0
        + (z2 * z - 3.0 * z) * excess_kurtosis / 24.0
        - (2.0 * z2 * z - 5.0 * z) * skew * skew / 36.0
    )


def cornish_fisher_var_es(
    mean_usd: float, sd_usd: float, skew: float, excess_kurtosis: float, confidence: float
) -> tuple[float, float]:
    r"""VaR and ES of a PnL with the given first four moments, by Cornish-Fisher.

    :math:`q_X(p) = \mu + \sigma\,w(\Phi^{-1}(p))`; :math:`\mathrm{VaR} = -q_X(1-\alpha)` and
    :math:`\mathrm{ES} = -\frac{1}{1-\alpha}\int_0^{1-\alpha} q_X(p)\,dp
    = -\mu - \frac{\sigma}{1-\alpha}\int_{-\infty}^{c} w(z)\varphi(z)\,dz`, closed form with
    :math:`c = \Phi^{-1}(1-\alpha)`, :math:`\int_{-\infty}^c z^k\varphi` equal to
    :math:`\Phi(c)`, :math:`-\varphi(c)`, :math:`\Phi(c) - c\varphi(c)`,
    :math:`-(c^2+2)\varphi(c)` for ``k = 0..3`` (the modified ES of Boudt, Peterson & Croux
    2008). Equal to the normal ES when ``S = K = 0``. The expansion is not monotone for large
    ``|S|``, ``K`` (Maillard 2012): the ES is floored at the VaR.
    """
    alpha = _check_confidence(confidence)
    for name, value in (("skew", skew), ("excess_kurtosis", excess_kurtosis), ("sd", sd_usd)):
        if not math.isfinite(value):
            raise InputError(name, value, "must be finite")
    p = 1.0 - alpha
    c = float(stats.norm.ppf(p))
    var = -(mean_usd + sd_usd * float(cornish_fisher_z(c, skew, excess_kurtosis)))
    a, b, s2 = skew / 6.0, excess_kurtosis / 24.0, skew * skew / 36.0
    phi = float(stats.norm.pdf(c))
    i0, i1, i2, i3 = p, -phi, p - c * phi, -(c * c + 2.0) * phi
    tail_integral = (1.0 - 3.0 * b + 5.0 * s2) * i1 + a * (i2 - i0) + (b - 2.0 * s2) * i3
    es = -(mean_usd + sd_usd * tail_integral / p)
    return var, max(es, var)


@dataclass(frozen=True)
class Moments:
    """Mean, standard deviation (USD), skewness and excess kurtosis of a PnL."""

    mean_usd: float
    sd_usd: float
    skew: float
    excess_kurtosis: float


def delta_gamma_moments(delta: FloatArray, gamma: FloatArray, cov: FloatArray) -> Moments:
    r"""Moments of :math:`X = \delta' r + \tfrac12 r' \Gamma r`, :math:`r \sim N(0, \Sigma)`.

    Cumulants (Mina & Ulmer 1999, "Delta-Gamma Four Ways"; Britten-Jones & Schaefer 1999),
    with :math:`A = \Gamma\Sigma`:

    .. math::

        \kappa_1 = \tfrac12 \mathrm{tr} A, \quad
        \kappa_2 = \delta'\Sigma\delta + \tfrac12 \mathrm{tr} A^2, \quad
        \kappa_3 = 3\delta'\Sigma\Gamma\Sigma\delta + \mathrm{tr} A^3, \quad
        \kappa_4 = 12\delta'\Sigma(\Gamma\Sigma)^2\delta + 3\,\mathrm{tr} A^4
    """
    a = gamma @ cov
    s_delta = cov @ delta
    k1 = 0.5 * float(np.trace(a))
    a2 = a @ a
    k2 = float(delta @ s_delta) + 0.5 * float(np.trace(a2))
    k3 = 3.0 * float(s_delta @ gamma @ s_delta) + float(np.trace(a2 @ a))
    k4 = 12.0 * float(s_delta @ gamma @ cov @ gamma @ s_delta) + 3.0 * float(np.trace(a2 @ a2))
    if not k2 > 0.0:
        return Moments(k1, 0.0, 0.0, 0.0)
    return Moments(k1, math.sqrt(k2), k3 / k2**1.5, k4 / (k2 * k2))


@dataclass(frozen=True, eq=False)
class Sensitivities:
    """First and second derivatives of equity and health in the assets' log returns (USD)."""

    equity_delta: FloatArray  # [n] dV/dr_a
    equity_gamma: FloatArray  # [n, n]
    health_delta: FloatArray
    health_gamma: FloatArray


def sensitivities(revaluer: ScenarioRevaluer, step: float = FD_STEP) -> Sensitivities:
    r"""Central finite differences of equity and health in log returns, one kernel batch.

    :math:`\delta_a = (V(+h e_a) - V(-h e_a))/2h`, :math:`\Gamma_{aa} = (V(+h e_a) - 2V_0 +
    V(-h e_a))/h^2`, :math:`\Gamma_{ab} = (V_{++} - V_{+-} - V_{-+} + V_{--})/4h^2`. For a
    balance of value :math:`qP`, :math:`\delta = \Gamma_{aa} = qP` (the convexity of
    :math:`e^r`).
    """
    n = revaluer.n_assets
    eye = np.eye(n) * step
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
    rows = [np.zeros(n), *eye, *(-eye)]
    for a, b in pairs:
        for sa, sb in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
            v = np.zeros(n)
            v[a], v[b] = sa * step, sb * step
            rows.append(v)
    out = revaluer.revalue(np.array(rows))

    def derive(values: FloatArray) -> tuple[FloatArray, FloatArray]:
        v0, up, down = values[0], values[1 : n + 1], values[n + 1 : 2 * n + 1]
        delta = (up - down) / (2.0 * step)
        gamma = np.diag((up - 2.0 * v0 + down) / (step * step))
        cross = values[2 * n + 1 :].reshape(-1, 4)
        for k, (a, b) in enumerate(pairs):
            g = (cross[k, 0] - cross[k, 1] - cross[k, 2] + cross[k, 3]) / (4.0 * step * step)
            gamma[a, b] = gamma[b, a] = g
        return delta, gamma

    ed, eg = derive(out.equity_usd)
    hd, hg = derive(out.health_usd)
    return Sensitivities(ed, eg, hd, hg)


def nearest_correlation(matrix: FloatArray, min_eigenvalue: float = MIN_EIGENVALUE) -> FloatArray:
    r"""A positive-definite correlation matrix near ``matrix`` (the singular fallback).

    Symmetrize, clip eigenvalues at ``min_eigenvalue``, rescale to a unit diagonal
    (eigenvalue clipping, Rebonato & Jaeckel 1999). A no-op on a well-conditioned correlation.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or not np.all(np.isfinite(m)):
        raise InputError("correlation", m.shape, "must be a finite square matrix")
    m = 0.5 * (m + m.T)
    values, vectors = np.linalg.eigh(m)
    if values.min() >= min_eigenvalue:
        return m
    fixed = (vectors * np.maximum(values, min_eigenvalue)) @ vectors.T
    d = np.sqrt(np.diag(fixed))
    out: FloatArray = fixed / np.outer(d, d)
    np.fill_diagonal(out, 1.0)
    return out


def shrunk_covariance(returns: FloatArray) -> FloatArray:
    """Ledoit-Wolf (2004) shrinkage covariance of the returns (scikit-learn's estimator)."""
    from sklearn.covariance import LedoitWolf

    cov: FloatArray = LedoitWolf(assume_centered=False).fit(returns).covariance_
    return cov


def active_covariance(returns: FloatArray) -> FloatArray:
    """Ledoit-Wolf covariance of the non-constant columns; zero rows/columns for the others.

    Shrinking toward a scaled identity would otherwise give a stablecoin a variance; and
    identical columns (an alias and its asset, a located lot and its asset: ETH@arbitrum) are
    one factor, estimated once - shrinkage would otherwise decorrelate an asset from itself
    (as :func:`fit_t_copula` does for its margins).
    """
    cov = np.zeros((returns.shape[1], returns.shape[1]))
    cols = _active_columns(returns)
    if cols.size:
        _, first, inverse = np.unique(
            returns[:, cols].T, axis=0, return_index=True, return_inverse=True
        )
        order = np.argsort(first)  # the factors in the order of their first column
        factor = np.argsort(order)[np.asarray(inverse).reshape(-1)]
        unique = shrunk_covariance(returns[:, cols[first[order]]])
        cov[np.ix_(cols, cols)] = unique[np.ix_(factor, factor)]
    return cov


def _active_columns(returns: FloatArray) -> npt.NDArray[np.int64]:
    """Columns with variance (stablecoins' zero columns carry no risk and are left out)."""
    return np.flatnonzero(returns.std(axis=0) > 0.0).astype(np.int64)


@dataclass(frozen=True, eq=False)
class TCopula:
    r"""A Student-t copula (Demarta & McNeil 2005) with empirical margins.

    ``correlation`` is the Ledoit-Wolf-shrunk correlation of the normal scores
    :math:`\Phi^{-1}(\hat U)` of the pseudo-observations :math:`\hat U = \mathrm{rank}/(T+1)`;
    ``nu`` maximizes the copula's profile log-likelihood on :data:`NU_GRID`:
    :math:`\sum_t \ln t_{\nu,R}(x_t) - \sum_{t,i} \ln t_\nu(x_{t,i})`,
    :math:`x = t_\nu^{-1}(\hat U)`.
    """

    columns: npt.NDArray[np.int64]  # the active (non-constant) columns of the return matrix
    draw: npt.NDArray[np.int64]  # for each active column, its margin/draw (identical share one)
    correlation: FloatArray
    nu: float
    sorted_returns: FloatArray  # [T, n_draws] each column sorted: the empirical margins
    n_assets: int


def fit_t_copula(returns: FloatArray) -> TCopula:
    """Fit :class:`TCopula` to ``returns[T, n]``.

    Zero-variance columns (stablecoins) are left out and identical columns (an alias and its
    asset) share one margin: both would make the correlation matrix singular.
    """
    r = _check_matrix(returns, 30)
    cols = _active_columns(r)
    if cols.size == 0:
        return TCopula(
            cols, cols, np.zeros((0, 0)), NU_GRID[-1], np.zeros((r.shape[0], 0)), r.shape[1]
        )
    _, first, inverse = np.unique(r[:, cols].T, axis=0, return_index=True, return_inverse=True)
    unique_cols = cols[np.sort(first)]
    # re-index so that draw j belongs to unique_cols[j]
    rank_of_first = np.argsort(np.argsort(first))
    draw_of_col = rank_of_first[np.asarray(inverse).reshape(-1)]
    active = r[:, unique_cols]
    t_obs = active.shape[0]
    u = stats.rankdata(active, axis=0) / (t_obs + 1.0)
    scores = stats.norm.ppf(u)
    corr = shrunk_covariance(scores)
    d = np.sqrt(np.diag(corr))
    corr = nearest_correlation(corr / np.outer(d, d))
    best_nu, best_ll = NU_GRID[-1], -math.inf
    for nu in NU_GRID:
        x = stats.t.ppf(u, nu)
        ll = float(
            stats.multivariate_t.logpdf(x, shape=corr, df=nu).sum() - stats.t.logpdf(x, nu).sum()
        )
        if ll > best_ll:
            best_nu, best_ll = nu, ll
    return TCopula(
        cols, draw_of_col.astype(np.int64), corr, best_nu, np.sort(active, axis=0), r.shape[1]
    )


def simulate_t_copula(copula: TCopula, n_paths: int, seed: int = DEFAULT_SEED) -> FloatArray:
    r"""``n_paths`` joint 1-day log returns ``[n_paths, n_assets]`` from the copula.

    :math:`T = Z/\sqrt{W/\nu}` with :math:`Z \sim N(0, R)` (Cholesky) and
    :math:`W \sim \chi^2_\nu`; each margin is then the empirical quantile of the history at the
    path's rank: :math:`X_{(k),i} = \hat F_i^{-1}((k - \tfrac12)/S)` for the path of rank ``k``
    in column ``i`` (a rank transform, equivalent to :math:`\hat F_i^{-1}(t_\nu(T_i))` as ``S``
    grows, without evaluating the t cdf).
    """
    if n_paths < 100:
        raise InputError("n_paths", n_paths, "need at least 100 paths")
    rng = np.random.default_rng(seed)
    out = np.zeros((n_paths, copula.n_assets))
    k = copula.correlation.shape[0]
    if k == 0:
        return out
    chol = np.linalg.cholesky(copula.correlation)
    # one row per margin: contiguous rows for the sorts
    z = chol @ rng.standard_normal((k, n_paths))
    t = z / np.sqrt(rng.chisquare(copula.nu, n_paths) / copula.nu)
    probs = (np.arange(n_paths) + 0.5) / n_paths
    grid = np.linspace(0.0, 1.0, copula.sorted_returns.shape[0])
    draws = np.empty((k, n_paths))
    for i in range(k):
        draws[i, np.argsort(t[i])] = np.interp(probs, grid, copula.sorted_returns[:, i])
    out[:, copula.columns] = draws[copula.draw].T
    return out


def ewma_standardize(
    returns: FloatArray, lam: float = RISKMETRICS_LAMBDA
) -> tuple[FloatArray, FloatArray]:
    r"""EWMA-standardized returns and the volatility path, per column.

    Returns ``(z[T, n], sigma[T + 1, n])`` with :math:`\sigma_t` the EWMA forecast for day
    ``t`` from the returns before it (:func:`crossmargin.market.volatility.ewma_variance`,
    RiskMetrics :math:`\lambda = 0.94`; ``sigma[T]`` forecasts the next, unseen day) and
    :math:`z_t = r_t/\sigma_t`. A zero-variance column (stablecoin) gives zeros.
    """
    r = _check_matrix(returns, 2)
    z = np.zeros_like(r)
    sigma = np.zeros((r.shape[0] + 1, r.shape[1]))
    for i in _active_columns(r):
        sigma[:, i] = np.sqrt(ewma_variance(r[:, i], lam))
        ok = sigma[:-1, i] > 0.0
        z[ok, i] = r[ok, i] / sigma[:-1, i][ok]
    return z, sigma


def filtered_scenarios(returns: FloatArray, lam: float = RISKMETRICS_LAMBDA) -> FloatArray:
    r"""Filtered historical scenarios (Hull & White 1998; Barone-Adesi et al. 1999):
    :math:`r^*_t = z_t\,\sigma_{T+1} = r_t\,\sigma_{T+1}/\sigma_t` (:func:`ewma_standardize`).
    """
    z, sigma = ewma_standardize(returns, lam)
    scenarios: FloatArray = z * sigma[-1]
    return scenarios


def _check_matrix(returns: FloatArray, min_obs: int) -> FloatArray:
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise InputError("returns", r.shape, "must be a [days, assets] matrix")
    if r.shape[0] < min_obs:
        raise InputError("returns", r.shape[0], f"too short: need at least {min_obs} days")
    if not np.all(np.isfinite(r)):
        bad = np.argwhere(~np.isfinite(r))[0]
        raise InputError(f"returns[{bad[0]}, {bad[1]}]", float(r[bad[0], bad[1]]), "not finite")
    return r


@rounded_repr
@dataclass(frozen=True)
class RiskFigure:
    """VaR and ES (USD, positive = loss) of equity and of maint health, one method and horizon.

    ``prob_liquidation`` is the share of scenarios with some group's maint health < 0
    (simulation methods; ``None`` for the parametric ones).
    """

    method: str
    horizon_days: int
    confidence: float
    equity_var_usd: float
    equity_es_usd: float
    health_var_usd: float
    health_es_usd: float
    prob_liquidation: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True, eq=False)
class AccountRisk:
    """All methods side by side for one account, with the samples behind the simulations."""

    account_id: str
    equity_usd: float
    health_usd: float
    assets: tuple[str, ...]
    sources: tuple[str, ...]
    n_obs: int
    gaps_dropped: int
    nu: float
    figures: list[RiskFigure]
    #: 1-day PnL samples (USD) per simulation method: (equity PnL, health PnL)
    samples: dict[str, tuple[FloatArray, FloatArray]] = field(default_factory=dict)

    def figure(self, method: str, horizon_days: int, confidence: float) -> RiskFigure:
        for f in self.figures:
            if (f.method, f.horizon_days) == (method, horizon_days) and math.isclose(
                f.confidence, confidence
            ):
                return f
        raise InputError("figure", (method, horizon_days, confidence), "not computed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_id": self.account_id,
            "equity_usd": self.equity_usd,
            "maint_health_usd": self.health_usd,
            "assets": dict(zip(self.assets, self.sources, strict=True)),
            "n_obs": self.n_obs,
            "gaps_dropped": self.gaps_dropped,
            "copula_nu": None if math.isinf(self.nu) else self.nu,
            "figures": [f.to_dict() for f in self.figures],
        }


def scenario_returns(
    method: str,
    returns: FloatArray,
    n_paths: int = DEFAULT_PATHS,
    seed: int = DEFAULT_SEED,
    copula: TCopula | None = None,
) -> FloatArray:
    """1-day log-return scenarios of a simulation method (historical, filtered, monte-carlo)."""
    if method == "historical":
        return _check_matrix(returns, 2)
    if method == "filtered":
        return filtered_scenarios(returns)
    if method == "monte-carlo":
        return simulate_t_copula(copula or fit_t_copula(returns), n_paths, seed)
    raise InputError("method", method, f"not a simulation method ({METHODS[:2]}, monte-carlo)")


def risk_of_returns(
    revaluer: ScenarioRevaluer,
    returns: FloatArray,
    *,
    account_id: str = "",
    methods: Sequence[str] = METHODS,
    confidences: Sequence[float] = CONFIDENCES,
    horizons_days: Sequence[int] = HORIZONS_DAYS,
    n_paths: int = DEFAULT_PATHS,
    seed: int = DEFAULT_SEED,
    min_obs: int = MIN_OBSERVATIONS,
    progress: Callable[[int], Any] | None = None,
    sources: Sequence[str] | None = None,
    gaps_dropped: int = 0,
) -> AccountRisk:
    """VaR/ES of one account for every method, confidence and horizon.

    ``returns[T, n]`` are the daily log returns of ``revaluer.asset_symbols`` (same order).
    """
    r = _check_matrix(returns, min_obs)
    if r.shape[1] != revaluer.n_assets:
        raise InputError("returns", r.shape, f"need one column per asset {revaluer.asset_symbols}")
    for m in methods:
        if m not in METHODS:
            raise InputError("method", m, f"unknown (known: {', '.join(METHODS)})")
    for c in confidences:
        _check_confidence(c)
    for h in horizons_days:
        if not (isinstance(h, int) and h >= 1):
            raise InputError("horizon_days", h, "must be an integer >= 1")
    e0, h0 = revaluer.base_equity_usd, revaluer.base_health_usd
    figures: list[RiskFigure] = []
    samples: dict[str, tuple[FloatArray, FloatArray]] = {}
    copula = fit_t_copula(r) if "monte-carlo" in methods else None
    for method in methods:
        if method in ("delta-normal", "cornish-fisher"):
            continue
        one_day = scenario_returns(method, r, n_paths, seed, copula)
        for h in horizons_days:
            out = revaluer.revalue(one_day * math.sqrt(h), progress=progress)
            eq_loss, h_loss = e0 - out.equity_usd, h0 - out.health_usd
            if h == 1:
                samples[method] = (-eq_loss, -h_loss)
            p_liq = float(out.liquidatable.mean())
            for c in confidences:
                ev, ee = var_es(eq_loss, c)
                hv, he = var_es(h_loss, c)
                figures.append(RiskFigure(method, h, c, ev, ee, hv, he, p_liq))
    parametric = [m for m in methods if m in ("delta-normal", "cornish-fisher")]
    if parametric:
        sens = sensitivities(revaluer)
        cov = active_covariance(r)
        for method in parametric:
            for h in horizons_days:
                cov_h = cov * h
                for c in confidences:
                    pair = []
                    for delta, gamma in (
                        (sens.equity_delta, sens.equity_gamma),
                        (sens.health_delta, sens.health_gamma),
                    ):
                        if method == "delta-normal":
                            sd = math.sqrt(max(float(delta @ cov_h @ delta), 0.0))
                            pair.append(normal_var_es(sd, c))
                        else:
                            mo = delta_gamma_moments(delta, gamma, cov_h)
                            pair.append(
                                cornish_fisher_var_es(
                                    mo.mean_usd, mo.sd_usd, mo.skew, mo.excess_kurtosis, c
                                )
                            )
                    (ev, ee), (hv, he) = pair
                    figures.append(RiskFigure(method, h, c, ev, ee, hv, he, None))
    order = {m: i for i, m in enumerate(METHODS)}
    figures.sort(key=lambda f: (f.horizon_days, -f.confidence, order[f.method]))
    return AccountRisk(
        account_id=account_id,
        equity_usd=e0,
        health_usd=h0,
        assets=revaluer.asset_symbols,
        sources=tuple(sources or revaluer.asset_symbols),
        n_obs=r.shape[0],
        gaps_dropped=gaps_dropped,
        nu=copula.nu if copula is not None else math.inf,
        figures=figures,
        samples=samples,
    )


def account_returns(
    revaluer: ScenarioRevaluer,
    data: ReturnData,
    proxies: dict[str, str] | None = None,
) -> tuple[FloatArray, ReturnMapping]:
    """The return matrix of the revaluer's assets (fallbacks: :func:`map_assets`)."""
    mapping = map_assets(revaluer.asset_symbols, data, proxies)
    return mapped_returns(data, mapping), mapping


def account_risk(
    book: Book,
    account_id: str,
    data: ReturnData,
    *,
    proxies: dict[str, str] | None = None,
    methods: Sequence[str] = METHODS,
    confidences: Sequence[float] = CONFIDENCES,
    horizons_days: Sequence[int] = HORIZONS_DAYS,
    n_paths: int = DEFAULT_PATHS,
    seed: int = DEFAULT_SEED,
    min_obs: int = MIN_OBSERVATIONS,
    progress: Callable[[int], Any] | None = None,
) -> AccountRisk:
    """VaR/ES of one account of ``book`` on the return ``data`` (all methods side by side)."""
    revaluer = ScenarioRevaluer.from_book(book, account_id)
    returns, mapping = account_returns(revaluer, data, proxies)
    return risk_of_returns(
        revaluer,
        returns,
        account_id=account_id,
        methods=methods,
        confidences=confidences,
        horizons_days=horizons_days,
        n_paths=n_paths,
        seed=seed,
        min_obs=min_obs,
        progress=progress,
        sources=mapping.source,
        gaps_dropped=data.gaps_dropped,
    )
