"""The anchors' liquidation cases, each reproduced as a policy of our engine.

Numbers from ../shared/reference/anchors.md (Mango v4 MV-2..MV-4, Drift v2 DV-6, Aave v3 AV-2/AV-3),
which cites the source file and line of each.
"""

from __future__ import annotations

from typing import Any

import pytest

from crossmargin.book.io import book_from_data
from crossmargin.liquidation import FeeSchedule, LiquidationConfig, LiquidationEngine
from crossmargin.liquidation.policies import drift_base_to_cover_shortage
from tests.helpers import asset


def _book(assets: dict[str, Any], balances: dict[str, float], **extra: Any) -> Any:
    data = {"assets": assets, "accounts": [{"id": "liqee", "balances": balances, **extra}]}
    return book_from_data(data)


def _mango(asset_w: float, liab_w: float) -> dict[str, Any]:
    """Mango's mock banks: iaw = w, ilw = 2 - w (test.rs), maint equal to init here."""
    return {
        "A": asset(1.0, iaw=asset_w, maw=asset_w, ilw=2 - asset_w, mlw=2 - asset_w),
        "L": asset(1.0, iaw=liab_w, maw=liab_w, ilw=2 - liab_w, mlw=2 - liab_w),
    }


MANGO = LiquidationConfig.preset("mango")


def test_mv2_liq_with_token_reaches_liquidation_end_health_zero() -> None:
    """MV-2 token_liq_with_token.rs l.551: asset +10 (w 1), liab -9 (ilw 1.4) -> 3.5 / -2.5."""
    book = _book(
        {"A": asset(1.0), "L": asset(1.0, iaw=0.6, maw=0.8, ilw=1.4, mlw=1.2)},
        {"A": 10, "L": -9},
    )
    result = LiquidationEngine(book, MANGO).liquidate()
    after = result.book_after.accounts[0].balances
    assert after["A"] == pytest.approx(3.5, abs=1e-9)
    assert after["L"] == pytest.approx(-2.5, abs=1e-9)
    assert result.events[-1].target_health_after_usd == pytest.approx(0.0, abs=1e-9)
    assert result.outcomes[0].status == "restored"


@pytest.mark.parametrize(
    ("name", "weights", "balances", "expected"),
    [
        ("no perps1", (0.9, 0.9), {"A": 10, "L": -11}, (0.0, -1.0)),
        ("no perps2", (0.8, 0.8), {"A": 10, "L": -9}, (3.0, -2.0)),
        ("no perps2, other health1", (0.8, 0.8), {"A": 10, "L": -9, "O": 0.4}, (4.0, -3.0)),
        ("no perps2, other health2", (0.8, 0.8), {"A": 10, "L": -9, "O": -0.4}, (2.0, -1.0)),
    ],
)
def test_mv3_token_liquidation_rows(
    name: str,
    weights: tuple[float, float],
    balances: dict[str, float],
    expected: tuple[float, float],
) -> None:
    """MV-3 token_liq_with_token.rs l.604 (rows marked verified); 'other' has weight 1."""
    assets = {**_mango(*weights), "O": asset(1.0)}
    result = LiquidationEngine(_book(assets, balances), MANGO).liquidate()
    # Mango's token_liq_with_token stops here; bankruptcy is a later instruction (checked below)
    after = _balances_after(result, balances, "repay")
    assert (after["A"], after["L"]) == pytest.approx(expected, abs=1e-9), name
    bankrupt = [e for e in result.events if e.kind == "socialize"]
    if name == "no perps1":  # the remaining -1 L with nothing left to sell is socialized
        assert sum(e.socialized_usd for e in bankrupt) == pytest.approx(1.0, abs=1e-9)
    else:
        assert not bankrupt


def _balances_after(result: Any, start: dict[str, float], kind: str) -> dict[str, float]:
    """Balances as the journal's row changes left them after the last event of ``kind``."""
    balances = dict(start)
    last = max(i for i, e in enumerate(result.events) if e.kind == kind)
    for event in result.events[: last + 1]:
        for change in event.changes:
            if change.kind == "balance":
                balances[change.symbol] = change.qty
    return balances


def _perp_book(spot: float, base: float, quote: float) -> Any:
    """MV-4 setup: base_lot_size 1, price 1, base weights 0.5 (init = maint here)."""
    data = {
        "assets": {"USDC": asset(1.0)},
        "markets": {
            "P": {
                "kind": "perp",
                "underlying": "X",
                "settle_asset": "USDC",
                "initial_margin_frac": 0.5,
                "maint_margin_frac": 0.5,
            }
        },
        "accounts": [
            {
                "id": "liqee",
                "balances": {"USDC": spot},
                "positions": [
                    {"market": "P", "qty": base, "entry_price": -quote / base if base else 0}
                ],
            }
        ],
    }
    data["assets"]["X"] = asset(1.0, iaw=0.5, maw=0.5, ilw=1.5, mlw=1.5)
    return book_from_data(data)


@pytest.mark.parametrize(
    ("name", "inputs", "expected"),
    [
        ("neg base liq 2: base to zero", (5, -10, 0), (5, 0, -10)),
        ("pos base liq 3: health positive", (5, 20, -20), (5, 10, -10)),
    ],
)
def test_mv4_perp_base_liquidation(
    name: str, inputs: tuple[float, float, float], expected: tuple[float, float, float]
) -> None:
    """MV-4 perp_liq_base_or_positive_pnl.rs l.786: (spot, base, quote) -> expected."""
    spot, base, quote = inputs
    result = LiquidationEngine(_perp_book(spot, base, quote), MANGO).liquidate()
    # state after Mango's perp_liq_base_or_positive_pnl (bankruptcy is a later instruction)
    last = max(i for i, e in enumerate(result.events) if e.kind == "reduce")
    qty, usdc = base, spot
    for event in result.events[: last + 1]:
        for change in event.changes:
            if change.kind == "position":
                qty = change.qty
            else:
                usdc = change.qty
    # our realized PnL sits in USDC; Mango's quote = -qty * entry + realized
    _, exp_base, exp_quote = expected
    entry = -quote / base
    assert qty == pytest.approx(exp_base, abs=1e-9), name
    assert usdc - spot - qty * entry == pytest.approx(exp_quote, abs=1e-9), name


def _drift_shortage_book(mr: float, price: float, shortage: float) -> Any:
    """One perp long of 10 base at `price`, maint margin fraction `mr`, equity short by $10."""
    requirement = 10 * price * mr
    data = {
        "assets": {"USDC": asset(1.0), "SOL": asset(price)},
        "markets": {
            "SOL-PERP": {
                "kind": "perp",
                "underlying": "SOL",
                "settle_asset": "USDC",
                "initial_margin_frac": mr,
                "maint_margin_frac": mr,
            }
        },
        "accounts": [
            {
                "id": "liqee",
                "balances": {"USDC": requirement - shortage},
                "positions": [{"market": "SOL-PERP", "qty": 10, "entry_price": price}],
            }
        ],
    }
    return book_from_data(data)


@pytest.mark.parametrize(
    ("fee", "if_fee", "expected_base"),
    [(0.0, 0.0, 1.0), (0.01, 0.0, 10 / 9), (0.01, 0.01, 1.25)],
)
def test_dv6_base_to_cover_margin_shortage(fee: float, if_fee: float, expected_base: float) -> None:
    """DV-6 math/liquidation/tests.rs: $10 shortage, MR 10 %, oracle $100 -> 1, 10/9, 1.25 base."""
    config = LiquidationConfig.preset(
        "drift", buffer_frac=0.0, fees=FeeSchedule(liquidator_frac=fee, insurance_frac=if_fee)
    )
    result = LiquidationEngine(_drift_shortage_book(0.1, 100.0, 10.0), config).liquidate()
    closed = sum(e.qty for e in result.events if e.kind == "reduce")
    assert closed == pytest.approx(expected_base, rel=1e-9)
    assert closed == pytest.approx(drift_base_to_cover_shortage(10.0, 100.0, 0.1, fee, if_fee))


@pytest.mark.parametrize(
    ("asset_fee", "liab_fee", "if_fee", "expected_liab"),
    [
        (0.0, 0.0, 0.0, 0.25),
        (0.1, 0.1, 0.0, 0.449984250),
        (0.0, 0.0, 0.01, 0.257731958),
        (0.1, 0.1, 0.01, 0.475669504),
    ],
)
def test_dv6_liability_transfer_to_cover_margin_shortage(
    asset_fee: float, liab_fee: float, if_fee: float, expected_liab: float
) -> None:
    """DV-6: aw 0.8, lw 1.2, liab $100, $10 shortage -> liability transferred (9 decimals).

    Drift's premium am = 1 + asset fee and discount lm = 1 - liab fee enter as one liquidator
    fee (1 + f) = am / lm; Drift rounds am, lm in fixed point: 1e-4 relative on the fee cases.
    """
    liquidator = (1 + asset_fee) / (1 - liab_fee) - 1
    config = LiquidationConfig.preset(
        "drift",
        buffer_frac=0.0,
        fees=FeeSchedule(liquidator_frac=liquidator, insurance_frac=if_fee),
    )
    # maint health = 0.8 * A*100 - 1.2 * L*100 = -10 with L = 1 liab token
    book = _book(
        {"USDC": asset(100.0, iaw=0.8, maw=0.8), "SOL": asset(100.0, ilw=1.2, mlw=1.2)},
        {"USDC": (1.2 * 100 - 10) / 80, "SOL": -1.0},
    )
    result = LiquidationEngine(book, config).liquidate()
    (event,) = [e for e in result.events if e.kind == "repay"]
    liab_transfer = event.qty * event.price_usd / (1 + liquidator) / 100.0
    if asset_fee == 0:  # exact up to Drift's 9-decimal truncation
        assert liab_transfer == pytest.approx(expected_liab, abs=1e-9)
    else:
        assert liab_transfer == pytest.approx(expected_liab, rel=1e-4)
