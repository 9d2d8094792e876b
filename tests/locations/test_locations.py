"""Collateral across locations: credit = value x weight x (1 - bridge haircut) through the
kernel, halted bridges never credited (still equity), in flight credited only after finality
(or at a discount), quantity and value conserved through a transfer, one-line errors.

The weights and the kernel's health formula are Mango v4's (docs/methodology.md, anchors in
tests/margin); the location factor is the issue's definition (#17): credit = value x weight x
bridge haircut, applied to the asset weight only (a remote borrow is owed in full).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crossmargin.book.io import book_from_data
from crossmargin.errors import InputError, UnknownNameError
from crossmargin.locations.timeline import account_figures, transfer_timeline
from crossmargin.locations.transfers import advance, held_qty, start_transfer
from crossmargin.locations.view import located_view

from .conftest import book_data


def _figures(data: dict[str, Any]) -> tuple[float, float, float]:
    return account_figures(book_from_data(data), "alice")


def test_remote_credit_is_value_times_weight_times_bridge_factor(data) -> None:
    equity, init, maint = _figures(data)
    assert equity == pytest.approx(10 * 3000 - 20000)
    assert maint == pytest.approx(10 * 3000 * 0.9 * 0.95 - 20000 * 1.0)
    assert init == pytest.approx(10 * 3000 * 0.8 * 0.95 - 20000 * 1.0)


def test_plain_balance_means_home(data) -> None:
    data["accounts"][0]["balances"]["ETH"] = 10
    _, _, maint = _figures(data)
    assert maint == pytest.approx(10 * 3000 * 0.9 - 20000)
    data["accounts"][0]["balances"]["ETH"] = {"qty": 10, "location": "home"}
    assert _figures(data)[2] == pytest.approx(maint)


def test_lots_at_several_locations(data) -> None:
    data["locations"]["base"] = {"bridge_haircut_frac": 0.2}
    data["accounts"][0]["balances"]["ETH"] = [
        {"qty": 4, "location": "arbitrum"},
        {"qty": 3, "location": "base"},
        {"qty": 3},
    ]
    _, _, maint = _figures(data)
    assert maint == pytest.approx(3000 * 0.9 * (4 * 0.95 + 3 * 0.8 + 3) - 20000)


def test_halted_bridge_is_never_credited_but_is_equity() -> None:
    equity, _, maint = _figures(book_data(state="halted"))
    assert equity == pytest.approx(10000.0)
    assert maint == pytest.approx(-20000.0)


def test_remote_borrow_is_owed_in_full(data) -> None:
    data["accounts"][0]["balances"] = {"USDC": {"qty": -20000, "location": "arbitrum"}, "ETH": 10}
    _, _, maint = _figures(data)
    assert maint == pytest.approx(10 * 3000 * 0.9 - 20000)


@pytest.mark.parametrize(("mode", "factor"), [("none", 0.0), ("discount", 1.0 * (1 - 0.25))])
def test_in_flight_credit_policy(data, mode: str, factor: float) -> None:
    data["in_flight_credit"] = {"mode": mode, "discount_frac": 0.25}
    data["accounts"][0]["balances"] = {"USDC": -20000}
    data["accounts"][0]["in_flight"] = [
        {"asset": "ETH", "qty": 10, "from": "arbitrum", "to": "home"}
    ]
    equity, _, maint = _figures(data)
    assert equity == pytest.approx(10000.0)
    assert maint == pytest.approx(10 * 3000 * 0.9 * factor - 20000)
    # past finality it is credited at its destination (home: full weight)
    data["accounts"][0]["in_flight"][0]["elapsed_s"] = 600
    assert _figures(data)[2] == pytest.approx(10 * 3000 * 0.9 - 20000)


def test_in_flight_from_a_halted_bridge_is_stuck(data) -> None:
    data["in_flight_credit"] = {"mode": "discount", "discount_frac": 0.0}
    data["locations"]["arbitrum"]["state"] = "halted"
    data["accounts"][0]["balances"] = {"USDC": -20000}
    data["accounts"][0]["in_flight"] = [
        {"asset": "ETH", "qty": 10, "from": "arbitrum", "to": "home", "elapsed_s": 10_000}
    ]
    equity, _, maint = _figures(data)
    assert (equity, maint) == (pytest.approx(10000.0), pytest.approx(-20000.0))


def test_delayed_location_extends_finality(data) -> None:
    data["locations"]["arbitrum"] |= {"state": "delayed", "delay_s": 3600}
    stages, _, finality_s = transfer_timeline(
        book_from_data(data), "alice", "ETH", 5, "arbitrum", "home"
    )
    assert finality_s == 600 + 3600
    assert stages[-1].destination_qty == pytest.approx(5.0)


def test_located_prices_follow_the_base_asset(data) -> None:
    view = located_view(book_from_data(data))
    assert view.prices({"ETH": 2500.0}) == {"ETH": 2500.0, "ETH@arbitrum": 2500.0}


@pytest.mark.parametrize(
    ("balances", "match"),
    [
        ({"ETH": {"qty": 1, "location": "solana"}}, "balances.ETH.location: unknown location"),
        ({"ETH": {"qty": 1, "where": "arbitrum"}}, r"balances.ETH: a balance is a number"),
        ({"BTC": {"qty": 1, "location": "arbitrum"}}, "balances.BTC: unknown asset"),
    ],
)
def test_bad_location_input_is_one_line(data, balances, match: str) -> None:
    data["accounts"][0]["balances"] = balances
    with pytest.raises(InputError, match=match) as caught:
        book_from_data(data)
    assert "\n" not in str(caught.value)


def test_home_is_reserved(data) -> None:
    data["locations"]["home"] = {}
    with pytest.raises(InputError, match=r"locations\.home: reserved"):
        book_from_data(data)


def test_transfer_refusals(data) -> None:
    book = book_from_data(data)
    with pytest.raises(UnknownNameError, match="--from: unknown location"):
        start_transfer(book, "alice", "ETH", 1, "solana", "home")
    with pytest.raises(InputError, match="--qty: more than the 10 ETH held at arbitrum"):
        start_transfer(book, "alice", "ETH", 11, "arbitrum", "home")
    halted = book_from_data(book_data(state="halted"))
    with pytest.raises(InputError, match="--from: the bridge is halted"):
        start_transfer(halted, "alice", "ETH", 1, "arbitrum", "home")


locations = st.fixed_dictionaries(
    {
        "bridge_haircut_frac": st.floats(0.0, 0.5),
        "finality_s": st.floats(0.0, 7200.0),
        "transfer_cost_usd": st.floats(0.0, 100.0),
        "transfer_cost_frac": st.floats(0.0, 0.01),
    }
)


@settings(max_examples=40, deadline=None)
@given(
    there=locations,
    other=locations,
    qty=st.floats(0.5, 10.0),
    policy=st.sampled_from(["none", "discount"]),
    discount=st.floats(0.0, 1.0),
    route=st.sampled_from([("arbitrum", "home"), ("arbitrum", "base"), ("home", "base")]),
)
def test_transfer_conserves_value_and_never_double_counts(
    there, other, qty, policy, discount, route
) -> None:
    """At every stage: units at the source + in flight + at the destination + the cost in
    units = what was held; equity falls by exactly the cost; the compiled rows hold exactly
    those units (none counted twice); and health in flight is never above health after
    finality (the in-flight lot is never credited more than once it has landed)."""
    data = book_data(**there)
    data["locations"]["base"] = other
    data["in_flight_credit"] = {"mode": policy, "discount_frac": discount}
    data["accounts"][0]["balances"]["ETH"] = [{"qty": 10, "location": "arbitrum"}, {"qty": 10}]
    book = book_from_data(data)
    source, destination = route
    try:
        stages, cost_usd, _ = transfer_timeline(book, "alice", "ETH", qty, source, destination)
    except InputError as exc:  # the cost takes the whole transfer
        assert "takes all of it" in str(exc)
        return
    before, during, after = stages
    cost_qty = cost_usd / 3000.0
    start_total = before.source_qty + before.destination_qty
    for stage in (during, after):
        units = stage.source_qty + stage.in_flight_qty + stage.destination_qty + cost_qty
        assert units == pytest.approx(start_total, rel=1e-12)
        assert stage.equity_usd == pytest.approx(before.equity_usd - cost_usd, rel=1e-12)
    assert during.maint_health_usd <= after.maint_health_usd + 1e-9
    assert during.init_health_usd <= after.init_health_usd + 1e-9
    sent, _ = start_transfer(book, "alice", "ETH", qty, source, destination)
    view = located_view(sent)
    rows = view.book.account("alice").balances
    eth_units = sum(q for s, q in rows.items() if view.base_of.get(s, s) == "ETH")
    assert eth_units == pytest.approx(20.0 - cost_qty, rel=1e-12)
    landed = advance(sent, 1e6)
    assert not landed.account("alice").in_flight
    assert held_qty(landed.account("alice"), "ETH", destination) == pytest.approx(
        after.destination_qty, rel=1e-12
    )


@settings(max_examples=40, deadline=None)
@given(
    remote_qty=st.floats(0.0, 100.0),
    home_qty=st.floats(0.0, 100.0),
    debt=st.floats(0.0, 500_000.0),
    haircut=st.floats(0.0, 1.0),
    price=st.floats(10.0, 10_000.0),
)
def test_halted_bridge_is_never_credited(remote_qty, home_qty, debt, haircut, price) -> None:
    """Whatever the quantities, haircut and price: with the bridge halted the account's init
    and maint health are those of the same account without the remote lot, and its equity is
    that of the account with it."""
    halted = book_data(bridge_haircut_frac=haircut, state="halted")
    halted["assets"]["ETH"]["price"] = price
    halted["accounts"][0]["balances"] = {
        "ETH": [{"qty": remote_qty, "location": "arbitrum"}, {"qty": home_qty}],
        "USDC": -debt,
    }
    without = book_data()
    without["assets"]["ETH"]["price"] = price
    without["accounts"][0]["balances"] = {"ETH": home_qty, "USDC": -debt}
    equity, init, maint = _figures(halted)
    _, init_0, maint_0 = _figures(without)
    assert (init, maint) == (pytest.approx(init_0, abs=1e-6), pytest.approx(maint_0, abs=1e-6))
    assert equity == pytest.approx((remote_qty + home_qty) * price - debt, abs=1e-6)
