"""Plumbing shared by every ``crossmargin`` command: the console, option types, errors, JSON.

Any :class:`~crossmargin.errors.CrossmarginError` raised by a command is printed as one line
naming the field and the value, and the command exits with status 2.
"""

from __future__ import annotations

import functools
import json
import math
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic_core import ValidationError  # pydantic's own class, without importing pydantic
from rich.console import Console
from rich.markup import escape

from crossmargin.errors import CrossmarginError, InputError, check_finite, one_line

if TYPE_CHECKING:
    from crossmargin.margin.arrays import AccountMode

# a pipe or CI log gets a readable width rather than rich's 80-column default
console = Console() if Console().is_terminal else Console(width=132)

FileArg = Annotated[
    Path,
    typer.Argument(metavar="FILE", help="Portfolio file (YAML or JSON).", show_default=False),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
ShockOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--shock",
        metavar="ASSET=PCT",
        help="Move one asset's price, e.g. --shock ETH=-25% (repeatable).",
    ),
]
ModeOpt = Annotated[
    str | None,
    typer.Option(
        "--mode",
        metavar="MODE",
        help="Evaluate every account in this mode: cross, isolated or portfolio.",
    ),
]
PriceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--price",
        metavar="ASSET=USD",
        help="Override an asset's USD price, e.g. --price ETH=2500 (repeatable).",
    ),
]


F = TypeVar("F", bound=Callable[..., None])

#: value names of the help for options without an explicit metavar, by annotation
_VALUE_NAMES: dict[Any, str] = {str: "TEXT", int: "N", float: "NUMBER", Path: "FILE"}


def _humane_help() -> None:
    """Help written for people on typer >= 0.20 (whose help prints ``<bool>``, ``<list[str]>``
    and ``{file}``): a metavar wins, a flag shows no value, other values show ``TEXT``, ``N``,
    ``NUMBER`` or ``FILE`` (``...`` when repeatable), and the usage line shows ``FILE`` for a
    required argument. Older typers keep their own rendering (nothing to patch)."""
    try:
        from typer.core import TyperArgument, TyperOption, _TyperParameter
    except ImportError:  # pragma: no cover - older typer: its help has no such types
        return
    if not hasattr(_TyperParameter, "display_type") or not hasattr(
        TyperArgument, "_usage_display_name"
    ):  # pragma: no cover
        return
    from typing import get_args, get_origin

    def display_type(self: Any, ctx: Any) -> str:
        if self.metavar is not None:
            return "" if isinstance(self, TyperArgument) else str(self.metavar)
        if isinstance(self, TyperOption) and self.is_bool_flag:
            return ""
        annotation = self.type_descriptor.annotation
        repeated = get_origin(annotation) is list
        if repeated:
            (annotation,) = get_args(annotation)
        name = _VALUE_NAMES.get(annotation, "VALUE")
        return f"{name} ..." if repeated else name

    def usage_name(self: Any) -> str:
        name = str(self.metavar or self.name.upper())
        name = name if self.required else f"[{name}]"
        return name + ("..." if self.nargs != 1 else "")

    # typer has no hook for these three renderings: replaced on its classes, once
    _TyperParameter.display_type = display_type  # type: ignore[method-assign]
    TyperArgument._usage_display_name = usage_name  # type: ignore[method-assign]
    TyperOption.display_type_rich = display_type  # type: ignore[method-assign]


_humane_help()


def examples(*lines: str) -> str:
    """The ``Examples`` epilog of a command's help: one paragraph per command line (shown
    verbatim: brackets are escaped, not read as rich markup)."""
    return "[bold]Examples[/]\n\n" + "\n\n".join("  " + escape(line) for line in lines)


#: RuntimeWarnings raised (and kept from the user) during the last command: numerical
#: warnings are never printed - a non-finite figure they announce is an error of its own
#: (:func:`emit_json`, the report tables) - but tests can see them here.
suppressed_warnings: list[warnings.WarningMessage] = []

#: Exit status of a command whose input is fine but whose answer is "no" (``what-if``: the
#: change is refused), so that scripts can tell it from success (0) and bad input (2).
EXIT_REFUSED = 3

#: Longest error line (characters after "error: ").
ERROR_LINE_LIMIT = 300


def one_line_errors(command: F) -> F:
    """Print a :class:`CrossmarginError` (or a stray pydantic ValidationError) as one line
    naming field and value, at most :data:`ERROR_LINE_LIMIT` characters; exit with 2.
    RuntimeWarnings (numpy floating point) are recorded in :data:`suppressed_warnings`, not
    printed."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        suppressed_warnings.clear()
        caught: list[warnings.WarningMessage] = []
        try:
            try:
                with warnings.catch_warnings(record=True) as caught:
                    command(*args, **kwargs)
            finally:
                # shown after the recorder is gone: inside it, showwarning would append to
                # ``caught`` while we iterate it (an endless loop)
                for warning in caught:
                    if issubclass(warning.category, RuntimeWarning):
                        suppressed_warnings.append(warning)
                    else:
                        warnings.showwarning(
                            warning.message, warning.category, warning.filename, warning.lineno
                        )
        except (CrossmarginError, ValidationError) as exc:
            from crossmargin.book.io import input_error_from_validation

            error = input_error_from_validation(exc) if isinstance(exc, ValidationError) else exc
            message = escape(one_line(str(error), ERROR_LINE_LIMIT))  # not rich markup
            Console(stderr=True).print(
                f"[red]error:[/] {message}", highlight=False, soft_wrap=True, emoji=False
            )
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON; a NaN or infinite figure is an error naming the account."""
    check_finite(data)
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")


def parse_mode(mode: str | None) -> AccountMode | None:
    if mode is None:
        return None
    if mode not in ("cross", "isolated", "portfolio"):
        raise InputError("--mode", mode, "must be 'cross', 'isolated' or 'portfolio'")
    return mode  # type: ignore[return-value]


def pair_bounds() -> dict[str, tuple[float, float, bool]]:
    """Bounds of the numeric overrides (the book's; docs/methodology.md, "Bounds"): option ->
    (lowest, highest, lowest allowed itself)."""
    from crossmargin.book.schema import PRICE_MAX, PRICE_MIN, QTY_MAX, SHOCK_MAX

    return {
        "--price": (PRICE_MIN, PRICE_MAX, True),
        "--shock": (-1.0, SHOCK_MAX, False),
        "--withdraw": (-QTY_MAX, QTY_MAX, True),
    }


#: the library's name of each override (as in its own errors)
_PAIR_FIELDS = {"--price": "prices", "--shock": "shock", "--withdraw": "withdrawals"}


def parse_pairs(option: str, pairs: list[str] | None) -> dict[str, float]:
    """``["ETH=-25%"]`` -> ``{"ETH": -0.25}``, each number finite and within the option's
    bounds (:func:`pair_bounds`)."""
    parsed: dict[str, float] = {}
    low, high, low_included = pair_bounds().get(option, (-math.inf, math.inf, True))
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise InputError(option, pair, "expected NAME=NUMBER")
        try:
            number = float(value.rstrip("%")) / (100.0 if value.endswith("%") else 1.0)
        except ValueError:
            raise InputError(option, pair, "expected NAME=NUMBER") from None
        field = f"{_PAIR_FIELDS.get(option, option)}.{name}"
        if not math.isfinite(number):
            raise InputError(field, pair, f"{option}: the number must be finite")
        if not ((number >= low if low_included else number > low) and number <= high):
            lower = f">= {low:g}" if low_included else f"> {low:g}"
            fall = "a price cannot fall 100 % or more; " if option == "--shock" else ""
            raise InputError(field, pair, f"{fall}{option} must be {lower} and <= {high:g}")
        parsed[name] = number
    return parsed
