"""Book commands: ``schema`` and ``demo``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from crossmargin.commands.common import (
    JsonOpt,
    console,
    emit_json,
    examples,
    one_line_errors,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command(epilog=examples("crossmargin schema > schema.json"))
    @one_line_errors
    def schema() -> None:
        """Print the JSON Schema of the portfolio file."""
        from crossmargin.book.schema import Book

        emit_json(Book.model_json_schema())

    @app.command(
        epilog=examples(
            "crossmargin demo",
            "crossmargin demo --write-examples .",
            "crossmargin demo --show-book > book.yaml",
        )
    )
    @one_line_errors
    def demo(
        as_json: JsonOpt = False,
        show_book: Annotated[
            bool, typer.Option("--show-book", help="Print the bundled book (YAML) and exit.")
        ] = False,
        write_examples: Annotated[
            Path | None,
            typer.Option(
                "--write-examples",
                metavar="DIR",
                help="Write the example files (book.yaml, prices.csv, case.json) into DIR and "
                "exit.",
            ),
        ] = None,
    ) -> None:
        """Margin and compare on the bundled demo book; writes the example files.

        The book: stables, BTC, ETH, SOL, AAVE, wstETH, perps, a future and ETH options on a
        portfolio-margin account; accounts basis-trader, eth-levered, sol-degen, aave-whale,
        market-maker, iso-trader and options-desk."""
        if write_examples is not None:
            from crossmargin.examples import write_examples as write

            for path in write(write_examples):
                console.print(str(path), markup=False, highlight=False)
            return
        from crossmargin.book.io import demo_book_text, load_demo_book
        from crossmargin.margin.engine import MarginEngine
        from crossmargin.report import (
            compare_table,
            liquidation_table,
            margin_table,
            portfolio_table,
        )

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
        console.print(
            margin_table(reports, title="Margin (cross, isolated and portfolio accounts)")
        )
        console.print(liquidation_table(reports))
        breakdown = portfolio_table(reports)
        if breakdown is not None:
            console.print(breakdown)
        console.print(compare_table(rows))
        liquidatable = [r.account_id for r in reports if r.liquidatable]
        if liquidatable:
            console.print(f"[bold red]Liquidatable now:[/] {', '.join(liquidatable)}")
