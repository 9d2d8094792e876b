"""``crossmargin max``: the largest trade, borrow, withdrawal or swap an account can make.

Solved on the risk kernel (:mod:`crossmargin.margin.solvers`): the change keeps init health
>= 0 in every bucket of the account.
"""

from __future__ import annotations

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
from crossmargin.errors import InputError


def register(app: typer.Typer) -> None:
    """Add ``max`` to ``app``."""

    @app.command(
        name="max",
        epilog=examples(
            "crossmargin max book.yaml --account eth-levered",
            "crossmargin max book.yaml --account eth-levered --market ETH-PERP",
            "crossmargin max book.yaml --account aave-whale --borrow USDC --min-ratio 10",
            "crossmargin max book.yaml --account eth-levered --swap ETH:USDC --json",
        ),
    )
    @one_line_errors
    def max_command(
        file: FileArg,
        account: Annotated[str, typer.Option("--account", metavar="ID", help="Account id.")],
        market: Annotated[
            str | None,
            typer.Option("--market", metavar="MARKET", help="Largest buy and sell in this market."),
        ] = None,
        borrow: Annotated[
            str | None,
            typer.Option("--borrow", metavar="ASSET", help="Largest borrow of this asset."),
        ] = None,
        withdraw: Annotated[
            str | None,
            typer.Option(
                "--withdraw",
                metavar="ASSET",
                help="Largest withdrawal of this asset (no borrowing).",
            ),
        ] = None,
        swap: Annotated[
            str | None,
            typer.Option(
                "--swap",
                metavar="SOURCE:TARGET",
                help="Largest swap at the oracle, e.g. ETH:USDC.",
            ),
        ] = None,
        min_ratio: Annotated[
            float,
            typer.Option(
                "--min-ratio",
                metavar="PCT",
                help="Keep the init health ratio (WA - WL) / WL at least this many percent "
                "(Mango's target ratio; default 0: init health >= 0).",
            ),
        ] = 0.0,
        as_json: JsonOpt = False,
    ) -> None:
        """Largest trade / borrow / withdrawal / swap keeping init health >= 0 (default: all)."""
        from crossmargin.book.io import load_book
        from crossmargin.locations.view import located_view
        from crossmargin.margin import solvers

        book = located_view(load_book(file)).book  # remote lots count as they do in margin
        book.account(account)  # an unknown id fails before any solving
        chosen = [o for o in (market, borrow, withdraw, swap) if o is not None]
        if not (min_ratio >= 0.0 and min_ratio < 1e9):  # also refuses NaN
            raise InputError("--min-ratio", min_ratio, "must be a percentage >= 0")
        ratio = min_ratio / 100.0
        if len(chosen) > 1:
            raise InputError(
                "--market/--borrow/--withdraw/--swap", chosen, "give at most one of them"
            )
        if market is not None:
            results = [
                solvers.max_trade(book, account, market, s, min_health_ratio_frac=ratio)
                for s in solvers.SIDES
            ]
        elif borrow is not None:
            results = [solvers.max_borrow(book, account, borrow, min_health_ratio_frac=ratio)]
        elif withdraw is not None:
            results = [solvers.max_withdraw(book, account, withdraw, min_health_ratio_frac=ratio)]
        elif swap is not None:
            source, sep, target = swap.partition(":")
            if not sep or not source or not target:
                raise InputError("--swap", swap, "must be SOURCE:TARGET, e.g. ETH:USDC")
            results = [solvers.max_swap(book, account, source, target, min_health_ratio_frac=ratio)]
        else:
            results = solvers.max_all(book, account, min_health_ratio_frac=ratio)
        if as_json:
            emit_json([r.to_dict() for r in results])
            return
        from crossmargin.report import usd

        table = Table(title=f"Largest changes keeping init health >= 0: {account}")
        columns = ("change", "instrument", "amount", "USD", "limit", "init health after")
        for column in (*columns, "leverage after"):
            table.add_column(column, justify="left" if column in ("change", "limit") else "right")
        for r in results:
            change = f"{r.kind} {r.side}".strip()
            amount = "unbounded" if r.unbounded else f"{r.amount:,.6g}"
            worth = "-" if r.unbounded else usd(r.amount_usd)
            table.add_row(
                change,
                r.instrument,
                amount,
                worth,
                r.limit,
                usd(r.init_health_after_usd),
                "-" if r.unbounded else f"{r.leverage_after:,.3g}",
            )
        console.print(table)
