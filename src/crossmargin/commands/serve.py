"""Service commands (issue #11): ``crossmargin serve``, ``crossmargin db upgrade``,
``crossmargin keys create``."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from crossmargin.commands.common import console, examples, one_line_errors
from crossmargin.errors import InputError

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="Database URL: sqlite:///FILE (default crossmargin.db; --demo: a fresh temporary "
        "file) or postgresql+psycopg://USER@HOST/DB.",
    ),
]


def _url(db_url: str | None, demo: bool) -> str:
    from crossmargin.service import db

    if db_url:
        return db_url
    if demo:
        return db.default_url(Path(tempfile.mkdtemp(prefix="crossmargin-demo-")) / "demo.db")
    return db.default_url("crossmargin.db")


def _tape(core: Any, quiet: bool) -> None:
    """Print margin calls, liquidations and oracle state changes as they happen."""
    from crossmargin.service.core import Published

    def show(messages: list[Published]) -> None:
        for message in messages:
            data = message.payload
            if message.channel == "events" and data.get("kind") == "margin_call":
                console.print(
                    f"[yellow]margin call[/] {escape(str(message.account_id))}: maint health "
                    f"{data['maint_health_usd']:,.0f} USD, ratio {data['health_ratio'] or 0:.3f}",
                    highlight=False,
                )
            elif message.channel == "events" and data.get("kind") == "liquidation":
                console.print(
                    f"[bold red]liquidated[/] {escape(str(message.account_id))}: "
                    f"{data['status']}, {len(data['steps'])} steps, maint health "
                    f"{data['maint_health_before_usd']:,.0f} -> "
                    f"{data['maint_health_after_usd']:,.0f} USD",
                    highlight=False,
                )
            elif message.channel == "events" and data.get("kind") == "liquidation_flows":
                console.print(
                    f"  insurance fund {data['insurance_fund_usd']:,.0f} USD, liquidators "
                    f"{data['liquidator_usd']:,.0f}, socialized {data['socialized_usd']:,.0f}",
                    highlight=False,
                )
            elif message.channel == "oracle" and not quiet:
                console.print(
                    f"[cyan]oracle[/] {escape(str(data['asset']))}: {data['old_state']} -> "
                    f"{data['new_state']} ({escape(str(data['reason']))})",
                    highlight=False,
                )

    core.subscribe(show)


def _status_line(core: Any, stop: threading.Event, every_s: float) -> None:
    while not stop.wait(every_s):
        with core.lock:
            summary = core.system_summary(brief=True)
        counts = summary["status_counts"]
        prices = summary["prices_usd"]
        shown = ", ".join(f"{s} {prices[s]:,.2f}" for s in ("BTC", "ETH", "SOL") if s in prices)
        console.print(
            f"[dim]{time.strftime('%H:%M:%S')}[/] {shown} | healthy {counts['healthy']}, "
            f"margin call {counts['margin_call']}, liquidatable {counts['liquidatable']}, "
            f"bankrupt {counts['bankrupt']} | fund {summary['insurance_fund_usd']:,.0f} USD | "
            f"re-margin {summary['last_remargin_ms']:.1f} ms",
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``db`` and ``keys`` to ``app``."""

    @app.command(
        epilog=examples(
            "crossmargin serve --demo --duration 90",
            "crossmargin serve book.yaml --db sqlite:///cm.db",
        )
    )
    @one_line_errors
    def serve(
        book: Annotated[
            Path | None,
            typer.Argument(
                metavar="FILE",
                help="Portfolio file to start from (first start only).",
                show_default=False,
            ),
        ] = None,
        db_url: DbOpt = None,
        feed: Annotated[
            str | None,
            typer.Option(
                "--feed",
                metavar="SPEC",
                help="Price feed: demo[:...], csv:PATH[,...], ccxt:..., none.",
            ),
        ] = None,
        host: Annotated[
            str, typer.Option("--host", metavar="HOST", help="Address to listen on.")
        ] = "127.0.0.1",
        port: Annotated[
            int, typer.Option("--port", metavar="PORT", help="Port (0: any free port).")
        ] = 8000,
        demo: Annotated[
            bool,
            typer.Option("--demo", help="The demo book, a seeded feed with a crash, demo keys."),
        ] = False,
        policy: Annotated[
            str,
            typer.Option(
                "--policy",
                metavar="POLICY",
                help="Liquidation policy: generic, mango, drift, aave, dydx.",
            ),
        ] = "generic",
        duration: Annotated[
            float | None,
            typer.Option("--duration", metavar="SECONDS", help="Stop after this many seconds."),
        ] = None,
        quiet: Annotated[bool, typer.Option("--quiet", help="No oracle or status lines.")] = False,
        dynamic_haircuts: Annotated[
            bool,
            typer.Option(
                "--dynamic-haircuts",
                help="Recompute weights from the ticks' volatility each minute.",
            ),
        ] = False,
    ) -> None:
        """Run the live margin engine (REST + WebSocket API and a dashboard).

        Prices come from a feed or are pushed by the oracle role; every exposed account is
        re-margined per tick; margin calls and liquidations are journaled in the database.
        API docs at http://HOST:PORT/docs."""
        from crossmargin.book.io import load_book, load_demo_book
        from crossmargin.service import db
        from crossmargin.service.config import ServiceConfig
        from crossmargin.service.core import MarginCore
        from crossmargin.service.feeds import parse_feed_spec

        if policy not in ("generic", "mango", "drift", "aave", "dydx"):
            raise InputError("--policy", policy, "choose generic, mango, drift, aave or dydx")
        if not 0 <= port <= 65535:
            raise InputError("--port", port, "must be in [0, 65535]")
        if duration is not None and not 0 < duration <= 1e7:
            raise InputError("--duration", duration, "must be in (0, 1e7] seconds")
        if demo and book is not None:
            raise InputError("book", str(book), "give a book or --demo, not both")
        start_book = load_demo_book() if demo else (load_book(book) if book else None)
        if start_book is not None:  # before the database is touched
            from crossmargin.locations.view import refuse_located

            # the live engine's state has no located rows yet: never margin without them
            refuse_located(
                start_book,
                "the live service does not credit collateral at other locations yet; "
                "use 'crossmargin margin' / 'crossmargin transfer' for this book",
            )
        url = _url(db_url, demo)
        engine = db.connect(url)
        db.upgrade(engine)
        config = ServiceConfig.model_validate(
            {"policy": policy, "dynamic_haircuts": dynamic_haircuts}
        )
        if start_book is not None:
            MarginCore.initialize(engine, start_book, config)
        core = MarginCore(engine, config)
        feed_spec = feed or ("demo" if demo else "none")
        prices = {s: float(core.price_usd[a]) for a, s in enumerate(core.work.asset_symbols)}
        chosen_feed = parse_feed_spec(feed_spec, prices)
        batches = None if chosen_feed.kind == "none" else chosen_feed.realtime()
        if demo and db_url is None:  # fixed demo keys only in the throw-away demo database
            _print_demo_keys(engine, core)
        _tape(core, quiet)
        console.print(
            f"[bold]crossmargin serve[/]: {len(core.work.accounts)} accounts, "
            f"{core.work.n_assets} assets, {core.work.n_markets} markets, db {escape(url)}, "
            f"feed {escape(feed_spec)}, policy {policy}",
            highlight=False,
        )
        _run(core, batches, host, port, duration, quiet)

    db_app = typer.Typer(help="The service database.", no_args_is_help=True)
    keys_app = typer.Typer(help="API keys of the service.", no_args_is_help=True)
    app.add_typer(db_app, name="db")
    app.add_typer(keys_app, name="keys")

    @db_app.command("upgrade", epilog=examples("crossmargin db upgrade --db sqlite:///cm.db"))
    @one_line_errors
    def db_upgrade(db_url: DbOpt = None) -> None:
        """Create or migrate the schema (Alembic) to the newest revision."""
        from crossmargin.service import db

        url = _url(db_url, False)
        engine = db.connect(url)
        db.upgrade(engine)
        console.print(f"database {escape(url)} at revision {db.current_revision(engine)}")

    @keys_app.command(
        "create", epilog=examples("crossmargin keys create desk-1 --role owner --owner eth-levered")
    )
    @one_line_errors
    def keys_create(
        name: Annotated[
            str, typer.Argument(metavar="NAME", help="A name for the key.", show_default=False)
        ],
        role: Annotated[
            str, typer.Option("--role", metavar="ROLE", help="owner, oracle, admin or auditor.")
        ],
        owner: Annotated[
            str | None,
            typer.Option("--owner", metavar="OWNER", help="The owner an owner key acts for."),
        ] = None,
        db_url: DbOpt = None,
    ) -> None:
        """Create an API key; it is printed once (only its hash is stored)."""
        from crossmargin.service import db
        from crossmargin.service.auth import create_key

        engine = db.connect(_url(db_url, False))
        db.upgrade(engine)
        console.print(create_key(engine, name, role, owner), highlight=False)


def _print_demo_keys(engine: Any, core: Any) -> None:
    from rich.table import Table

    from crossmargin.service.auth import create_key

    table = Table(title="Demo API keys (send as X-API-Key; fixed values, demo database only)")
    table.add_column("name")
    table.add_column("role")
    table.add_column("key")
    for name, role in (("admin", "admin"), ("auditor", "auditor"), ("oracle", "oracle")):
        table.add_row(name, role, create_key(engine, name, role, key=f"cm_demo_{name}"))
    for owner in sorted(set(core.work.owners)):
        key = f"cm_demo_{owner}"
        table.add_row(
            escape(owner), "owner", create_key(engine, f"owner-{owner}", "owner", owner, key)
        )
    console.print(table)


def _run(
    core: Any, batches: Any, host: str, port: int, duration: float | None, quiet: bool
) -> None:
    import uvicorn

    from crossmargin.service.api import create_app

    app = create_app(core, feed=batches)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    stop = threading.Event()
    if not quiet:
        threading.Thread(target=_status_line, args=(core, stop, 5.0), daemon=True).start()
    if duration is not None:
        timer = threading.Timer(duration, lambda: setattr(server, "should_exit", True))
        timer.daemon = True
        timer.start()
    try:
        server.run()
    finally:
        stop.set()
    summary = core.system_summary(brief=True)
    console.print(
        f"stopped: {summary['status_counts']}, insurance fund "
        f"{summary['insurance_fund_usd']:,.0f} USD, bad debt {summary['bad_debt_usd']:,.0f} USD",
        highlight=False,
    )
