"""Stress command: ``stress``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crossmargin.commands.common import (
    FileArg,
    JsonOpt,
    ShockOpt,
    console,
    emit_json,
    one_line_errors,
    parse_pairs,
)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command()
    @one_line_errors
    def stress(
        file: FileArg,
        scenario: Annotated[
            list[str] | None, typer.Option("--scenario", help="Only this scenario (repeatable).")
        ] = None,
        scenarios_file: Annotated[
            Path | None,
            typer.Option("--scenarios", help="YAML file adding or overriding scenarios."),
        ] = None,
        shock: ShockOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Each account's health under named historical shocks (collateral and positions
        together)."""
        from crossmargin.book.io import load_book
        from crossmargin.margin.engine import MarginEngine
        from crossmargin.report import stress_table
        from crossmargin.risk.stress import load_scenarios, run_stress

        book = load_book(file)
        library = load_scenarios(scenarios_file)
        results = run_stress(book, library, scenario, parse_pairs("--shock", shock))
        if as_json:
            emit_json({"scenarios": [r.to_dict() for r in results]})
        else:
            baseline = MarginEngine(book).margin(with_liquidation_prices=False)
            console.print(stress_table(results, library, baseline))
