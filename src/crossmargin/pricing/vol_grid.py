r"""A log-moneyness x expiry grid of implied vols, interpolated in total variance.

Nodes: expiries :math:`t_i` (years, increasing), log-moneyness :math:`k_j = \ln(K/F)`
(increasing, shared by all expiries) and vols :math:`\sigma_{ij}`, i.e. total variances
:math:`w_{ij} = \sigma_{ij}^2 t_i`. For a query :math:`(k, t)`:

* across strikes, :math:`w_i(k)` is linear in :math:`k` between nodes and flat beyond the first
  and last node (constant implied vol in the wings: no extrapolated slope);
* across expiries, :math:`w(k, t)` is linear in :math:`t` between :math:`t_i` and
  :math:`t_{i+1}` at fixed :math:`k`; before :math:`t_0` and after the last expiry the implied
  vol at fixed :math:`k` is held constant (:math:`w = w_i(k)\, t / t_i`).

Total variance that is linear in time between nodes keeps the calendar-arbitrage condition
:math:`\partial w/\partial t \ge 0` whenever it holds at the nodes, which the constructor
checks (Gatheral & Jacquier 2014, Lemma 2.1). Linear interpolation in :math:`k` keeps :math:`w`
positive and creates no new extrema, but a kink in :math:`w(k)` is a point mass of the implied
density, negative where :math:`w` is concave at a node: use an SVI slice
(:mod:`crossmargin.pricing.svi`) when a butterfly-free smile is needed.

Query log-moneyness is taken at the forward of the option's own expiry (sticky moneyness).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from crossmargin.errors import InputError
from crossmargin.pricing._inputs import (
    FloatArray,
    broadcast_floats,
    check_positive,
    vol_from_total_variance,
)
from crossmargin.pricing._jit import kernel
from crossmargin.pricing.errors import CalendarArbitrageError


@kernel
def grid_total_variance(
    expiries: FloatArray,
    nodes: FloatArray,
    total_var: FloatArray,
    k: FloatArray,
    t: FloatArray,
    out: FloatArray,
) -> None:
    """Total variance at each ``(k[i], t[i])`` by the scheme of the module docstring.

    ``total_var`` has shape ``(len(expiries), len(nodes))``.
    """
    n_t = expiries.shape[0]
    n_k = nodes.shape[0]
    for i in range(out.shape[0]):
        kk = min(max(k[i], nodes[0]), nodes[n_k - 1])
        j = min(max(np.searchsorted(nodes, kk, side="right") - 1, 0), max(n_k - 2, 0))
        jn = min(j + 1, n_k - 1)
        u = (kk - nodes[j]) / (nodes[jn] - nodes[j]) if jn > j else 0.0
        tt = t[i]
        m = np.searchsorted(expiries, tt, side="right")  # expiries[m - 1] <= tt < expiries[m]
        if m == 0 or m == n_t:
            row = 0 if m == 0 else n_t - 1
            w_row = total_var[row, j] + u * (total_var[row, jn] - total_var[row, j])
            out[i] = w_row * (tt / expiries[row])
        else:
            w0 = total_var[m - 1, j] + u * (total_var[m - 1, jn] - total_var[m - 1, j])
            w1 = total_var[m, j] + u * (total_var[m, jn] - total_var[m, j])
            s = (tt - expiries[m - 1]) / (expiries[m] - expiries[m - 1])
            out[i] = w0 + s * (w1 - w0)


class VolGrid:
    """Implied vols on a log-moneyness x expiry grid (module docstring for the interpolation).

    ``vols[i, j]`` is the vol at expiry ``expiries_yrs[i]`` and log-moneyness
    ``log_moneyness[j] = ln(K/F)``. Raises :class:`~crossmargin.errors.InputError` for
    non-increasing or non-finite nodes, a vol that is not finite and ``> 0``, and
    :class:`~crossmargin.pricing.errors.CalendarArbitrageError` where total variance decreases
    from one expiry to the next.
    """

    def __init__(
        self, expiries_yrs: npt.ArrayLike, log_moneyness: npt.ArrayLike, vols: npt.ArrayLike
    ) -> None:
        t = np.asarray(expiries_yrs, dtype=np.float64)
        k = np.asarray(log_moneyness, dtype=np.float64)
        v = np.asarray(vols, dtype=np.float64)
        if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)) or not np.all(t > 0.0):
            raise InputError("expiries_yrs", t, "must be a non-empty 1-D array of finite years > 0")
        if k.ndim != 1 or k.size == 0 or not np.all(np.isfinite(k)):
            raise InputError("log_moneyness", k, "must be a non-empty 1-D array of finite values")
        for name, nodes in (("expiries_yrs", t), ("log_moneyness", k)):
            steps = np.flatnonzero(np.diff(nodes) <= 0.0)
            if steps.size:
                i = int(steps[0]) + 1
                raise InputError(f"{name}[{i}]", float(nodes[i]), "nodes must be increasing")
        if v.shape != (t.size, k.size):
            raise InputError(
                "vols", v.shape, f"shape must be (expiries, strikes) = {(t.size, k.size)}"
            )
        bad = np.argwhere(~((v > 0.0) & (v < np.inf)))
        if bad.size:
            i, j = (int(x) for x in bad[0])
            raise InputError(f"vols[{i}, {j}]", float(v[i, j]), "must be finite and > 0")
        w = v * v * t[:, None]
        drops = np.argwhere(np.diff(w, axis=0) < 0.0)
        if drops.size:
            i, j = (int(x) for x in drops[0])
            raise CalendarArbitrageError(
                f"vols[{i + 1}, {j}]",
                float(v[i + 1, j]),
                f"total variance vol^2*t falls from expiry {float(t[i])!r} to {float(t[i + 1])!r} "
                f"at log-moneyness {float(k[j])!r} (calendar-spread arbitrage)",
            )
        self.expiries_yrs: FloatArray = t
        self.log_moneyness: FloatArray = k
        self.vols: FloatArray = v
        self.total_var: FloatArray = np.ascontiguousarray(w)

    def total_variance(self, k: npt.ArrayLike, t_yrs: npt.ArrayLike) -> FloatArray:
        """Interpolated total variance at log-moneyness ``k`` and expiry ``t_yrs > 0``."""
        shape, (kk, tt) = broadcast_floats(("k", "t_yrs"), (k, t_yrs))
        check_positive("t_yrs", tt, shape)
        bad = np.flatnonzero(~np.isfinite(kk))
        if bad.size:
            raise InputError(f"k[{int(bad[0])}]", float(kk[bad[0]]), "must be finite")
        out = np.empty_like(kk)
        grid_total_variance(self.expiries_yrs, self.log_moneyness, self.total_var, kk, tt, out)
        return out.reshape(shape)

    def vol(
        self, forward: npt.ArrayLike, strike: npt.ArrayLike, t_yrs: npt.ArrayLike
    ) -> FloatArray:
        """Black implied vol for options on ``forward`` at ``strike`` expiring in ``t_yrs``."""
        return vol_from_total_variance(self.total_variance, forward, strike, t_yrs)
