"""Plumbing shared by every ``crossmargin`` command: the console, option types, errors, JSON.

Any :class:`~crossmargin.errors.CrossmarginError` raised by a command is printed as one line
naming the field and the value, and the command exits with status 2.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from crossmargin.errors import CrossmarginError, InputError
from crossmargin.margin.arrays import AccountMode

# a pipe or CI log gets a readable width rather than rich's 80-column default
console = Console() if Console().is_terminal else Console(width=132)

FileArg = Annotated[Path, typer.Argument(help="Portfolio file (YAML or JSON).", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
ShockOpt = Annotated[
    list[str] | None,
    typer.Option("--shock", help="Move one asset's price, e.g. --shock ETH=-25% (repeatable)."),
]
ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode", help="Evaluate every account in this mode: cross, isolated or portfolio."
    ),
]
PriceOpt = Annotated[
    list[str] | None,
    typer.Option("--price", help="Override an asset's USD price, e.g. --price ETH=2500."),
]


F = TypeVar("F", bound=Callable[..., None])


def one_line_errors(command: F) -> F:
    """Print a :class:`CrossmarginError` as one line naming field and value; exit with 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except CrossmarginError as exc:
            message = escape(str(exc))  # field paths like accounts[0] are not rich markup
            Console(stderr=True).print(f"[red]error:[/] {message}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")


def parse_mode(mode: str | None) -> AccountMode | None:
    if mode is None:
        return None
    if mode not in ("cross", "isolated", "portfolio"):
        raise InputError("--mode", mode, "must be 'cross', 'isolated' or 'portfolio'")
    return mode  # type: ignore[return-value]


def parse_pairs(option: str, pairs: list[str] | None) -> dict[str, float]:
    parsed: dict[str, float] = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InputError(option, pair, "expected NAME=NUMBER")
        try:
            parsed[name] = float(value.rstrip("%")) / (100.0 if value.endswith("%") else 1.0)
        except ValueError:
            raise InputError(option, pair, "expected NAME=NUMBER") from None
    return parsed
