"""``crossmargin transfer``: an account's health before, during and after moving collateral
between locations (issue #17)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from crossmargin.commands.common import (
    FileArg,
    JsonOpt,
    console,
    emit_json,
    examples,
    one_line_errors,
)

AccountOpt = Annotated[str, typer.Option("--account", help="The account that moves collateral.")]
AssetOpt = Annotated[str, typer.Option("--asset", help="The asset moved, e.g. ETH.")]
QtyOpt = Annotated[float, typer.Option("--qty", help="Units of the asset sent.")]
FromOpt = Annotated[str, typer.Option("--from", help="Source location (home: the venue).")]
ToOpt = Annotated[str, typer.Option("--to", help="Destination location.")]


def register(app: typer.Typer) -> None:
    """Add ``transfer`` and then ``crossvenue`` to ``app`` (the order of the help's list)."""

    @app.command(
        epilog=examples(
            "crossmargin transfer cross-venue.yaml --account bridger --asset ETH --qty 5 "
            "--from arbitrum --to home",
            "crossmargin transfer cross-venue.yaml --account bridger --asset ETH --qty 5 "
            "--from arbitrum --to home --json",
        )
    )
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

    register_crossvenue(app)


def register_crossvenue(app: typer.Typer) -> None:
    """Add ``crossvenue`` (the issue #17 simulations) to ``app``."""

    @app.command(
        epilog=examples(
            "crossmargin crossvenue --html cv.html",
            "crossmargin crossvenue --accounts 1000 --seed 3 --json",
        )
    )
    @one_line_errors
    def crossvenue(
        accounts: Annotated[int, typer.Option("--accounts", help="Generated accounts.")] = 300,
        seed: Annotated[int, typer.Option("--seed", help="Seed of the generated book.")] = 7,
        html_out: Annotated[
            Path | None, typer.Option("--html", help="Write the HTML report with plots.")
        ] = None,
        as_json: JsonOpt = False,
    ) -> None:
        """A bridge halting mid-crash vs one chain; the same crash into AMMs vs a book."""
        from crossmargin.errors import InputError
        from crossmargin.simulation import crossvenue as cv
        from crossmargin.simulation.crossvenue_report import (
            HALT_HEADER,
            SLIPPAGE_HEADER,
            VENUE_HEADER,
            halt_rows,
            render_crossvenue_html,
            slippage_rows,
            venue_rows,
        )

        if not 1 <= accounts <= 100_000:
            raise InputError("--accounts", accounts, "must be in [1, 100000]")
        halt = cv.run_bridge_halt(accounts, seed)
        sets = {
            "equal depth at the mid": cv.equal_depth_venues(3000.0, 2e5, 0.15),
            "equal capital": cv.equal_capital_venues(3000.0, 2e5, 0.15),
        }
        venues = {k: cv.run_amm_vs_book(accounts, seed, venues=v) for k, v in sets.items()}
        sizes = [100.0, 1000.0, 10000.0]
        slippage = {k: cv.slippage_table(v, sizes) for k, v in sets.items()}
        if html_out is not None:
            html_out.write_text(render_crossvenue_html(halt, venues, slippage))
        if as_json:
            emit_json(
                {
                    "bridge_halt": halt.to_dict(),
                    "venues": {k: v.to_dict() for k, v in venues.items()},
                    "slippage": slippage,
                }
            )
            return

        def table(title: str, header: tuple[str, ...], rows: list[list[str]]) -> Table:
            out = Table(title=title)
            for i, name in enumerate(header):
                out.add_column(name, justify="left" if i == 0 else "right")
            for row in rows:
                out.add_row(*row)
            return out

        for name, rows in halt_rows(halt).items():
            console.print(table(f"Bridge halt mid-crash: {name}", HALT_HEADER, rows))
        for name, result in venues.items():
            console.print(
                table(f"Crash into each venue ({name})", VENUE_HEADER, venue_rows(result))
            )
            console.print(
                table(f"Slippage ({name})", SLIPPAGE_HEADER, slippage_rows(slippage[name]))
            )
