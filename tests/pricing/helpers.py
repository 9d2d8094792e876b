"""Shared grids and tolerances of the pricing tests."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt

REL_TOL = 1e-10  # relative agreement with QuantLib (issue #3)
ABS_TOL = 1e-12  # ... or absolute, times the natural scale of the quantity (F for prices)

# F/K from 0.5 to 2, expiry 1 day ... 3 years, vol 5% ... 300% (issue #3's grid)
MONEYNESS = (0.5, 0.6, 0.75, 0.9, 0.97, 1.0, 1.03, 1.1, 1.3, 1.6, 2.0)
EXPIRIES_YRS = (1.0 / 365.0, 7.0 / 365.0, 30.0 / 365.0, 0.25, 1.0, 3.0)
VOLS = (0.05, 0.2, 0.5, 0.8, 1.5, 3.0)
DISCOUNTS = (1.0, 0.93)


def quantlib_grid() -> dict[str, npt.NDArray[np.float64]]:
    """Every combination of the grid above, calls and puts, forward 100 (arrays by field)."""
    rows = list(itertools.product(MONEYNESS, EXPIRIES_YRS, VOLS, DISCOUNTS, (True, False)))
    moneyness, t, vol, df, is_call = (np.array(col) for col in zip(*rows, strict=True))
    forward = np.full(moneyness.shape, 100.0)
    return {
        "forward": forward,
        "strike": forward / moneyness,
        "t_yrs": t,
        "vol": vol,
        "df": df,
        "is_call": is_call.astype(bool),
    }


def assert_close(
    name: str,
    got: npt.ArrayLike,
    ref: npt.ArrayLike,
    scale: npt.ArrayLike,
    rel: float = REL_TOL,
    abs_: float = ABS_TOL,
) -> None:
    """Each value within ``rel`` relative or ``abs_ * scale`` absolute of the reference."""
    g, r, s = (np.asarray(a, dtype=np.float64) for a in (got, ref, scale))
    err = np.abs(g - r)
    ok = (err <= rel * np.abs(r)) | (err <= abs_ * np.abs(s))
    assert np.all(np.isfinite(g)), f"{name}: non-finite values"
    if not ok.all():
        i = int(np.flatnonzero(~ok)[0])
        raise AssertionError(
            f"{name}: {int((~ok).sum())} rows off, first row {i}: got {g.flat[i]!r}, "
            f"reference {r.flat[i]!r}"
        )
