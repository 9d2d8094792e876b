"""Margin commands: ``margin``, ``compare``, ``what-if`` and ``greeks``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from crossmargin.commands.common import (
    EXIT_REFUSED,
    FileArg,
    JsonOpt,
    ModeOpt,
    PriceOpt,
    console,
    emit_json,
    examples,
    one_line_errors,
    parse_mode,
    parse_pairs,
)
from crossmargin.errors import InputError

if TYPE_CHECKING:
    from crossmargin.book.schema import Book


def _margin_report(
    book: Book,
    account: str | None,
    mode: str | None,
    prices: list[str] | None,
    as_json: bool,
    explain: str | None,
) -> None:
    from crossmargin.locations.liqprice import joint_liquidation_prices
    from crossmargin.locations.view import located_view
    from crossmargin.margin.engine import MarginEngine
    from crossmargin.report import explain_table, liquidation_table, margin_table, portfolio_table

    view = located_view(book)  # #17: remote lots and transfers as located-asset rows
    engine, book = MarginEngine(view.book), view.book
    accounts = [book.account(account)] if account else None
    parsed_mode, parsed_prices = parse_mode(mode), view.prices(parse_pairs("--price", prices))
    reports = joint_liquidation_prices(
        view, engine, engine.margin(accounts, parsed_mode, parsed_prices), parsed_prices
    )
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
    liquidation = liquidation_table(reports)
    if liquidation.row_count:
        console.print(liquidation)
    else:  # portfolio margin is a scenario grid: no single-price liquidation level
        console.print(
            "Liquidation prices: none (portfolio-margin accounts are liquidated on the "
            "scenario grid, not at one asset's price)",
            style="dim",
        )
    breakdown = portfolio_table(reports)
    if breakdown is not None:
        console.print(breakdown)
    if explain:
        console.print(explain_table(rows, explain))


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command(
        epilog=examples(
            "crossmargin margin book.yaml",
            "crossmargin margin book.yaml --account eth-levered --price ETH=2500",
            "crossmargin margin book.yaml --mode portfolio --json",
            "crossmargin margin book.yaml --account eth-levered --explain maint",
        )
    )
    @one_line_errors
    def margin(
        file: FileArg,
        as_json: JsonOpt = False,
        account: Annotated[
            str | None, typer.Option("--account", metavar="ID", help="Only this account.")
        ] = None,
        mode: ModeOpt = None,
        price: PriceOpt = None,
        explain: Annotated[
            str | None,
            typer.Option(
                "--explain",
                metavar="LEVEL",
                help="Also show each row's contribution at init or maint.",
            ),
        ] = None,
    ) -> None:
        """Per account: equity, weighted assets and liabilities, health, liquidation prices."""
        from crossmargin.book.io import load_book

        _margin_report(load_book(file), account, mode, price, as_json, explain)

    @app.command(
        epilog=examples("crossmargin compare book.yaml", "crossmargin compare book.yaml --json")
    )
    @one_line_errors
    def compare(file: FileArg, as_json: JsonOpt = False) -> None:
        """Capital to add under isolated vs cross vs portfolio margin, and what cross frees."""
        from crossmargin.book.io import load_book
        from crossmargin.locations.view import located_view
        from crossmargin.margin.engine import MarginEngine
        from crossmargin.report import compare_table

        rows = MarginEngine(located_view(load_book(file)).book).compare()  # remote lots: #17
        if as_json:
            emit_json({"accounts": [r.to_dict() for r in rows]})
        else:
            console.print(compare_table(rows))

    @app.command(
        "what-if",
        epilog=examples(
            "crossmargin what-if book.yaml --account eth-levered --trade ETH-PERP=10"
            " --withdraw USDC=5000",
            "crossmargin what-if book.yaml --account sol-degen --trade SOL-PERP=-50@142   #"
            " exit 3 if refused",
        ),
    )
    @one_line_errors
    def what_if(
        file: FileArg,
        account: Annotated[str, typer.Option("--account", metavar="ID", help="Account id.")],
        trade: Annotated[
            list[str] | None,
            typer.Option(
                "--trade",
                metavar="MARKET=QTY[@PRICE]",
                help="MARKET=QTY or MARKET=QTY@PRICE (signed qty).",
            ),
        ] = None,
        withdraw: Annotated[
            list[str] | None,
            typer.Option("--withdraw", metavar="ASSET=QTY", help="ASSET=QTY (negative: deposit)."),
        ] = None,
        price: PriceOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """An account before and after a hypothetical trade, withdrawal or price move."""
        from crossmargin.book.io import load_book
        from crossmargin.locations.view import located_view
        from crossmargin.margin.engine import MarginEngine
        from crossmargin.margin.results import Trade
        from crossmargin.report import print_what_if

        trades = []
        for spec in trade or []:
            market, sep, rest = spec.partition("=")
            qty_text, _, price_text = rest.partition("@")
            try:
                qty = float(qty_text)
                fill = float(price_text) if price_text else None
            except ValueError:
                raise InputError(
                    "--trade", spec, "expected MARKET=QTY or MARKET=QTY@PRICE"
                ) from None
            if not sep:
                raise InputError("--trade", spec, "expected MARKET=QTY or MARKET=QTY@PRICE")
            trades.append(Trade(market, qty, fill))
        view = located_view(load_book(file))  # remote lots and transfers in flight: #17
        engine = MarginEngine(view.book)
        result = engine.what_if(
            account,
            trades,
            parse_pairs("--withdraw", withdraw),
            view.prices(parse_pairs("--price", price)),
        )
        if as_json:
            emit_json(result.to_dict())
        else:
            print_what_if(console, result)
        if not result.allowed:
            raise typer.Exit(EXIT_REFUSED)

    @app.command(epilog=examples("crossmargin greeks book.yaml --account options-desk"))
    @one_line_errors
    def greeks(
        file: FileArg,
        account: Annotated[
            str | None, typer.Option("--account", metavar="ID", help="Only this account.")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Portfolio Greeks per underlying and expiry: delta (coin and USD), gamma, vega, theta."""
        from crossmargin.book.io import load_book
        from crossmargin.locations.view import located_view
        from crossmargin.margin.engine import MarginEngine
        from crossmargin.portfolio import portfolio_from_book, portfolio_greeks
        from crossmargin.report import greeks_table

        book = located_view(load_book(file)).book  # remote lots are delta too: #17
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
