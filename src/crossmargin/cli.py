"""The ``crossmargin`` command line: a thin layer over the library.

Shared plumbing (console, option types, one-line errors with exit status 2) lives in
:mod:`crossmargin.commands.common`; the risk-analytics and simulation commands are registered
from :mod:`crossmargin.commands.risk` and :mod:`crossmargin.commands.simulate`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import Progress

from crossmargin.book.io import (
    demo_book_text,
    input_error_from_validation,
    load_book,
    load_demo_book,
)
from crossmargin.book.schema import Book
from crossmargin.commands import max as max_commands
from crossmargin.commands import predict as predict_commands
from crossmargin.commands import risk as risk_commands
from crossmargin.commands import serve as serve_commands
from crossmargin.commands import simulate as simulate_commands
from crossmargin.commands.common import (
    FileArg,
    JsonOpt,
    ModeOpt,
    PriceOpt,
    ShockOpt,
    console,
    emit_json,
    one_line_errors,
    parse_mode,
    parse_pairs,
)
from crossmargin.errors import InputError
from crossmargin.haircuts.dynamic import (
    DynamicHaircutConfig,
    VolatilityMethod,
    recommend_from_history,
)
from crossmargin.margin.engine import MarginEngine, Trade
from crossmargin.market.loaders import load_history
from crossmargin.report import (
    compare_table,
    explain_table,
    greeks_table,
    haircut_table,
    liquidation_table,
    margin_table,
    portfolio_summary_table,
    portfolio_table,
    print_what_if,
    stress_table,
)
from crossmargin.risk.stress import load_scenarios, run_stress

app = typer.Typer(
    name="crossmargin",
    help="Cross-collateralized margin for digital-asset derivatives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _margin_report(
    book: Book,
    account: str | None,
    mode: str | None,
    prices: list[str] | None,
    as_json: bool,
    explain: str | None,
) -> None:
    engine = MarginEngine(book)
    accounts = [book.account(account)] if account else None
    parsed_mode, parsed_prices = parse_mode(mode), parse_pairs("--price", prices)
    reports = engine.margin(accounts, parsed_mode, parsed_prices)
    if explain and parsed_mode == "portfolio":
        raise InputError(
            "--explain",
            explain,
            "row contributions are the kernel's; portfolio margin is "
            "explained by its worst scenario and components (shown without --explain)",
        )
    kernel_mode = None if parsed_mode == "portfolio" else parsed_mode
    rows = engine.explain(accounts, explain, kernel_mode, parsed_prices) if explain else []
    if as_json:
        data: dict[str, Any] = {"accounts": [r.to_dict() for r in reports]}
        if explain:
            data["contributions"] = {"level": explain, "rows": [c.to_dict() for c in rows]}
        emit_json(data)
        return
    console.print(margin_table(reports))
    console.print(liquidation_table(reports))
    breakdown = portfolio_table(reports)
    if breakdown is not None:
        console.print(breakdown)
    if explain:
        console.print(explain_table(rows, explain))


@app.command()
@one_line_errors
def margin(
    file: FileArg,
    as_json: JsonOpt = False,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    mode: ModeOpt = None,
    price: PriceOpt = None,
    explain: Annotated[
        str | None,
        typer.Option("--explain", help="Also show each row's contribution at init or maint."),
    ] = None,
) -> None:
    """Per account: equity, weighted assets and liabilities, health, liquidation prices."""
    _margin_report(load_book(file), account, mode, price, as_json, explain)


@app.command()
@one_line_errors
def compare(file: FileArg, as_json: JsonOpt = False) -> None:
    """Collateral each account needs under isolated vs cross margin, and the capital cross frees."""
    rows = MarginEngine(load_book(file)).compare()
    if as_json:
        emit_json({"accounts": [r.to_dict() for r in rows]})
    else:
        console.print(compare_table(rows))


@app.command("what-if")
@one_line_errors
def what_if(
    file: FileArg,
    account: Annotated[str, typer.Option("--account", help="Account id.")],
    trade: Annotated[
        list[str] | None,
        typer.Option("--trade", help="MARKET=QTY or MARKET=QTY@PRICE (signed qty)."),
    ] = None,
    withdraw: Annotated[
        list[str] | None,
        typer.Option("--withdraw", help="ASSET=QTY (negative: deposit)."),
    ] = None,
    price: PriceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An account before and after a hypothetical trade, withdrawal or price move."""
    trades = []
    for spec in trade or []:
        market, sep, rest = spec.partition("=")
        qty_text, _, price_text = rest.partition("@")
        try:
            qty = float(qty_text)
            fill = float(price_text) if price_text else None
        except ValueError:
            raise InputError("--trade", spec, "expected MARKET=QTY or MARKET=QTY@PRICE") from None
        if not sep:
            raise InputError("--trade", spec, "expected MARKET=QTY or MARKET=QTY@PRICE")
        trades.append(Trade(market, qty, fill))
    engine = MarginEngine(load_book(file))
    result = engine.what_if(
        account, trades, parse_pairs("--withdraw", withdraw), parse_pairs("--price", price)
    )
    if as_json:
        emit_json(result.to_dict())
    else:
        print_what_if(console, result)


@app.command()
@one_line_errors
def haircuts(
    data: Annotated[Path, typer.Argument(help="Price history CSV (shared layouts or OHLCV).")],
    assets: Annotated[
        str | None, typer.Option("--assets", help="Comma-separated assets to keep.")
    ] = None,
    method: Annotated[
        str, typer.Option("--vol", help="ewma, garch, parkinson or garman-klass.")
    ] = "ewma",
    horizon_days: Annotated[
        float, typer.Option("--horizon-days", help="Maint liquidation horizon.")
    ] = 1.0,
    confidence: Annotated[float, typer.Option("--confidence", help="Maint confidence.")] = 0.99,
    init_horizon_days: Annotated[
        float, typer.Option("--init-horizon-days", help="Init liquidation horizon.")
    ] = 3.0,
    init_confidence: Annotated[
        float, typer.Option("--init-confidence", help="Init confidence.")
    ] = 0.995,
    size_usd: Annotated[
        float, typer.Option("--size-usd", help="Position size charged for liquidity.")
    ] = 1_000_000.0,
    as_json: JsonOpt = False,
) -> None:
    """Recommended init/maint asset and liability weights from volatility and liquidity."""
    if method not in ("ewma", "garch", "parkinson", "garman-klass"):
        raise InputError("--vol", method, "must be ewma, garch, parkinson or garman-klass")
    history = load_history(data)
    if assets:
        wanted = [a.strip() for a in assets.split(",") if a.strip()]
        unknown = [a for a in wanted if a not in history]
        if unknown:
            raise InputError("--assets", unknown[0], f"not in the file (has {sorted(history)})")
        history = {a: history[a] for a in wanted}
    try:
        config = DynamicHaircutConfig(
            maint_horizon_days=horizon_days,
            maint_confidence=confidence,
            init_horizon_days=init_horizon_days,
            init_confidence=init_confidence,
        )
    except ValidationError as exc:
        raise input_error_from_validation(exc) from None
    recommendations = []
    with Progress(transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task("estimating", total=len(history))
        for asset, frame in history.items():
            recommendations.append(
                recommend_from_history(
                    asset,
                    frame,
                    config,
                    method=cast(VolatilityMethod, method),
                    position_usd=size_usd,
                )
            )
            progress.advance(task)
    if as_json:
        emit_json({"method": method, "assets": [r.to_dict() for r in recommendations]})
    else:
        console.print(haircut_table(recommendations, method))


@app.command()
@one_line_errors
def stress(
    file: FileArg,
    scenario: Annotated[
        list[str] | None, typer.Option("--scenario", help="Only this scenario (repeatable).")
    ] = None,
    scenarios_file: Annotated[
        Path | None, typer.Option("--scenarios", help="YAML file adding or overriding scenarios.")
    ] = None,
    shock: ShockOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Each account's health under named historical shocks (collateral and positions together)."""
    book = load_book(file)
    library = load_scenarios(scenarios_file)
    results = run_stress(book, library, scenario, parse_pairs("--shock", shock))
    if as_json:
        emit_json({"scenarios": [r.to_dict() for r in results]})
    else:
        baseline = MarginEngine(book).margin(with_liquidation_prices=False)
        console.print(stress_table(results, library, baseline))


@app.command()
@one_line_errors
def liquidate(
    file: FileArg,
    shock: ShockOpt = None,
    policy: Annotated[
        str, typer.Option("--policy", help="generic, mango, drift, aave or dydx.")
    ] = "generic",
    insurance_fund: Annotated[
        float, typer.Option("--insurance-fund", help="Insurance fund at the start, USD.")
    ] = 0.0,
    bankruptcy: Annotated[
        str | None, typer.Option("--bankruptcy", help="socialize or adl (policy default).")
    ] = None,
    journal: Annotated[
        str | None,
        typer.Option(
            "--journal",
            help="Record the run in FILE.jsonl or a SQLAlchemy URL (sqlite:///...); a run "
            "already journaled there (same book content and parameters) is not recorded again.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Liquidate every liquidatable account: the plan, the fills and the result."""
    from crossmargin.liquidation import (
        LiquidationConfig,
        LiquidationEngine,
        liquidation_key,
        open_journal,
    )
    from crossmargin.liquidation.engine import ADL_WITHOUT_DEPTH
    from crossmargin.liquidation.execution import execution_from_book
    from crossmargin.report import liquidation_tables

    book = load_book(file)
    if bankruptcy == "adl" and not book.depth:  # never a silent fall-back to socializing
        raise InputError("--bankruptcy", bankruptcy, ADL_WITHOUT_DEPTH.split(": ", 1)[1])
    overrides: dict[str, Any] = {"insurance_fund_usd": insurance_fund}
    if bankruptcy is not None:
        overrides["bankruptcy"] = bankruptcy
    try:
        config = LiquidationConfig.preset(policy, **overrides)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InputError(str(error["loc"][0]), error.get("input"), error["msg"]) from None
    shocks = parse_pairs("--shock", shock)
    sink = None if journal is None else open_journal(journal)  # checked before the work
    result = LiquidationEngine(book, config, execution_from_book(book), shocks=shocks).liquidate()
    recorded, note, journaled = None, "", None
    if sink is not None:
        key = liquidation_key(book, config, shocks=shocks)
        try:
            recorded = sink.record(result.events, name=Path(file).stem, key=key)
        finally:
            sink.close()
        run = recorded.run
        note = (
            f"journal: run {run.run_id} recorded ({run.count} events) in {sink.destination}"
            if recorded.appended
            else f"journal: already journaled as run {run.run_id} ({run.created}, "
            f"{run.count} events) in {sink.destination}; nothing appended"
        )
        journaled = {**recorded.to_dict(), "destination": sink.destination}
    if as_json:
        data = result.to_dict()
        if journaled is not None:
            data["journal"] = journaled
        emit_json(data)
        if recorded is not None and not recorded.appended:
            Console(stderr=True).print(note, markup=False, highlight=False, soft_wrap=True)
    else:
        for table in liquidation_tables(result):
            console.print(table)
        for text in result.notes:
            console.print(f"note: {text}", markup=False, highlight=False, soft_wrap=True)
        if note:
            console.print(note, markup=False, highlight=False, soft_wrap=True)


@app.command()
@one_line_errors
def greeks(
    file: FileArg,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Portfolio Greeks per underlying and expiry: delta (coin and USD), gamma, vega, theta."""
    from crossmargin.portfolio import portfolio_from_book, portfolio_greeks

    book = load_book(file)
    chosen = [book.account(account)] if account else [a for a in book.accounts if a.positions]
    tables = MarginEngine(book).tables
    results = {
        a.id: portfolio_greeks(portfolio_from_book(book, a.id, tables=tables).to_portfolio())
        for a in chosen
    }
    if as_json:
        emit_json({"accounts": results})
        return
    for account_id, per_underlying in results.items():
        console.print(greeks_table(account_id, per_underlying))


@app.command("import-derive")
@one_line_errors
def import_derive(
    case: Annotated[Path, typer.Argument(help="A Derive PM2 case (JSON).", show_default=False)],
    out: Annotated[
        Path | None, typer.Option("--out", help="Write the YAML here instead of stdout.")
    ] = None,
) -> None:
    """Convert a Derive PM2 case into a portfolio-margin file (portfolio + profile) as YAML.

    The file runs with ``crossmargin portfolio-margin``; it also carries our result, the
    case's reference MM/IM and every figure that differs (``mismatches``, empty when all match).
    """
    import yaml

    from crossmargin.portfolio import import_derive as convert

    text = yaml.safe_dump(convert(case), sort_keys=False)
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        console.print(f"written to {out}")


@app.command("portfolio-margin")
@one_line_errors
def portfolio_margin_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="YAML/JSON with 'portfolio' and 'profile' (a name or a full profile).",
            show_default=False,
        ),
    ],
    as_json: JsonOpt = False,
) -> None:
    """Scenario-grid margin of one portfolio-margin file (e.g. from ``import-derive``)."""
    from crossmargin.book.io import read_structured
    from crossmargin.portfolio import PortfolioSpec, Profile, get_profile, portfolio_margin

    data = read_structured(file)
    if not isinstance(data, dict) or "portfolio" not in data:
        raise InputError("portfolio", None, f"{file}: expected a mapping with 'portfolio'")
    raw_profile = data.get("profile", "generic")
    profile = (
        get_profile(raw_profile) if isinstance(raw_profile, str) else Profile.from_data(raw_profile)
    )
    result = portfolio_margin(PortfolioSpec.from_data(data["portfolio"]).to_portfolio(), profile)
    if as_json:
        emit_json(result.to_dict(scenarios=True))
        return
    console.print(portfolio_summary_table(result))


@app.command()
@one_line_errors
def download(
    exchange: Annotated[str, typer.Argument(help="ccxt exchange id, e.g. binance.")],
    symbol: Annotated[str, typer.Argument(help="Market symbol, e.g. BTC/USDT.")],
    out: Annotated[Path, typer.Option("--out", help="CSV file to write.")],
    timeframe: Annotated[str, typer.Option("--timeframe", help="1m, 1h, 1d, ...")] = "1d",
    since: Annotated[str | None, typer.Option("--since", help="First date (UTC).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="Last date (UTC).")] = None,
) -> None:
    """Download OHLCV candles through ccxt (needs network and crossmargin[download])."""
    from crossmargin.market.download import ccxt_exchange, download_ohlcv, save_ohlcv

    frame = download_ohlcv(ccxt_exchange(exchange), symbol, timeframe, since, until)
    path = save_ohlcv(frame, out)
    console.print(f"{len(frame)} candles of {symbol} {timeframe} written to {path}")


@app.command()
@one_line_errors
def schema() -> None:
    """Print the JSON Schema of the portfolio file."""
    emit_json(Book.model_json_schema())


@app.command()
@one_line_errors
def demo(
    as_json: JsonOpt = False,
    show_book: Annotated[
        bool, typer.Option("--show-book", help="Print the bundled book (YAML) and exit.")
    ] = False,
) -> None:
    """Run margin and compare on the bundled example book (stables, BTC, ETH, SOL, AAVE, wstETH,
    perps, a future and ETH options on a portfolio-margin account)."""
    if show_book:
        sys.stdout.write(demo_book_text())
        return
    book = load_demo_book()
    engine = MarginEngine(book)
    reports = engine.margin()
    rows = engine.compare()
    if as_json:
        emit_json(
            {
                "accounts": [r.to_dict() for r in reports],
                "compare": [r.to_dict() for r in rows],
            }
        )
        return
    console.print(
        f"[bold]crossmargin demo[/]: {len(book.assets)} assets, {len(book.markets)} markets, "
        f"{len(book.accounts)} accounts (see the book with `crossmargin demo --show-book`)"
    )
    console.print(margin_table(reports, title="Margin (cross, isolated and portfolio accounts)"))
    console.print(liquidation_table(reports))
    breakdown = portfolio_table(reports)
    if breakdown is not None:
        console.print(breakdown)
    console.print(compare_table(rows))
    liquidatable = [r.account_id for r in reports if r.liquidatable]
    if liquidatable:
        console.print(f"[bold red]Liquidatable now:[/] {', '.join(liquidatable)}")


risk_commands.register(app)
simulate_commands.register(app)
serve_commands.register(app)
predict_commands.register(app)
max_commands.register(app)


def main() -> None:
    """Entry point of the ``crossmargin`` script."""
    app()
