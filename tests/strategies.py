"""Hypothesis strategies for random but valid portfolio books."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from crossmargin.book import Book, book_from_data

ASSET_NAMES = ["USDC", "BTC", "ETH", "SOL", "GOV"]


@st.composite
def asset_params(draw: st.DrawFn, plain: bool) -> dict[str, Any]:
    maint_aw = draw(st.floats(0.0, 1.0))
    init_aw = draw(st.floats(0.0, 1.0)) * maint_aw
    maint_lw = draw(st.floats(1.0, 2.0))
    init_lw = maint_lw + draw(st.floats(0.0, 0.5))
    params: dict[str, Any] = {
        "price": draw(st.floats(0.01, 100_000.0)),
        "init_asset_weight": init_aw,
        "maint_asset_weight": maint_aw,
        "init_liab_weight": init_lw,
        "maint_liab_weight": maint_lw,
    }
    if not plain:
        if draw(st.booleans()):
            params["imf_factor"] = draw(st.floats(0.0, 0.01))
        if draw(st.booleans()):
            n = draw(st.integers(1, 3))
            edges = sorted(draw(st.lists(st.floats(1e3, 1e7), min_size=n, max_size=n, unique=True)))
            factors = sorted((draw(st.floats(0.0, 1.0)) for _ in range(n)), reverse=True)
            params["collateral_tiers"] = [
                {"above_usd": e, "factor": f} for e, f in zip(edges, factors, strict=True)
            ]
    return params


@st.composite
def market_params(draw: st.DrawFn, assets: list[str], plain: bool) -> dict[str, Any]:
    maint = draw(st.floats(0.001, 0.3))
    init = min(1.0, maint * draw(st.floats(1.0, 3.0)))
    params: dict[str, Any] = {
        "kind": "perp",
        "underlying": draw(st.sampled_from(assets)),
        "settle_asset": draw(st.sampled_from(assets)),
        "initial_margin_frac": init,
        "maint_margin_frac": maint,
    }
    if draw(st.booleans()):
        params["mark_price"] = draw(st.floats(0.01, 100_000.0))
    pnl_maint = draw(st.floats(0.0, 1.0))
    params["maint_pnl_weight"] = pnl_maint
    params["init_pnl_weight"] = pnl_maint * draw(st.floats(0.0, 1.0))
    if not plain:
        if draw(st.booleans()):
            params["imf_factor"] = draw(st.floats(0.0, 0.001))
        if draw(st.booleans()):
            params["pnl_imf_factor"] = draw(st.floats(0.0, 0.01))
        if draw(st.booleans()):
            floor = draw(st.floats(1e3, 1e6))
            params["brackets"] = [
                {
                    "notional_floor_usd": floor,
                    "initial_margin_frac": min(1.0, init * 2),
                    "maint_margin_frac": min(1.0, maint * 2),
                }
            ]
    return params


@st.composite
def option_params(
    draw: st.DrawFn, assets: list[str], prices: dict[str, float], plain: bool
) -> dict[str, Any]:
    """A European option: strike 0.5-2x the underlying's price in settle units, 1-365 days
    after ``AS_OF``, mark vol 10-200 %, the standard fractions or random ones."""
    underlying = draw(st.sampled_from(assets))
    settle = draw(st.sampled_from(assets))
    moneyness = draw(st.floats(0.5, 2.0))
    maint = draw(st.floats(0.01, 0.2))
    params: dict[str, Any] = {
        "kind": "option",
        "underlying": underlying,
        "settle_asset": settle,
        "strike": prices[underlying] / prices[settle] * moneyness,
        "expiry": "2027-01-01T00:00:00Z"
        if plain
        else f"2026-{draw(st.integers(1, 12)):02d}-{draw(st.integers(2, 28)):02d}T08:00:00Z",
        "option_type": draw(st.sampled_from(["call", "put"])),
        "mark_vol": draw(st.floats(0.1, 2.0)),
        "maint_margin_frac": maint,
        "initial_margin_frac": min(1.0, maint * draw(st.floats(1.0, 3.0))),
        "initial_min_margin_frac": draw(st.floats(0.0, 0.2)),
    }
    return params


#: valuation time of books with options (their expiries fall after it)
AS_OF = "2026-01-01T00:00:00Z"

quantities = st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)


@st.composite
def books(
    draw: st.DrawFn,
    plain: bool = False,
    convention: str | None = None,
    modes: tuple[str, ...] = ("cross", "isolated"),
    max_accounts: int = 4,
    options: bool = True,
) -> Book:
    """A valid random book. ``plain``: no tiers, size premia or brackets (homogeneous health).
    ``options``: up to two option markets (marked by Black-76, standard option margin)."""
    n_assets = draw(st.integers(1, len(ASSET_NAMES)))
    names = ASSET_NAMES[:n_assets]
    assets = {name: draw(asset_params(plain)) for name in names}
    n_markets = draw(st.integers(0, 3))
    markets = {f"M{i}": draw(market_params(names, plain)) for i in range(n_markets)}
    prices = {name: float(assets[name]["price"]) for name in names}
    for i in range(draw(st.integers(0, 2)) if options else 0):
        markets[f"O{i}"] = draw(option_params(names, prices, plain))
    accounts = []
    for i in range(draw(st.integers(1, max_accounts))):
        mode = draw(st.sampled_from(modes))
        balances = {
            name: draw(quantities) for name in draw(st.lists(st.sampled_from(names), unique=True))
        }
        positions = []
        for market in draw(st.lists(st.sampled_from(list(markets) or ["-"]), unique=True)):
            if market == "-":
                continue
            position: dict[str, Any] = {
                "market": market,
                "qty": draw(quantities),
                "entry_price": draw(st.floats(0.0, 100_000.0)),
                "unrealized_funding": draw(st.floats(-1e3, 1e3)),
            }
            positions.append(position)
        if mode == "isolated":
            # allocate a random share of each positive balance to one position
            free = {k: v for k, v in balances.items() if v > 0}
            for position in positions:
                allocation = {}
                for asset, qty in free.items():
                    share = draw(st.floats(0.0, 0.5)) * qty
                    allocation[asset] = share
                    free[asset] = qty - share
                position["isolated_collateral"] = allocation
        accounts.append(
            {"id": f"acct{i}", "mode": mode, "balances": balances, "positions": positions}
        )
    data: dict[str, Any] = {
        "as_of": AS_OF,
        "assets": assets,
        "markets": markets,
        "accounts": accounts,
    }
    data["pnl_convention"] = convention or draw(st.sampled_from(["separate", "settle_netted"]))
    return book_from_data(data)
