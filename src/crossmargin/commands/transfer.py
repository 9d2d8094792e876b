"""``crossmargin transfer``: an account's health before, during and after moving collateral
between locations (issue #17)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crossmargin.commands.common import FileArg, JsonOpt, console, emit_json, one_line_errors

AccountOpt = Annotated[str, typer.Option("--account", help="The account that moves collateral.")]
AssetOpt = Annotated[str, typer.Option("--asset", help="The asset moved, e.g. ETH.")]
QtyOpt = Annotated[float, typer.Option("--qty", help="Units of the asset sent.")]
FromOpt = Annotated[str, typer.Option("--from", help="Source location (home: the venue).")]
ToOpt = Annotated[str, typer.Option("--to", help="Destination location.")]


def register(app: typer.Typer) -> None:
    """Add ``transfer`` to ``app``."""

    @app.command()
    @one_line_errors
    def transfer(
        file: FileArg,
        account: AccountOpt,
        asset: AssetOpt,
        qty: QtyOpt,
        source: FromOpt,
        destination: ToOpt,
        as_json: JsonOpt = False,
    ) -> None:
        """Health before, in flight and after finality of a transfer between locations."""
        from crossmargin.book.io import load_book
        from crossmargin.locations.timeline import transfer_timeline
        from crossmargin.report import usd

        book = load_book(Path(file))
        stages, cost_usd, finality_s = transfer_timeline(
            book, account, asset, qty, source, destination
        )
        if as_json:
            emit_json(
                {
                    "account": account,
                    "asset": asset,
                    "qty": qty,
                    "from": source,
                    "to": destination,
                    "cost_usd": cost_usd,
                    "finality_s": finality_s,
                    "stages": [s.to_dict() for s in stages],
                }
            )
            return
        table = Table(
            title=f"{account}: {qty:g} {asset} {source} -> {destination} "
            f"(cost {usd(cost_usd)} USD, final after {finality_s:g} s)"
        )
        for name in (
            "stage",
            "t (s)",
            f"{asset} at {source}",
            "in flight",
            f"{asset} at {destination}",
            "equity $",
            "init health $",
            "maint health $",
            "status",
        ):
            table.add_column(name, justify="left" if name in ("stage", "status") else "right")
        for s in stages:
            status = (
                "liquidatable"
                if s.maint_health_usd < 0
                else ("margin call" if s.init_health_usd < 0 else "healthy")
            )
            table.add_row(
                s.stage,
                f"{s.elapsed_s:g}",
                f"{s.source_qty:,.6g}",
                f"{s.in_flight_qty:,.6g}",
                f"{s.destination_qty:,.6g}",
                usd(s.equity_usd),
                usd(s.init_health_usd),
                usd(s.maint_health_usd),
                status,
            )
        console.print(table)
