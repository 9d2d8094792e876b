"""The HTTP and WebSocket API: roles, cross-account attempts, bad input, streams, schema."""

from __future__ import annotations

from typing import Any

import pytest


def h(key: str, idem: str | None = None) -> dict[str, str]:
    headers = {"X-API-Key": key}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return headers


def test_openapi_schema_lists_the_resources(api: Any) -> None:
    client, _, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/v1/accounts",
        "/v1/accounts/{account_id}",
        "/v1/accounts/{account_id}/trades",
        "/v1/prices",
        "/v1/system",
        "/v1/events",
        "/v1/assets/{symbol}",
    ):
        assert path in paths


def test_keys_and_roles(api: Any) -> None:
    client, keys, _ = api
    assert client.get("/v1/accounts").status_code == 401
    assert client.get("/v1/accounts", headers=h("cm_wrong")).status_code == 401
    assert client.get("/v1/system", headers=h(keys.alice)).status_code == 403
    assert (
        client.post(
            "/v1/prices",
            headers=h(keys.alice),
            json={"quotes": [{"asset": "ETH", "source": "x", "price_usd": 1.0}]},
        ).status_code
        == 403
    )
    assert (
        client.patch(
            "/v1/assets/SOL", headers=h(keys.auditor, "p"), json={"imf_factor": 0.001}
        ).status_code
        == 403
    )
    assert client.get("/v1/system", headers=h(keys.auditor)).status_code == 200
    mine = client.get("/v1/accounts", headers=h(keys.alice)).json()
    assert {a["account_id"] for a in mine["accounts"]} == {"eth-levered", "sol-degen"}
    assert client.get("/v1/accounts", headers=h(keys.admin)).json()["total"] == 7


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/v1/accounts/{id}", None),
        ("get", "/v1/accounts/{id}/explain", None),
        ("get", "/v1/accounts/{id}/events", None),
        ("post", "/v1/accounts/{id}/what-if", {"withdrawals": {"USDC": 1.0}}),
        ("post", "/v1/accounts/{id}/stress", {"shocks": {"ETH": -0.1}}),
        ("post", "/v1/accounts/{id}/deposits", {"asset": "USDC", "qty": 1.0}),
        ("post", "/v1/accounts/{id}/withdrawals", {"asset": "USDC", "qty": 1.0}),
        ("post", "/v1/accounts/{id}/trades", {"market": "ETH-PERP", "qty": 0.1}),
    ],
)
def test_another_owners_account_looks_like_no_account(
    api: Any, method: str, path: str, body: Any
) -> None:
    """Reading, moving or what-iffing another owner's account is refused exactly as for an id
    that does not exist: same status, same message shape, nothing revealed."""
    client, keys, _ = api
    answers = []
    for account in ("basis-trader", "no-such-account"):
        url = path.format(id=account)
        kwargs: dict[str, Any] = {"headers": h(keys.alice, "x-" + account)}
        if body is not None:
            kwargs["json"] = body
        response = getattr(client, method)(url, **kwargs)
        answers.append((response.status_code, response.json()["error"].replace(account, "ID")))
    assert answers[0] == answers[1] == (404, "account: no account with this id (got 'ID')")


def test_own_account_detail_has_everything_the_dashboard_needs(api: Any) -> None:
    client, keys, _ = api
    detail = client.get("/v1/accounts/eth-levered", headers=h(keys.alice)).json()
    for field in (
        "equity_usd",
        "init_health_usd",
        "maint_health_usd",
        "health_ratio",
        "status",
        "balances",
        "positions",
        "margin",
        "greeks",
    ):
        assert field in detail
    assert detail["margin"]["liquidation_prices"]["ETH"]["below_usd"] < 3040.0
    explain = client.get(
        "/v1/accounts/eth-levered/explain?level=init", headers=h(keys.alice)
    ).json()
    assert explain["rows"]
    stressed = client.post(
        "/v1/accounts/eth-levered/stress", headers=h(keys.alice), json={"shocks": {"ETH": -0.2}}
    ).json()
    assert stressed["after"]["maint"]["health_usd"] < detail["maint_health_usd"]
    desk = client.get("/v1/accounts/options-desk", headers=h(keys.admin)).json()
    assert desk["portfolio"]["maint"]["requirement_usd"] > 0


def test_movements_need_an_idempotency_key_and_replay(api: Any) -> None:
    client, keys, _ = api
    url = "/v1/accounts/eth-levered/deposits"
    body = {"asset": "USDC", "qty": 100.0}
    missing = client.post(url, headers=h(keys.alice), json=body)
    assert missing.status_code == 400 and "Idempotency-Key" in missing.json()["error"]
    first = client.post(url, headers=h(keys.alice, "dep-1"), json=body)
    second = client.post(url, headers=h(keys.alice, "dep-1"), json=body)
    assert first.status_code == second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true" and second.json() == first.json()
    other = client.post(url, headers=h(keys.alice, "dep-1"), json={"asset": "USDC", "qty": 101.0})
    assert other.status_code == 409
    # the same key from another caller is another key (scoped by the API key)
    bob = client.post("/v1/accounts/basis-trader/deposits", headers=h(keys.bob, "dep-1"), json=body)
    assert bob.status_code == 201 and "Idempotent-Replayed" not in bob.headers


def test_refused_trade_names_the_reason_and_health(api: Any) -> None:
    client, keys, _ = api
    response = client.post(
        "/v1/accounts/eth-levered/trades",
        headers=h(keys.alice, "big"),
        json={"market": "ETH-PERP", "qty": 1000.0},
    )
    assert response.status_code == 422
    answer = response.json()
    assert answer["error"].startswith("trade: would leave init health -")
    assert answer["would_be"]["init_health_usd"] < 0 <= answer["before"]["init_health_usd"]


BAD_BODIES = [
    ("/v1/accounts/eth-levered/deposits", '{"asset": "USDC", "qty": NaN}', "qty"),
    ("/v1/accounts/eth-levered/deposits", '{"asset": "USDC", "qty": Infinity}', "qty"),
    ("/v1/accounts/eth-levered/deposits", '{"asset": "USDC", "qty": 1e308}', "qty"),
    ("/v1/accounts/eth-levered/deposits", '{"asset": "USDC", "qty": 1e400}', "qty"),
    ("/v1/accounts/eth-levered/deposits", '{"asset": "USDC", "qty": -5}', "qty"),
    ("/v1/accounts/eth-levered/deposits", '{"asset": "USDC", "qty": "5"}', "qty"),
    ("/v1/accounts/eth-levered/deposits", '{"asset": "USDC", "qty": true}', "qty"),
    ("/v1/accounts/eth-levered/deposits", '{"asset": "DOGE", "qty": 5}', "asset"),
    ("/v1/accounts/eth-levered/deposits", '{"asset": "USDC", "qty": 5, "x": 1}', "x"),
    ("/v1/accounts/eth-levered/deposits", '{"asset": "USDC", "qty": 5', "body"),
    ("/v1/accounts/eth-levered/trades", '{"market": "NOPE-PERP", "qty": 1}', "market"),
    ("/v1/accounts/eth-levered/trades", '{"market": "ETH-PERP", "qty": 0}', "qty"),
    ("/v1/accounts/eth-levered/trades", '{"market": "ETH-PERP", "qty": 1, "price": 1e9}', "price"),
    # a key holding a newline (found by the schemathesis fuzz): quoted, the answer one line
    ("/v1/accounts/eth-levered/stress", '{"shocks": {"\\n": -0.1}}', "shocks.'\\n'"),
    ("/v1/accounts/eth-levered/stress", '{"shocks": {"' + "K" * 5000 + '": -0.1}}', "shocks."),
]


@pytest.mark.parametrize(("path", "raw", "field"), BAD_BODIES)
def test_bad_input_is_a_4xx_naming_the_field(api: Any, path: str, raw: str, field: str) -> None:
    client, keys, core = api
    before = core.ledger.events(limit=None)
    response = client.post(
        path,
        headers={**h(keys.alice, "bad-" + raw[-12:]), "content-type": "application/json"},
        content=raw,
    )
    assert 400 <= response.status_code < 500, response.text
    message = response.json()["error"]
    assert "\n" not in message and len(message) < 400
    assert field in message
    assert core.ledger.events(limit=None) == before


@pytest.mark.parametrize(
    ("quote", "field"),
    [
        ({"asset": "ETH", "source": "a", "price_usd": -1.0}, "price_usd"),
        ({"asset": "ETH", "source": "a", "price_usd": 1e308}, "price_usd"),
        ({"asset": "ETH", "source": "a", "price_usd": 3000.0, "timestamp_s": 9e10}, "timestamp_s"),
        ({"asset": "XYZ", "source": "a", "price_usd": 3000.0}, "asset"),
        ({"asset": "ETH", "source": "", "price_usd": 3000.0}, "source"),
    ],
)
def test_bad_quotes_are_refused(api: Any, quote: dict[str, Any], field: str) -> None:
    client, keys, _ = api
    response = client.post("/v1/prices", headers=h(keys.oracle), json={"quotes": [quote]})
    assert 400 <= response.status_code < 500
    assert field in response.json()["error"]


def test_a_quote_jumping_5x_is_rejected_with_a_reason(api: Any) -> None:
    client, keys, core = api
    answer = client.post(
        "/v1/prices",
        headers=h(keys.oracle),
        json={"quotes": [{"asset": "ETH", "source": "src0", "price_usd": 3040.0 * 6}]},
    ).json()
    assert answer["accepted"] == 0 and "jumps" in answer["rejected"][0]["reason"]
    assert core.price_usd[core.work.asset_id("ETH")] == 3040.0


def receive_until(ws: Any, predicate: Any, limit: int = 50) -> dict[str, Any]:
    for _ in range(limit):
        message = ws.receive_json()
        if predicate(message):
            return message
    raise AssertionError("message not received")


def test_stream_pushes_own_account_and_hides_others(api: Any) -> None:
    """Trap: a WebSocket client that reads another owner's account."""
    client, keys, _ = api
    with client.websocket_connect(f"/v1/stream?key={keys.alice}") as ws:
        ws.send_json(
            {
                "subscribe": [
                    "account:eth-levered",
                    "account:basis-trader",
                    "account:nope",
                    "system",
                    "events",
                ]
            }
        )
        subscribed = receive_until(ws, lambda m: m["channel"] == "subscribed")["data"]
        assert subscribed["accounts"] == ["eth-levered"]
        errors = [
            e.replace("basis-trader", "ID").replace("nope", "ID") for e in subscribed["errors"]
        ]
        assert errors[0] == errors[1] == "account: no account with this id (got 'ID')"
        assert "system" in errors[2]
        client.post(
            "/v1/prices",
            headers=h(keys.oracle),
            json={
                "quotes": [
                    {"asset": "ETH", "source": f"src{k}", "price_usd": 2900.0} for k in range(2)
                ]
            },
        )
        update = receive_until(
            ws,
            lambda m: (
                m["channel"] == "account"
                and m["data"]["maint_health_usd"] != 0
                and "remargined_s" in m["data"]
            ),
        )
        assert update["account_id"] == "eth-levered"
        # bob's deposit is an event of bob's account: alice's events stream never carries it
        client.post(
            "/v1/accounts/basis-trader/deposits",
            headers=h(keys.bob, "d"),
            json={"asset": "USDC", "qty": 1.0},
        )
        client.post(
            "/v1/accounts/eth-levered/deposits",
            headers=h(keys.alice, "d"),
            json={"asset": "USDC", "qty": 1.0},
        )
        event = receive_until(ws, lambda m: m["channel"] == "events")
        assert event["account_id"] == "eth-levered"


def test_stream_refuses_unknown_keys(api: Any) -> None:
    from starlette.websockets import WebSocketDisconnect

    client, _, _ = api
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/v1/stream?key=cm_nope") as ws,
    ):
        ws.receive_json()
    assert closed.value.code == 4401


def test_admin_changes_parameters_and_opens_accounts(api: Any) -> None:
    client, keys, _ = api
    answer = client.patch(
        "/v1/assets/SOL", headers=h(keys.admin, "p1"), json={"maint_asset_weight": 0.75}
    )
    assert answer.status_code == 200 and answer.json()["version"] == 2
    bad = client.patch(
        "/v1/assets/SOL", headers=h(keys.admin, "p2"), json={"maint_asset_weight": 2.0}
    )
    assert bad.status_code == 422 and "maint_asset_weight" in bad.json()["error"]
    opened = client.post(
        "/v1/accounts", headers=h(keys.admin, "o1"), json={"id": "carol-1", "owner": "carol"}
    )
    assert opened.status_code == 201 and opened.json()["status"] == "healthy"
    dup = client.post(
        "/v1/accounts", headers=h(keys.admin, "o2"), json={"id": "carol-1", "owner": "carol"}
    )
    assert dup.status_code == 400
    assert client.get("/v1/accounts/carol-1", headers=h(keys.admin)).status_code == 200


def test_detail_of_an_account_borrowing_its_underlying(api: Any) -> None:
    """A cross account that borrows ETH while long ETH-PERP has no portfolio view (the Greeks
    say why) but its detail still answers."""
    client, keys, _ = api
    client.post(
        "/v1/accounts", headers=h(keys.admin, "o"), json={"id": "borrower", "owner": "alice"}
    )
    client.post(
        "/v1/accounts/borrower/deposits",
        headers=h(keys.admin, "d"),
        json={"asset": "USDC", "qty": 1e6},
    )
    assert (
        client.post(
            "/v1/accounts/borrower/withdrawals",
            headers=h(keys.alice, "w"),
            json={"asset": "ETH", "qty": 10.0},
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/v1/accounts/borrower/trades",
            headers=h(keys.alice, "t"),
            json={"market": "ETH-PERP", "qty": 5.0},
        ).status_code
        == 201
    )
    detail = client.get("/v1/accounts/borrower", headers=h(keys.alice))
    assert detail.status_code == 200
    assert "error" in detail.json()["greeks"]


@pytest.mark.parametrize("after_seq", [str(2**63), str(10**30), "-1", "1e3"])
def test_event_cursor_beyond_64_bits_is_a_422(api: Any, after_seq: str) -> None:
    """A sequence number is a 64-bit integer in the database; a larger cursor (found by the
    schemathesis fuzz: an OverflowError and a 500) is refused naming the field."""
    client, keys, _ = api
    response = client.get(f"/v1/events?after_seq={after_seq}", headers=h(keys.auditor))
    assert response.status_code == 422, response.text
    assert "after_seq" in response.json()["error"]
    ok = client.get(f"/v1/events?after_seq={2**63 - 1}", headers=h(keys.auditor))
    assert ok.status_code == 200 and ok.json()["events"] == []
