"""The risk desk in a real browser (issue #12): headless Chromium driven through the DevTools
protocol (CDP over ``websockets``) against a real uvicorn server on a free port.

Each page is loaded, its numbers are checked against the API, an account is opened with a
mouse click, a what-if is submitted, an owner trades and is refused with a reason, a price
push changes the page without a reload, another owner's account looks exactly like one that
does not exist, the auditor changes nothing and the risk admin's bad parameter is refused with
the server's reason. Screenshots go to ``/tmp/dashboard-shots/``.
"""

from __future__ import annotations

import base64
import contextlib
import json
import math
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CROSSMARGIN_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip(
        f"dashboard browser tests need Chromium at {CHROMIUM} (apt-get install chromium)",
        allow_module_level=True,
    )

import httpx  # noqa: E402
import uvicorn  # noqa: E402
from websockets.sync.client import ClientConnection, connect  # noqa: E402

from crossmargin.book import load_demo_book  # noqa: E402
from crossmargin.service import db  # noqa: E402
from crossmargin.service.api import create_app, pages  # noqa: E402
from crossmargin.service.auth import create_key  # noqa: E402
from crossmargin.service.config import ServiceConfig  # noqa: E402
from crossmargin.service.core import MarginCore  # noqa: E402
from crossmargin.service.ticks import Tick  # noqa: E402

SHOTS = Path(os.environ.get("CROSSMARGIN_SHOTS", "/tmp/dashboard-shots"))
WIDTH, HEIGHT = 1280, 900
MINUS = "\u2212"


# -- formatting as the page does it (lib.js) ------------------------------------------------------
def usd(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "\u2014"
    a = abs(x)
    digits = 0 if a >= 1000 or a == 0 else 2 if a >= 1 else 4
    return f"{x:,.{digits}f}".replace("-", MINUS) + " USD"


def ratio(x: float | None) -> str:
    return "\u2014" if x is None else f"{x:,.3f}".replace("-", MINUS)


# -- the server ---------------------------------------------------------------------------------
@dataclass
class Keys:
    admin: str
    oracle: str
    auditor: str
    alice: str  # owns eth-levered and sol-degen
    bob: str  # owns basis-trader


@dataclass
class Server:
    url: str
    keys: Keys
    core: MarginCore
    http: httpx.Client

    def get(self, path: str, key: str) -> Any:
        response = self.http.get(path, headers={"X-API-Key": key})
        assert response.status_code == 200, response.text
        return response.json()

    def push(self, prices: dict[str, float]) -> None:
        quotes = [
            {"asset": asset, "source": source, "price_usd": price}
            for asset, price in prices.items()
            for source in ("s0", "s1")
        ]
        response = self.http.post(
            "/v1/prices", headers={"X-API-Key": self.keys.oracle}, json={"quotes": quotes}
        )
        assert response.status_code == 200, response.text
        assert response.json()["rejected"] == [], response.text


def _has_pages(app: Any) -> bool:
    """Whether ``app`` already serves the dashboard (once app.py registers it)."""
    for route in app.router.routes:
        if getattr(route, "original_router", None) is pages.router:
            return True
        if str(getattr(route, "path", "")).startswith("/dashboard"):
            return True
    return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    engine = db.connect(db.default_url(tmp_path_factory.mktemp("dash") / "dash.db"))
    db.upgrade(engine)
    owners = {"eth-levered": "alice", "sol-degen": "alice", "basis-trader": "bob"}
    config = ServiceConfig(auto_liquidate=False)
    book = load_demo_book()
    MarginCore.initialize(engine, book, config, owners)
    core = MarginCore(engine, config)
    keys = Keys(
        admin=create_key(engine, "admin", "admin"),
        oracle=create_key(engine, "oracle", "oracle"),
        auditor=create_key(engine, "auditor", "auditor"),
        alice=create_key(engine, "alice", "owner", "alice"),
        bob=create_key(engine, "bob", "owner", "bob"),
    )
    now = time.time()
    core.ingest(
        [
            Tick(symbol, source, asset.price, asset.price * 1e-4, now)
            for symbol, asset in book.assets.items()
            for source in ("s0", "s1")
        ]
    )
    app = create_app(core, sweep_s=3600, persist_s=3600)
    if not _has_pages(app):  # until app.py registers the dashboard itself
        pages.mount_pages(app)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    url = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as http:
        yield Server(url, keys, core, http)
    uv.should_exit = True
    thread.join(10)
    sock.close()


# -- the browser --------------------------------------------------------------------------------
class Browser:
    """Headless Chromium, one page, spoken to over the DevTools protocol."""

    def __init__(self) -> None:
        self.profile = tempfile.mkdtemp(prefix="cm-chromium-")
        self.process = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-extensions",
                "--no-proxy-server",
                "--hide-scrollbars",
                "--force-color-profile=srgb",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                f"--window-size={WIDTH},{HEIGHT}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            assert self.process.poll() is None, "chromium exited at start"
            assert time.monotonic() < deadline, "chromium did not open its DevTools port"
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        with httpx.Client(trust_env=False, timeout=10) as http:
            targets = http.get(f"http://127.0.0.1:{port}/json/list").json()
        page = next(t for t in targets if t["type"] == "page")
        self.stack = contextlib.ExitStack()
        self.ws: ClientConnection = self.stack.enter_context(
            connect(page["webSocketDebuggerUrl"], max_size=None, proxy=None, open_timeout=10)
        )
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setFocusEmulationEnabled", enabled=True)
        self.size(WIDTH, HEIGHT)

    def call(self, method: str, timeout: float = 30.0, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        ident = self.next_id
        self.ws.send(json.dumps({"id": ident, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.01, deadline - time.monotonic())))
            if message.get("id") == ident:
                if "error" in message:
                    raise AssertionError(f"CDP {method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self.events.append(message)

    def size(self, width: int, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    def js(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"JS {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 8.0, what: str = "") -> None:
        """Poll until the JS ``expression`` is truthy."""
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.js(f"!!({expression})")
            if value:
                return
            time.sleep(0.03)
        self.screenshot("failure")
        raise AssertionError(f"timed out waiting for {what or expression} (last: {value!r})")

    def text(self, selector: str) -> str:
        value = self.js(f"document.querySelector({json.dumps(selector)})?.innerText ?? null")
        assert value is not None, f"no element {selector}"
        return str(value).strip()

    def count(self, selector: str) -> int:
        return int(self.js(f"document.querySelectorAll({json.dumps(selector)}).length"))

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait("document.readyState === 'complete'", what=f"load of {url}")

    def route(self, hash_: str) -> None:
        """In-app navigation (a hash change, no reload)."""
        self.js(f"location.hash = {json.dumps(hash_)}")

    def click(self, selector: str) -> None:
        """A real mouse click at the element's centre."""
        box = self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) "
            "return null; e.scrollIntoView({block: 'center'}); const r = "
            "e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        assert box is not None, f"no element {selector} to click"
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )

    def fill(self, selector: str, text: str) -> None:
        """Focus a field, clear it and type ``text`` as keyboard input."""
        self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.focus(); "
            "e.value = ''; })()"
        )
        self.call("Input.insertText", text=text)

    def choose(self, selector: str, value: str) -> None:
        self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
            f"e.value = {json.dumps(value)}; "
            "e.dispatchEvent(new Event('change', {bubbles: true})); })()"
        )

    def key(self, key: str, code: str, keycode: int, shift: bool = False) -> None:
        for kind in ("rawKeyDown", "keyUp"):
            self.call(
                "Input.dispatchKeyEvent",
                type=kind,
                key=key,
                code=code,
                windowsVirtualKeyCode=keycode,
                modifiers=8 if shift else 0,
            )

    def screenshot(self, name: str, full: bool = True) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        params: dict[str, Any] = {"format": "png"}
        if full:
            metrics = self.call("Page.getLayoutMetrics")
            size = metrics["cssContentSize"]
            params["captureBeyondViewport"] = True
            params["clip"] = {
                "x": 0,
                "y": 0,
                "width": size["width"],
                "height": min(size["height"], 6000),
                "scale": 1,
            }
        path = SHOTS / f"{name}.png"
        try:  # a screenshot is for people: a slow one on a loaded machine is not a failure
            data = self.call("Page.captureScreenshot", timeout=90.0, **params)["data"]
        except TimeoutError:
            return path
        path.write_bytes(base64.b64decode(data))
        return path

    def problems(self, base_url: str) -> list[str]:
        """JS exceptions, console errors and requests that left the server (CDN, network)."""
        found = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(f"exception: {params['exceptionDetails']}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                found.append(f"console.error: {params.get('args')}")
            elif method == "Log.entryAdded":
                entry = params["entry"]
                if entry["level"] == "error" and entry.get("source") != "network":
                    found.append(f"log: {entry.get('text')}")
            elif method == "Network.requestWillBeSent":
                url = params["request"]["url"]
                ws_base = base_url.replace("http://", "ws://")
                if not url.startswith((base_url, ws_base, "data:", "about:")):
                    found.append(f"request outside the server: {url}")
        return found

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stack.close()
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Browser]:
    chrome = Browser()
    try:
        yield chrome
        assert chrome.problems(server.url) == []
    finally:
        chrome.close()


def login(browser: Browser, server: Server, key: str, hash_: str = "#/overview") -> None:
    """Sign in through the form (a fresh tab state: the session storage is cleared first)."""
    browser.open(f"{server.url}/dashboard/")
    browser.js("sessionStorage.clear()")
    browser.open(f"{server.url}/dashboard/{hash_}")
    browser.wait("document.querySelector('#login-key')", what="the login form")
    browser.fill("#login-key", key)
    browser.click("#login button[type=submit]")
    browser.wait("!document.querySelector('#nav').hidden", what="signed in")


def wait_live(browser: Browser) -> None:
    browser.wait("document.querySelector('#conn').dataset.state === 'live'", what="live stream")


# -- the tests ----------------------------------------------------------------------------------
def test_static_files_are_served_safely(server: Server) -> None:
    root = server.http.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/dashboard/"
    index = server.http.get("/dashboard/")
    assert index.status_code == 200 and "text/html" in index.headers["content-type"]
    assert "script-src 'self'" in index.headers["content-security-policy"]
    script = server.http.get("/dashboard/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    for bad in ("/dashboard/../api/pages.py", "/dashboard/%2e%2e/api/pages.py", "/dashboard/x.py"):
        assert server.http.get(bad).status_code == 404
    html = index.text + "".join(
        server.http.get(f"/dashboard/{p.name}").text for p in pages.STATIC_DIR.glob("*.js")
    )
    assert "https://" not in html and "http://" not in html.replace("http://www.w3.org", "")
    assert "/dashboard/" not in server.http.get("/openapi.json").text


def test_login_and_overview_match_the_api(browser: Browser, server: Server) -> None:
    browser.open(f"{server.url}/")
    browser.js("sessionStorage.clear()")
    browser.open(f"{server.url}/")
    assert browser.js("location.pathname") == "/dashboard/"
    browser.wait("document.querySelector('#login-key')", what="the login form")
    assert browser.js("document.querySelector('#login-key').labels.length") == 1
    browser.screenshot("01-login")
    browser.fill("#login-key", "cm_wrong_key")
    browser.click("#login button[type=submit]")
    browser.wait("document.querySelector('#login-error .alert')", what="refusal")
    assert "refused" in browser.text("#login-error")

    login(browser, server, server.keys.auditor)
    assert "auditor" in browser.text("#who")
    assert browser.js("sessionStorage.getItem('cm.key')") == server.keys.auditor
    browser.wait("document.querySelectorAll('#oracle-table tbody tr').length === 7")
    browser.wait("document.querySelector('#tape li')")
    wait_live(browser)
    system = server.get("/v1/system", server.keys.auditor)
    for key in ("insurance_fund_usd", "pool_equity_usd", "bad_debt_usd"):
        shown = browser.text(f".kpi[data-k={key}] dd")
        assert shown.replace("\n", " ").startswith(usd(system[key])), (key, shown)
    for status, n in system["status_counts"].items():
        assert browser.text(f"#status-counts a[data-status={status}] .n") == f"{n:,}"
        label = browser.text(f"#status-counts a[data-status={status}] .status")
        assert status.replace("_", " ") in label  # a word and an icon, not a colour alone
    for asset, view in system["oracle"].items():
        row = f"#oracle-table tr[data-asset='{asset}']"
        assert view["state"] in browser.text(f"{row} td:nth-of-type(1)")
    nearest = system["largest_risks"][0]
    assert browser.text("#risk-table tbody tr th") == nearest["account_id"]
    browser.screenshot("02-overview")


def test_accounts_table_sorts_filters_and_opens_an_account(
    browser: Browser, server: Server
) -> None:
    login(browser, server, server.keys.auditor, "#/accounts")
    browser.wait("document.querySelectorAll('#accounts-table tbody tr[data-account]').length")
    listed = server.get("/v1/accounts?limit=100", server.keys.auditor)
    assert browser.count("#accounts-table tbody tr[data-account]") == listed["total"] == 7
    first = listed["accounts"][0]
    row = f"#accounts-table tr[data-account='{first['account_id']}']"
    assert browser.text(f"{row} [data-k=equity_usd]") == usd(first["equity_usd"])
    assert browser.text(f"{row} [data-k=health_ratio]") == ratio(first["health_ratio"])
    assert "%" in browser.text(f"{row} [data-k=distance_to_liquidation_frac]")
    assert "\u03c3" in browser.text(f"{row} [data-k=distance_vol_units]")

    # largest equity first; the header is redrawn by live updates, so a click that landed on a
    # node being replaced is retried - only while the route does not show the sort yet (a
    # second click on the sorted column would reverse it)
    for _ in range(3):
        browser.click("button[data-sort=equity_usd]")
        with contextlib.suppress(AssertionError):
            browser.wait("location.hash.includes('sort=equity_usd')", timeout=3.0, what="route")
            break
    by_equity = server.get("/v1/accounts?sort=equity_usd&descending=true", server.keys.auditor)
    top = by_equity["accounts"][0]["account_id"]
    browser.wait(
        f"document.querySelector('#accounts-table tbody tr')?.dataset.account === '{top}'",
        timeout=15.0,
        what="sorted by equity",
    )
    assert browser.js("document.querySelector('th[aria-sort]').getAttribute('aria-sort')") == (
        "descending"
    )
    assert "sort=equity_usd" in browser.js("location.hash")

    browser.fill("#accounts-table ~ * input, form[role=search] input[type=search]", "eth")
    expected = {
        a["account_id"] for a in server.get("/v1/accounts?q=eth", server.keys.auditor)["accounts"]
    }
    browser.wait(
        "[...document.querySelectorAll('#accounts-table tbody tr[data-account]')]"
        f".map(r => r.dataset.account).sort().join() === {json.dumps(','.join(sorted(expected)))}",
        what="filtered by id",
    )
    browser.screenshot("03-accounts")

    browser.click("#accounts-table tr[data-account='eth-levered'] a")
    browser.wait("location.hash === '#/account/eth-levered'", what="the account page")
    browser.wait("document.querySelector('#account-kpis .kpi')")
    detail = server.get("/v1/accounts/eth-levered", server.keys.auditor)
    equity = browser.js(
        "Number(document.querySelector('#account-kpis [data-k=equity_usd] dd').dataset.v)"
    )
    assert equity == pytest.approx(detail["equity_usd"], rel=1e-9)
    shown = browser.text("#account-kpis [data-k=equity_usd] dd").replace("\n", " ")
    assert shown.startswith(usd(detail["equity_usd"]))
    browser.wait("document.querySelectorAll('#heatmap-table tbody td').length === 169")
    browser.wait("document.querySelector('#whatif-form')")
    for asset in detail["margin"]["liquidation_prices"]:
        assert browser.count(f"#liquidation-table tr[data-asset='{asset}']") == 1
    for row in detail["collateral"]:
        cell = f"#collateral-table tr[data-asset='{row['asset']}'] td:nth-of-type(5)"
        assert browser.text(cell) == usd(row["init_weighted_usd"])
    assert browser.count("#positions-table tr[data-market='ETH-PERP']") == 1
    # the auditor changes nothing: no real movement buttons
    assert browser.count("#do-trade, #do-withdraw") == 0
    browser.screenshot("04-account-auditor")


def test_what_if_shows_the_apis_answer(browser: Browser, server: Server) -> None:
    login(browser, server, server.keys.admin, "#/account/eth-levered")
    browser.wait("document.querySelector('#wi-market option[value=\"ETH-PERP\"]')")
    browser.choose("#wi-market", "ETH-PERP")
    browser.fill("#wi-qty", "40")
    browser.choose("#wi-asset", "USDC")
    browser.fill("#wi-wqty", "1000")
    browser.click("#wi-simulate")
    browser.wait("document.querySelector('#whatif-table')", what="what-if result")
    answer = server.http.post(
        "/v1/accounts/eth-levered/what-if",
        headers={"X-API-Key": server.keys.admin},
        json={"trades": [{"market": "ETH-PERP", "qty": 40}], "withdrawals": {"USDC": 1000}},
    ).json()
    rows = browser.js(
        "Object.fromEntries([...document.querySelectorAll('#whatif-table tbody tr')]"
        ".map(r => [r.cells[0].innerText, [...r.cells].slice(1).map(c => Number(c.dataset.v))]))"
    )
    # the library's what-if values at the instant of the call (time moves option values a hair)
    before, after = answer["before"], answer["after"]
    assert rows["Maint health"][0] == pytest.approx(before["maint"]["health_usd"], rel=1e-4)
    assert rows["Maint health"][1] == pytest.approx(after["maint"]["health_usd"], rel=1e-4)
    assert rows["Init health"][1] == pytest.approx(after["init"]["health_usd"], rel=1e-4)
    assert rows["Equity"][1] == pytest.approx(after["equity_usd"], rel=1e-4)
    verdict = browser.text("#whatif-verdict")
    assert ("Allowed" in verdict) == answer["allowed"]
    browser.screenshot("05-what-if")


def test_owner_trades_for_real_and_sees_a_refusals_reason(browser: Browser, server: Server) -> None:
    login(browser, server, server.keys.alice, "#/account/eth-levered")
    browser.wait("document.querySelector('#do-withdraw')", what="owner's buttons")
    before = server.get("/v1/accounts/eth-levered/events", server.keys.alice)["events"]
    browser.choose("#wi-asset", "USDC")
    browser.fill("#wi-wqty", "10000000")
    browser.click("#do-withdraw")
    browser.wait("document.querySelector('#move-result.alert')", what="refusal")
    assert "would leave init health" in browser.text("#move-result")
    assert browser.count("#refusal-table") == 1
    browser.screenshot("06-owner-refused")

    browser.choose("#wi-market", "ETH-PERP")
    browser.fill("#wi-qty", "-1")
    for n in (1, 2):  # two clicks: two trades, each with its own fresh idempotency key
        browser.click("#do-trade")
        browser.wait(
            "document.querySelector('#move-result')?.innerText.includes('Done')",
            what=f"trade {n}",
        )
        browser.js("document.querySelector('#move-result').remove()")
    after = server.get("/v1/accounts/eth-levered/events", server.keys.alice)["events"]
    trades = [e for e in after if e["kind"] == "trade" and e not in before]
    assert len(trades) == 2
    assert len({e["key"] for e in trades}) == 2
    browser.wait(
        "document.querySelectorAll('#history-table tr[data-kind=trade]').length === 2",
        what="the journal on the page",
    )


def test_an_owner_cannot_open_another_owners_account(browser: Browser, server: Server) -> None:
    login(browser, server, server.keys.alice, "#/accounts")
    browser.wait("document.querySelectorAll('#accounts-table tbody tr[data-account]').length")
    mine = browser.js(
        "[...document.querySelectorAll('#accounts-table tbody tr[data-account]')]"
        ".map(r => r.dataset.account).sort()"
    )
    assert mine == ["eth-levered", "sol-degen"]
    assert browser.js("document.querySelector('a[data-route=risk]').closest('li').hidden")
    texts = []
    for account in ("basis-trader", "no-such-account"):
        browser.route(f"#/account/{account}")
        browser.wait(
            "document.querySelector('#account-body .alert')", what=f"refusal for {account}"
        )
        texts.append(browser.text("#account-body .alert").replace(account, "ID"))
        assert browser.count("#account-kpis .kpi") == 0
    assert "no account with this id" in texts[0]
    assert texts[0] == texts[1]
    browser.screenshot("07-owner-other-account")


#: a pushed price shows within 1 s on an idle machine (measured: 0.1-0.3 s); CI and shared
#: machines get slack, this is a check that the page moves without a reload, not a benchmark
LIVE_S = 1.0 if os.environ.get("CROSSMARGIN_STRICT_LIVE") else 5.0


def test_a_price_push_updates_the_page_without_reload(browser: Browser, server: Server) -> None:
    login(browser, server, server.keys.alice, "#/account/eth-levered")
    browser.wait("document.querySelector('#account-kpis [data-k=maint_health_usd]')")
    wait_live(browser)
    browser.js("window.__sameDocument = 1")
    old = browser.js(
        "Number(document.querySelector('#account-kpis [data-k=maint_health_usd] dd').dataset.v)"
    )
    started = time.monotonic()
    server.push({"ETH": 2500.0})
    new = server.get("/v1/accounts/eth-levered", server.keys.alice)
    assert new["maint_health_usd"] < old
    browser.wait(
        "Number(document.querySelector('#account-kpis [data-k=maint_health_usd] dd')"
        f".dataset.v) === {new['maint_health_usd']!r}",
        timeout=LIVE_S,
        what="maint health pushed within a second",
    )
    latency = time.monotonic() - started
    assert latency < LIVE_S
    assert browser.js("window.__sameDocument") == 1  # no reload
    assert new["status"].replace("_", " ") in browser.text("#account-status")
    browser.screenshot("08-account-after-push")

    login(browser, server, server.keys.auditor)
    browser.wait("document.querySelectorAll('#oracle-table tbody tr').length === 7")
    wait_live(browser)
    browser.js("window.__sameDocument = 1")
    server.push({"ETH": 2350.0, "SOL": 120.0})
    counts = server.get("/v1/system", server.keys.auditor)["status_counts"]
    expected = json.dumps(
        {k: str(v) for k, v in counts.items()}, sort_keys=True, separators=(",", ":")
    )
    browser.wait(
        "JSON.stringify(Object.fromEntries([...document.querySelectorAll("
        "'#status-counts a')].map(a => [a.dataset.status, a.dataset.n])), "
        f"Object.keys({expected}).sort()) === {json.dumps(expected)}",
        timeout=LIVE_S,
        what="status counts pushed",
    )
    assert browser.js("window.__sameDocument") == 1
    browser.screenshot("09-overview-after-crash")

    browser.route("#/accounts")  # the rows on screen are watched: they move without a reload
    browser.wait("document.querySelector(\"#accounts-table tr[data-account='sol-degen']\")")
    wait_live(browser)
    cell = "#accounts-table tr[data-account='sol-degen'] [data-k=maint_health_usd]"
    browser.wait(f"document.querySelector({json.dumps(cell)})?.dataset.v")
    server.push({"SOL": 110.0})
    moved = server.get("/v1/accounts/sol-degen", server.keys.auditor)["maint_health_usd"]
    browser.wait(
        f"Number(document.querySelector({json.dumps(cell)}).dataset.v) === {moved!r}",
        timeout=LIVE_S,
        what="the accounts table row pushed",
    )
    assert browser.js("window.__sameDocument") == 1


def test_risk_page_stress_and_cascade(browser: Browser, server: Server) -> None:
    login(browser, server, server.keys.admin, "#/risk")
    browser.wait("document.querySelectorAll('#stress-table tbody tr').length", what="stress")
    scenarios = server.get("/v1/risk/stress", server.keys.admin)["scenarios"]
    assert browser.count("#stress-table tbody tr") == len(scenarios)
    worst = max(scenarios, key=lambda s: (s["bad_debt_usd"], s["maint_deficit_usd"]))
    row = f"#stress-table tr[data-scenario='{worst['name']}']"
    assert browser.text(f"{row} td:nth-of-type(5)") == usd(worst["bad_debt_usd"])
    first_row = browser.js("document.querySelector('#stress-table tbody tr').dataset.scenario")
    assert first_row == worst["name"]
    browser.wait("document.querySelector('#cascade-run')")
    browser.click("#cascade-run")
    browser.wait(
        "document.querySelector('#cascade-state')?.dataset.state === 'done'",
        timeout=30,
        what="cascade done",
    )
    job_id = browser.text("#cascade-state").split(":")[0].removeprefix("Job ").strip()
    job = server.get(f"/v1/risk/cascade/{job_id}", server.keys.admin)
    assert browser.count("#cascade-rounds tbody tr") == len(job["rounds"])
    summary = job["summary"]
    assert browser.text("#cascade-summary .kpi:nth-child(5) dd") == usd(summary["bad_debt_usd"])
    assert browser.count("#cascade-result svg path[data-series=ETH]") == 1
    browser.screenshot("10-risk")


def test_parameters_admin_changes_auditor_reads(browser: Browser, server: Server) -> None:
    login(browser, server, server.keys.auditor, "#/admin")
    browser.wait("document.querySelectorAll('#params-table tbody tr').length === 7")
    assert browser.count("#params-form") == 0
    assert "may not change" in browser.text("#params-readonly")

    login(browser, server, server.keys.admin, "#/admin")
    browser.wait("document.querySelector('#params-form')", what="the admin's form")
    browser.choose("#param-asset", "AAVE")
    browser.fill("#param-maint_asset_weight", "1.5")
    browser.click("#param-apply")
    browser.wait("document.querySelector('#params-result .alert')", what="the server's refusal")
    refusal = browser.text("#params-result .alert")
    assert "maint_asset_weight" in refusal and "1.5" in refusal
    browser.screenshot("11-params-refused")
    browser.fill("#param-maint_asset_weight", "0.6")
    browser.fill("#param-imf_factor", "0.0007")
    browser.click("#param-apply")
    browser.wait("document.querySelector('#params-ok')", what="the change applied")
    assert server.get("/v1/assets", server.keys.admin)["assets"]["AAVE"]["imf_factor"] == 0.0007
    browser.wait(
        "document.querySelector(\"#params-table tr[data-asset='AAVE'] [data-k=imf_factor]\")"
        ".innerText === '0.0007'"
    )


def test_keyboard_labels_and_a_laptop_screen(browser: Browser, server: Server) -> None:
    login(browser, server, server.keys.admin, "#/accounts")
    browser.wait("document.querySelectorAll('#accounts-table tbody tr[data-account]').length")
    unlabelled = browser.js(
        "[...document.querySelectorAll('input, select')]"
        ".filter(e => !e.labels?.length && !e.getAttribute('aria-label')).map(e => e.outerHTML)"
    )
    assert unlabelled == []
    clickable_divs = browser.js(
        "[...document.querySelectorAll('[onclick], div[tabindex], span[tabindex]')].length"
    )
    assert clickable_divs == 0
    browser.call("Page.reload")  # a fresh load: focus starts at the top
    browser.wait("document.readyState === 'complete'")
    browser.wait("document.querySelectorAll('#accounts-table tbody tr[data-account]').length")
    seen = []
    for _ in range(6):
        browser.key("Tab", "Tab", 9)
        seen.append(browser.js("document.activeElement.textContent.trim()"))
    assert seen[0] == "Skip to content", seen
    assert "Accounts" in seen and "Risk" in seen
    outline = browser.js("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"
    for width, height, name in ((1366, 768, "12-laptop-accounts"), (1024, 768, "13-narrow")):
        browser.size(width, height)
        overflow = browser.js("document.documentElement.scrollWidth - window.innerWidth")
        wide = browser.js(
            "[...document.querySelectorAll('body *')].filter(e => !e.closest('.tablewrap') && "
            "e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.outerHTML"
            ".slice(0, 80))"
        )
        assert overflow <= 0, f"horizontal scroll at {width} px: {wide}"
        browser.screenshot(name, full=False)
    browser.size(WIDTH, HEIGHT)
