"""Example inputs a new user can run every README command on.

``crossmargin demo --write-examples DIR`` writes:

* ``book.yaml`` - the bundled demo book (``demo_book.yaml``);
* ``prices.csv`` - two years of daily OHLCV-style prices and volumes of BTC, ETH, wstETH and
  AAVE in the ``ASSET:field`` column layout (SOL is left out on purpose: ``--proxy SOL=ETH``);
  simulated, not market data: a seeded GARCH(1,1) with Student-t(5) shocks (Bollerslev 1986;
  the persistence alpha + beta = 0.97 is typical of daily crypto returns), correlated through
  a fixed correlation matrix, ending at the demo book's prices on its ``as_of`` date;
* ``case.json`` - a Derive PM2 portfolio case in the import format of
  :func:`crossmargin.portfolio.derive.import_derive` (``Scenario`` + ``Parameters``, no
  ``Result``): an ETH book of our own making (a short put spread, a long call, a perp hedge, a
  wstETH collateral) with the ``derive-pm2`` profile's parameters written back in Derive's names.

* ``cross-venue.yaml`` - the demo book plus an ``arbitrum`` location (5 % bridge haircut, 15 min
  finality), a constant-product ETH/USDC pool there as its depth, and an account ``bridger``
  whose ETH sits on arbitrum (``crossmargin transfer``, docs/cross-venue.md).

Everything is generated here, from a seed: no file is copied from elsewhere.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

EXAMPLE_FILES = ("book.yaml", "prices.csv", "case.json", "cross-venue.yaml")

SEED = 20_261_125
DAYS = 730
#: asset -> (last price USD = the demo book's, annual vol, mean daily volume in units)
ASSETS: dict[str, tuple[float, float, float]] = {
    "BTC": (91_250.0, 0.55, 18_000.0),
    "ETH": (3_040.0, 0.70, 320_000.0),
    "wstETH": (3_690.0, 0.71, 6_000.0),
    "AAVE": (186.0, 0.95, 160_000.0),
}
#: correlation of the daily shocks, in the order of ASSETS
CORRELATION = (
    (1.00, 0.80, 0.79, 0.62),
    (0.80, 1.00, 0.98, 0.72),
    (0.79, 0.98, 1.00, 0.71),
    (0.62, 0.72, 0.71, 1.00),
)
GARCH_ALPHA, GARCH_BETA, STUDENT_DF = 0.08, 0.89, 5.0
AS_OF = dt.date(2026, 11, 25)


def example_prices_csv() -> str:
    """The ``prices.csv`` text (module docstring): deterministic for a given numpy."""
    import numpy as np

    rng = np.random.default_rng(SEED)
    names = list(ASSETS)
    last = np.array([ASSETS[a][0] for a in names])
    sigma_d = np.array([ASSETS[a][1] for a in names]) / math.sqrt(365.0)
    volume = np.array([ASSETS[a][2] for a in names])
    chol = np.linalg.cholesky(np.array(CORRELATION))
    # unit-variance Student-t shocks: z * sqrt((df - 2) / chi2_df)
    z = rng.standard_normal((DAYS, len(names))) @ chol.T
    chi2 = rng.chisquare(STUDENT_DF, size=(DAYS, 1))
    shocks = z * np.sqrt((STUDENT_DF - 2.0) / chi2)
    omega = sigma_d**2 * (1.0 - GARCH_ALPHA - GARCH_BETA)
    var = sigma_d**2
    returns = np.empty_like(shocks)
    for t in range(DAYS):
        returns[t] = np.sqrt(var) * shocks[t]
        var = omega + GARCH_ALPHA * returns[t] ** 2 + GARCH_BETA * var
    log_path = np.cumsum(returns, axis=0)
    close = last * np.exp(log_path - log_path[-1])  # ends at the book's prices
    opened = np.vstack([close[:1] * np.exp(-returns[:1]), close[:-1]])
    spread = np.abs(rng.standard_normal((DAYS, len(names)))) * sigma_d * 0.6
    high = np.maximum(opened, close) * np.exp(spread)
    low = np.minimum(opened, close) * np.exp(-spread)
    traded = volume * np.exp(0.35 * rng.standard_normal((DAYS, len(names))) + 4.0 * np.abs(returns))
    header = [""] + [f"{a}:{f}" for a in names for f in ("open", "high", "low", "close", "volume")]
    lines = [",".join(header)]
    first = AS_OF - dt.timedelta(days=DAYS - 1)
    for t in range(DAYS):
        cells = [(first + dt.timedelta(days=t)).isoformat()]
        for j in range(len(names)):
            cells += [f"{x:.6g}" for x in (opened[t, j], high[t, j], low[t, j], close[t, j])]
            cells.append(f"{traded[t, j]:.1f}")
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def _svi(atm_vol: float, tau_yr: float, forward: float) -> list[float]:
    """A raw SVI slice ``[a, b, rho, m, sigma, F, tau]`` with ATM vol about ``atm_vol`` and a
    put skew (rho < 0): w(0) = a + b sigma (with m = 0) = atm_vol^2 tau."""
    b, rho, sigma = 0.1 * tau_yr / 0.25, -0.35, 0.2
    a = atm_vol**2 * tau_yr - b * sigma
    return [a, b, rho, 0.0, sigma, forward, tau_yr]


def example_derive_case() -> dict[str, Any]:
    """The ``case.json`` content (module docstring)."""
    from crossmargin.portfolio.derive import _SECTIONS, _VOL_STATES
    from crossmargin.portfolio.profiles import get_profile

    profile = get_profile("derive-pm2")
    spot = 3_040.0
    expiry_s = 30 * 86_400
    tau = expiry_s / (365.0 * 86_400.0)
    rate = 0.04
    forward = spot * math.exp(rate * tau)
    parameters: dict[str, Any] = {}
    for section, (_, keys) in _SECTIONS.items():
        values = getattr(profile, section)
        for field, key in keys.items():
            group, name = key.split(".")
            parameters.setdefault(group, {})[name] = getattr(values, field)
    parameters.setdefault("Margin", {}).update(
        MM_LOSS_FACTOR=profile.mm_loss_factor, IM_LOSS_FACTOR=profile.im_loss_factor
    )
    direction = {ours: theirs for theirs, ours in _VOL_STATES.items() if theirs != "None"}
    direction["none"] = "None"
    parameters["Scenarios"] = [
        {
            "SpotShock": 1.0 + s.spot_shock_frac,
            "VolShockDirection": direction[s.vol],
            "DampeningFactor": s.dampening,
        }
        for s in profile.scenarios
    ]
    option = {"Expiry": expiry_s}
    return {
        "Scenario": {
            "Cash": 25_000.0,
            "SpotPrice": spot,
            "SpotConfidence": 1.0,
            "NumPerps": 4.0,
            "PerpPrice": 3_041.5,
            "PerpConfidence": 1.0,
            "UnrealisedPerpPNL": -210.0,
            "UnrealisedFunding": 12.5,
            "StablePrice": 1.0,
            "StableConfidence": 1.0,
            "Collaterals": [
                {
                    "Name": "wstETH",
                    "Amount": 3.0,
                    "Price": 3_690.0,
                    "IsRiskCancelling": True,
                    "MMHaircut": 0.02,
                    "IMHaircut": 0.05,
                    "Confidence": 1.0,
                }
            ],
            "Options": [
                {**option, "Strike": 2_800.0, "IsCall": 0, "Amount": -10.0},
                {**option, "Strike": 2_600.0, "IsCall": 0, "Amount": 10.0},
                {**option, "Strike": 3_400.0, "IsCall": 1, "Amount": 5.0},
            ],
            "OptionFeeds": [
                {
                    "FeedExpiry": expiry_s,
                    "Forward": forward,
                    "ForwardConfidence": 1.0,
                    "Rate": rate,
                    "RateConfidence": 1.0,
                    "SVIparam": _svi(0.62, tau, forward),
                    "OptionVolConfidences": 1.0,
                }
            ],
        },
        "Parameters": parameters,
    }


def example_cross_venue_book() -> str:
    """The ``cross-venue.yaml`` text (module docstring): the demo book with collateral elsewhere."""
    import yaml

    from crossmargin.book.io import demo_book_text

    book = yaml.safe_load(demo_book_text())
    book["locations"] = {
        "arbitrum": {
            "bridge_haircut_frac": 0.05,
            "finality_s": 900,
            "transfer_cost_usd": 2.0,
            "transfer_cost_frac": 0.0005,
            "state": "open",
            "depth_pool": "eth-arb",
        }
    }
    # 2,000 ETH and 6.08 M USDC at the demo book's ETH price of 3,040 USD
    book["pools"] = {
        "eth-arb": {
            "kind": "constant_product",
            "base": "ETH",
            "quote": "USDC",
            "base_qty": 2_000.0,
            "quote_qty": 6_080_000.0,
            "fee_frac": 0.003,
        }
    }
    book["accounts"].append(
        {
            "id": "bridger",
            "balances": {"ETH": {"qty": 10.0, "location": "arbitrum"}, "USDC": -20_000.0},
            "in_flight": [
                {"asset": "ETH", "qty": 2.0, "from": "arbitrum", "to": "home", "elapsed_s": 120}
            ],
        }
    )
    return str(yaml.safe_dump(book, sort_keys=False))


def write_examples(directory: Path) -> list[Path]:
    """Write :data:`EXAMPLE_FILES` into ``directory`` (created if missing); their paths."""
    from crossmargin.book.io import demo_book_text

    directory.mkdir(parents=True, exist_ok=True)
    texts = {
        "book.yaml": demo_book_text(),
        "prices.csv": example_prices_csv(),
        "case.json": json.dumps(example_derive_case(), indent=2) + "\n",
        "cross-venue.yaml": example_cross_venue_book(),
    }
    written = []
    for name in EXAMPLE_FILES:
        path = directory / name
        path.write_text(texts[name], encoding="utf-8")
        written.append(path)
    return written
