"""Pool risk views: distance to liquidation against the exact liquidation price, leverage,
heatmap, the stress library over the pool, cascades in the background."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from tests.service.test_api import h


def test_distance_to_liquidation_matches_the_exact_liquidation_price(api: Any) -> None:
    """For an account whose health is linear in ETH near the crossing (spot ETH, a USDC borrow,
    an ETH perp), the linear distance equals the exact liquidation price's distance."""
    client, keys, _ = api
    rows = client.get("/v1/accounts?q=eth-lev", headers=h(keys.admin)).json()["accounts"]
    assert [r["account_id"] for r in rows] == ["eth-levered"]
    row = rows[0]
    detail = client.get("/v1/accounts/eth-levered", headers=h(keys.admin)).json()
    exact = {
        asset: abs(lp["nearest_usd"] / lp["price_usd"] - 1.0)
        for asset, lp in detail["margin"]["liquidation_prices"].items()
        if lp["nearest_usd"] is not None
    }
    assert row["distance_asset"] == min(exact, key=exact.__getitem__)
    assert row["distance_to_liquidation_frac"] == pytest.approx(min(exact.values()), rel=1e-6)
    # nearest in %: USDC up (the borrow), at a stablecoin's default 0.2 % a day
    assert row["distance_asset"] == "USDC"
    assert row["distance_vol_units"] == pytest.approx(row["distance_to_liquidation_frac"] / 0.002)
    gross = sum(abs(p["qty"]) for p in detail["positions"] if p["market"] == "ETH-PERP") * 3041.5
    assert row["leverage"] == pytest.approx(gross / detail["equity_usd"], rel=1e-3)


def test_accounts_sort_by_distance(api: Any) -> None:
    client, keys, _ = api
    rows = client.get(
        "/v1/accounts?sort=distance_to_liquidation_frac", headers=h(keys.admin)
    ).json()["accounts"]
    distances = [r["distance_to_liquidation_frac"] for r in rows]
    known = [d for d in distances if d is not None]
    assert known == sorted(known) and distances[: len(known)] == known


def test_collateral_and_heatmap(api: Any) -> None:
    client, keys, _ = api
    detail = client.get("/v1/accounts/eth-levered", headers=h(keys.alice)).json()
    eth = next(c for c in detail["collateral"] if c["asset"] == "ETH")
    assert eth["value_usd"] == pytest.approx(eth["qty"] * eth["price_usd"])
    assert 0 < eth["maint_weighted_usd"] < eth["value_usd"]
    assert eth["init_weighted_usd"] < eth["maint_weighted_usd"]
    heat = client.get("/v1/accounts/eth-levered/heatmap", headers=h(keys.alice)).json()
    assert heat["assets"][0] == "ETH" and len(heat["maint_health_usd"]) == 13
    centre = heat["maint_health_usd"][6][6]
    assert centre == pytest.approx(detail["maint_health_usd"], rel=1e-3)
    assert heat["maint_health_usd"][0][6] < centre  # ETH -30 % hurts a levered long


def test_stress_library_over_the_pool(api: Any) -> None:
    client, keys, _ = api
    assert client.get("/v1/risk/stress", headers=h(keys.alice)).status_code == 403
    scenarios = client.get("/v1/risk/stress", headers=h(keys.auditor)).json()["scenarios"]
    assert len(scenarios) >= 3
    worst = max(scenarios, key=lambda s: s["maint_deficit_usd"])
    assert worst["accounts_liquidatable"] >= 1 and worst["pool_equity_usd"] > 0


def test_cascade_runs_in_the_background(api: Any) -> None:
    client, keys, _ = api
    started = client.post(
        "/v1/risk/cascade", headers=h(keys.admin), json={"shocks": {"ETH": -0.3, "SOL": -0.3}}
    )
    assert started.status_code == 202
    job = started.json()["job_id"]
    deadline = time.time() + 60
    while True:
        view = client.get(f"/v1/risk/cascade/{job}", headers=h(keys.admin)).json()
        if view["state"] != "running" or time.time() > deadline:
            break
        time.sleep(0.2)
    assert view["state"] == "done", view
    assert view["rounds"] and view["progress_frac"] == 1.0
    assert view["summary"]["liquidated_accounts"] >= 1
    assert view["rounds"][0]["price_usd"]["ETH"] == pytest.approx(3040.0 * 0.7, rel=1e-3)
    bad = client.post("/v1/risk/cascade", headers=h(keys.admin), json={"shocks": {"ETH": -1.5}})
    assert bad.status_code == 422 and "shocks.ETH" in bad.json()["error"]
    assert client.get("/v1/risk/cascade/nope", headers=h(keys.admin)).status_code == 404


def test_whoami(api: Any) -> None:
    client, keys, _ = api
    assert client.get("/v1/whoami", headers=h(keys.alice)).json() == {
        "name": "alice",
        "role": "owner",
        "owner": "alice",
    }


def test_liquidation_probability_is_the_first_passage_of_the_distance(api: Any) -> None:
    """The accounts list carries P(liquidated within a day): GBM first passage of the nearest
    asset's move at its daily volatility (ETH 4 %/day), checked against the closed form of a
    Brownian motion with drift hitting a barrier."""
    from scipy.stats import norm

    client, keys, _ = api
    row = client.get("/v1/accounts?q=eth-lev", headers=h(keys.admin)).json()["accounts"][0]
    detail = client.get("/v1/accounts/eth-levered", headers=h(keys.admin)).json()
    eth = detail["margin"]["liquidation_prices"]["ETH"]
    d = abs(np.log(eth["below_usd"] / eth["price_usd"]))
    sigma, m = 0.04, 0.5 * 0.04**2  # a driftless price: the log drifts down by sigma^2 / 2
    # first passage of a Brownian motion with drift (Shreve II, 7.2; Hull's barrier formulas),
    # T = 1 day; USDC's move (the borrow) is nearer in % but far less likely for a stablecoin
    closed_form = norm.cdf((-d + m) / sigma) + np.exp(2 * m * d / sigma**2) * norm.cdf(
        (-d - m) / sigma
    )
    assert row["liquidation_probability_1d"] == pytest.approx(closed_form, rel=1e-6)
    sol = client.get("/v1/accounts?q=sol-degen", headers=h(keys.admin)).json()["accounts"][0]
    assert sol["liquidation_probability_1d"] == 1.0  # already below maint health 0
