"""Schemathesis fuzzes every operation of the OpenAPI schema: no input gives a 5xx, and every
4xx is one line naming what was wrong. Each operation runs as the role that may call it, so the
fuzz reaches the handlers, not only the key check."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _key_for(path: str, method: str, keys: Any) -> str:
    if path == "/v1/prices" and method == "POST":
        return str(keys.oracle)
    if path.startswith("/v1/accounts/{account_id}/") and method == "POST":
        return str(keys.alice)
    return str(keys.admin)


def run_operation(operation: Any, key: str, counts: dict[str, int]) -> None:
    """Fuzz one operation with hypothesis, as ``key``'s role."""

    @given(case=operation.as_strategy())
    @settings(
        max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case: Any) -> None:
        if (case.path_parameters or {}).get("account_id") == "":
            case.path_parameters["account_id"] = "eth-levered"
        headers = dict(case.headers or {})
        headers["X-API-Key"] = key
        headers.setdefault("Idempotency-Key", "fuzz")
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.method, case.formatted_path, response.text)
        if response.status_code >= 400:
            error = response.json()["error"]
            assert isinstance(error, str) and "\n" not in error and len(error) <= 400
            counts["4xx"] += 1
        else:
            counts["2xx"] += 1

    check()


def test_no_input_gives_a_server_error(api: Any) -> None:
    client, keys, _ = api
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    counts = {"2xx": 0, "4xx": 0}
    for operation in operations:
        run_operation(operation, _key_for(operation.path, operation.method.upper(), keys), counts)
    assert counts["2xx"] > 0 and counts["4xx"] > 0, counts
