"""The shipped Mills-ratio rational and the normal tails against 40-digit mpmath (1-2 s)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.pricing.test_vecmath import _run


def test_mills_ratio_and_norm_cdf_against_mpmath() -> None:
    mp = pytest.importorskip("mpmath")
    from tests.pricing.fit_mills import mills

    mp.mp.dps = 40
    x = np.linspace(0.0, 38.0, 4001)
    ref = np.array([float(mills(mp.mpf(float(v)))) for v in x])
    rel = np.abs(_run(2, x) - ref) / ref
    # 5-6 ulp of rounding in P, Q and P/Q (the rational itself is within 4.9e-17): 7.6e-16 at
    # worst on 30,000 random points in [0, 1]; the grid's figure moves with the compiler's FMA
    # fusing (<= 4e-16 with an older LLVM, 4.5e-16 with numba 0.68, 4.1e-16 without any FMA)
    assert rel[x <= 1.0].max() <= 8e-16
    assert rel.max() <= 1.1e-15
    z = -x[(x > 0.0) & (x <= 37.0)]  # beyond, N(x) < 1e-300 flushes to 0
    ref_cdf = np.array([float(mp.ncdf(mp.mpf(float(v)))) for v in z])
    assert np.max(np.abs(_run(3, z) - ref_cdf) / ref_cdf) <= 1.5e-15
