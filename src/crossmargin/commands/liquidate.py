"""Liquidation command: ``liquidate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from crossmargin.commands.common import (
    FileArg,
    JsonOpt,
    ShockOpt,
    console,
    emit_json,
    examples,
    one_line_errors,
    parse_pairs,
    stage,
)
from crossmargin.errors import InputError


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""

    @app.command(
        epilog=examples(
            "crossmargin liquidate book.yaml --shock BTC=-30% --policy drift",
            "crossmargin liquidate book.yaml --shock ETH=-40% --insurance-fund 250000"
            " --journal j.jsonl",
        )
    )
    @one_line_errors
    def liquidate(
        file: FileArg,
        shock: ShockOpt = None,
        policy: Annotated[
            str,
            typer.Option("--policy", metavar="POLICY", help="generic, mango, drift, aave or dydx."),
        ] = "generic",
        insurance_fund: Annotated[
            float,
            typer.Option(
                "--insurance-fund", metavar="USD", help="Insurance fund at the start, USD."
            ),
        ] = 0.0,
        bankruptcy: Annotated[
            str | None,
            typer.Option(
                "--bankruptcy", metavar="socialize|adl", help="socialize or adl (policy default)."
            ),
        ] = None,
        journal: Annotated[
            str | None,
            typer.Option(
                "--journal",
                metavar="FILE.jsonl|URL",
                help="Record the run in FILE.jsonl or a SQLAlchemy URL (sqlite:///...); a run "
                "already journaled there (same book content and parameters) is not recorded again.",
            ),
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """Liquidate every liquidatable account: the plan, the fills and the result."""
        from pydantic import ValidationError

        from crossmargin.book.io import load_book
        from crossmargin.liquidation import (
            LiquidationConfig,
            LiquidationEngine,
            liquidation_key,
            open_journal,
        )
        from crossmargin.liquidation.engine import ADL_WITHOUT_DEPTH
        from crossmargin.liquidation.execution import execution_from_book
        from crossmargin.locations.execution import execution_for
        from crossmargin.locations.view import located_view
        from crossmargin.report import liquidation_tables

        view = located_view(load_book(file))  # #17: liquidation where the collateral is
        book = view.book
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
        moves = parse_pairs("--shock", shock)
        shocks = view.prices(moves)
        sink = None if journal is None else open_journal(journal)  # checked before the work
        with stage(f"liquidating {len(book.accounts):,} accounts"):
            inner = execution_from_book(book)
            execution = execution_for(view, Path(file).parent, moves, inner=inner) or inner
            result = LiquidationEngine(book, config, execution, shocks=shocks).liquidate()
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
