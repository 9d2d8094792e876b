"""Plumbing shared by every ``crossmargin`` command: the console, option types, errors, JSON.

Any :class:`~crossmargin.errors.CrossmarginError` raised by a command is printed as one line
naming the field and the value, and the command exits with status 2.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import sys
import warnings
from collections.abc import Callable, Iterator
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

    wrapper.__doc__ = reflow(command.__doc__)
    return wrapper  # type: ignore[return-value]


def reflow(doc: str | None) -> str | None:
    """A docstring for the help: each paragraph on one line (rich's help keeps a docstring's
    line breaks, which then split sentences in the middle of the terminal)."""
    if doc is None:
        return None
    import inspect

    paragraphs = inspect.cleandoc(doc).split("\n\n")
    return "\n\n".join(" ".join(line.strip() for line in p.splitlines()) for p in paragraphs)


@contextlib.contextmanager
def stage(label: str) -> Iterator[None]:
    """A spinner with ``label`` on stderr while a long step runs (nothing in a pipe or a log:
    rich animates only on a terminal, and the line is gone when the step ends)."""
    with Console(stderr=True).status(escape(label), spinner="dots"):
        yield


def progress_run(total: int, label: str, work: Callable[[Callable[[int], None]], Any]) -> Any:
    """Run ``work(advance)`` under a progress bar of ``total`` steps on stderr (transient)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True, console=Console(stderr=True)) as progress:
        task = progress.add_task(escape(label), total=total)
        return work(lambda k: progress.advance(task, k))


#: Fewest observations beyond a quantile for its VaR and ES to mean anything (rule of thumb:
#: with fewer than ~10 tail points the 99 % VaR is one of the few worst paths and ES = VaR)
MIN_TAIL_OBSERVATIONS = 10


def few_paths_warning(
    n_paths: int, levels: tuple[float, ...], what: str, *, show: bool = True
) -> str | None:
    """A warning when ``n_paths`` leave fewer than :data:`MIN_TAIL_OBSERVATIONS` beyond the
    highest of ``levels`` (tail count n (1 - q)); None when enough. Printed on stderr when
    ``show`` (with --json the commands put it in the JSON's ``warnings`` instead)."""
    short = [q for q in levels if n_paths * (1.0 - q) < MIN_TAIL_OBSERVATIONS]
    if not n_paths or not short:
        return None
    q = max(short)
    need = math.ceil(MIN_TAIL_OBSERVATIONS / (1.0 - q) - 1e-9)
    names = "/".join(f"{100 * x:g}" for x in sorted(short))
    message = (
        f"warning: {n_paths:,} paths leave {n_paths * (1.0 - q):g} paths beyond the {100 * q:g} % "
        f"quantile: {what} at {names} % are not estimable (give --paths {need:,} or more)"
    )
    if show:
        Console(stderr=True).print(message, style="yellow", markup=False, highlight=False)
    return message


#: Significant digits of USD figures in JSON: the kernel's sums of products leave noise of
#: ~1e-16 x the terms' magnitudes (3684250.0000000005, 10384.800000000047); 13 digits
#: (5e-14 relative: a hundred-thousandth of a cent on a billion USD) drop it and keep more
#: precision than any price or quantity in a book carries.
USD_DIGITS = 13


def clean_usd(data: Any, usd: bool = False) -> Any:
    """``data`` with every float under a key ending in ``_usd`` rounded to :data:`USD_DIGITS`
    significant digits (the summation-order noise gone); other numbers unchanged."""
    if isinstance(data, float):
        return float(f"{data:.{USD_DIGITS}g}") if usd and math.isfinite(data) else data
    if isinstance(data, dict):
        return {k: clean_usd(v, usd or str(k).endswith("_usd")) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [clean_usd(v, usd) for v in data]
    return data


def emit_json(data: Any) -> None:
    """Print ``data`` as JSON (USD figures without summation noise, :func:`clean_usd`); a NaN
    or infinite figure is an error naming the account."""
    check_finite(data)
    sys.stdout.write(json.dumps(clean_usd(data), indent=2, allow_nan=False) + "\n")


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
