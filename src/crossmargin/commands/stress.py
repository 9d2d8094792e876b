"""Stress command: ``stress``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crossmargin.commands.common import (
    FileArg,
    JsonOpt,
    console,
    emit_json,
    examples,
    one_line_errors,
    parse_pairs,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command(
        epilog=examples(
            "crossmargin stress book.yaml",
            "crossmargin stress book.yaml --scenario ftx-nov-2022 --shock ETH=-10%   # ETH: (1"
            " - 24.4 %)(1 - 10 %) - 1",
        )
    )
    @one_line_errors
    def stress(
        file: FileArg,
        scenario: Annotated[
            list[str] | None,
            typer.Option("--scenario", metavar="NAME", help="Only this scenario (repeatable)."),
        ] = None,
        scenarios_file: Annotated[
            Path | None,
            typer.Option(
                "--scenarios", metavar="FILE", help="YAML file adding or overriding scenarios."
            ),
        ] = None,
        shock: Annotated[
            list[str] | None,
            typer.Option(
                "--shock",
                metavar="ASSET=PCT",
                help="Move one asset's price on top of each scenario, compounded: "
                "(1 + scenario) x (1 + shock) - 1; e.g. --shock ETH=-10% (repeatable).",
            ),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Each account's health under named historical shocks.

        A scenario moves collateral and positions together; --shock compounds with it on the
        price: (1 + scenario move) x (1 + shock) - 1, shown under the table."""
        from crossmargin.book.io import load_book
        from crossmargin.locations.view import located_view
        from crossmargin.margin.engine import MarginEngine
        from crossmargin.report import stress_table
        from crossmargin.risk.stress import load_scenarios, run_stress

        book = located_view(load_book(file)).book  # ETH@arbitrum moves with ETH: #17
        library = load_scenarios(scenarios_file)
        results = run_stress(book, library, scenario, parse_pairs("--shock", shock))
        if as_json:
            emit_json({"scenarios": [r.to_dict() for r in results]})
        else:
            baseline = MarginEngine(book).margin(with_liquidation_prices=False)
            console.print(stress_table(results, library, baseline))
