r"""Price paths for Monte Carlo: correlated GBM with jumps, and block bootstrap of real returns.

Both return the *cumulative* log return of each asset over the horizon, one row per path
(``[n_paths, n_assets]``); the cascade then starts from :math:`P_0 e^{r}`.

**GBM with jumps** (Merton 1976, "Option pricing when underlying stock returns are
discontinuous"): over :math:`h` days,

.. math::

    r_a = -\tfrac12 \sigma_a^2 h - \lambda h \kappa_a + \sigma_a \sqrt h\, (L z)_a
          + \beta_a \sum_{j=1}^{N} J_j, \qquad N \sim \text{Poisson}(\lambda h),
    \quad J_j \sim \mathcal N(\mu_J, s_J^2)

with :math:`L L^T` the correlation matrix, :math:`\beta_a = \sigma_a / \bar\sigma` (a market-wide
jump hits riskier assets harder), and :math:`\kappa_a = E[e^{\beta_a J}] - 1` so that each price
is a martingale. Assets with :math:`\sigma_a = 0` (stablecoins) do not move.

**Block bootstrap** (Künsch 1989, "The jackknife and the bootstrap for general stationary
observations"): a path is the sum of :math:`\lceil h / b \rceil` blocks of :math:`b` consecutive
days drawn uniformly from the history (truncated to :math:`h` days): the days' cross-asset
dependence and short-range autocorrelation are kept.
"""

from __future__ import annotations

import numpy as np

from crossmargin.errors import InputError
from crossmargin.margin.arrays import FloatArray


def _check(name: str, value: float, low: float = 0.0, strict: bool = True) -> None:
    ok = np.isfinite(value) and (value > low if strict else value >= low)
    if not ok:
        raise InputError(name, value, f"must be a finite number {'>' if strict else '>='} {low}")


def gbm_jump_returns(
    sigma_daily: FloatArray,
    correlation: FloatArray,
    n_paths: int,
    horizon_days: float = 1.0,
    jump_per_day: float = 0.02,
    jump_mean: float = -0.15,
    jump_std: float = 0.08,
    seed: int = 0,
) -> FloatArray:
    """Cumulative log returns ``[n_paths, n_assets]`` (module docstring)."""
    if not (isinstance(n_paths, int) and n_paths >= 1):
        raise InputError("paths", n_paths, "must be an integer >= 1")
    _check("horizon_days", horizon_days)
    _check("jump_per_day", jump_per_day, strict=False)
    _check("jump_std", jump_std, strict=False)
    sigma = np.asarray(sigma_daily, dtype=np.float64)
    corr = np.asarray(correlation, dtype=np.float64)
    n = sigma.shape[0]
    if corr.shape != (n, n) or not np.allclose(corr, corr.T) or np.any(np.diag(corr) != 1.0):
        raise InputError("correlation", corr.shape, "must be a symmetric matrix with unit diagonal")
    try:
        chol = np.linalg.cholesky(corr + 1e-12 * np.eye(n))
    except np.linalg.LinAlgError:
        raise InputError("correlation", "...", "must be positive semi-definite") from None
    rng = np.random.default_rng(seed)
    h = float(horizon_days)
    z = rng.standard_normal((n_paths, n)) @ chol.T
    risky = sigma > 0.0
    beta = np.where(
        risky, sigma / max(float(sigma[risky].mean()) if risky.any() else 1.0, 1e-300), 0.0
    )
    count = rng.poisson(jump_per_day * h, n_paths)
    jumps = count * jump_mean + np.sqrt(count) * jump_std * rng.standard_normal(n_paths)
    kappa = np.exp(beta * jump_mean + 0.5 * (beta * jump_std) ** 2) - 1.0
    drift = -0.5 * sigma**2 * h - jump_per_day * h * kappa
    returns: FloatArray = drift + sigma * np.sqrt(h) * z + jumps[:, None] * beta
    return returns


def block_bootstrap_returns(
    daily_log_returns: FloatArray,
    n_paths: int,
    horizon_days: int = 1,
    block_days: int = 5,
    seed: int = 0,
) -> FloatArray:
    """Cumulative log returns ``[n_paths, n_assets]`` from blocks of a ``[T, n_assets]``
    history of daily log returns (module docstring)."""
    data = np.asarray(daily_log_returns, dtype=np.float64)
    if data.ndim != 2 or not np.all(np.isfinite(data)):
        raise InputError("returns", data.shape, "must be a finite [days, assets] matrix")
    if not (isinstance(n_paths, int) and n_paths >= 1):
        raise InputError("paths", n_paths, "must be an integer >= 1")
    if not (isinstance(horizon_days, int) and horizon_days >= 1):
        raise InputError("horizon_days", horizon_days, "must be an integer >= 1")
    if not (isinstance(block_days, int) and block_days >= 1):
        raise InputError("block_days", block_days, "must be an integer >= 1")
    days = data.shape[0]
    if days < block_days + horizon_days:
        raise InputError("returns", days, f"need at least {block_days + horizon_days} days")
    rng = np.random.default_rng(seed)
    n_blocks = -(-horizon_days // block_days)
    starts = rng.integers(0, days - block_days + 1, (n_paths, n_blocks))
    offsets = (starts[:, :, None] + np.arange(block_days)).reshape(n_paths, -1)[:, :horizon_days]
    paths: FloatArray = data[offsets].sum(axis=1)
    return paths
