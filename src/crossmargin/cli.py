"""The ``crossmargin`` command line: it only assembles the commands.

Each area's commands live in one module of :mod:`crossmargin.commands` and are added to the
application by that module's ``register(app)``; shared plumbing (console, option types,
one-line errors with exit status 2) lives in :mod:`crossmargin.commands.common`.
"""

from __future__ import annotations

import typer

from crossmargin.commands import book as book_commands
from crossmargin.commands import liquidate as liquidate_commands
from crossmargin.commands import margin as margin_commands
from crossmargin.commands import market as market_commands
from crossmargin.commands import max as max_commands
from crossmargin.commands import portfolio as portfolio_commands
from crossmargin.commands import predict as predict_commands
from crossmargin.commands import risk as risk_commands
from crossmargin.commands import serve as serve_commands
from crossmargin.commands import simulate as simulate_commands
from crossmargin.commands import stress as stress_commands
from crossmargin.commands import transfer as transfer_commands

app = typer.Typer(
    name="crossmargin",
    help="Cross-collateralized margin for digital-asset derivatives.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# the order of the help's command list
margin_commands.register(app)
max_commands.register(app)
market_commands.register(app)
stress_commands.register(app)
liquidate_commands.register(app)
portfolio_commands.register(app)
book_commands.register(app)
risk_commands.register(app)
simulate_commands.register(app)
serve_commands.register(app)
predict_commands.register(app)
transfer_commands.register(app)


def main() -> None:
    """Entry point of the ``crossmargin`` script."""
    app()
