"""Exceptions raised by crossmargin.

Every error a user can cause names the offending field and value, so that the CLI can print one
line and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

import math
import reprlib
from typing import Any

#: Longest error line, and longest field path and value in it; the reason gets the rest (a
#: 1 MB key or value is cut, never printed whole).
LINE_LIMIT = 300
FIELD_LIMIT = 90
VALUE_LIMIT = 80


class CrossmarginError(Exception):
    """Base class of every error crossmargin raises on purpose."""


class InputError(CrossmarginError):
    """Bad input: a field with an invalid value.

    ``field`` is a dotted path into the portfolio file (e.g. ``assets.ETH.price``) or the name of
    a function argument; ``value`` is what was given. Deliberately not a ``ValueError``: pydantic
    would wrap a ``ValueError`` raised in a validator and lose the field path.
    """

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        field_text, value_text = _one_line(field, FIELD_LIMIT), _short_repr(value)
        budget = LINE_LIMIT - len(field_text) - len(value_text) - len(":  (got )")
        super().__init__(f"{field_text}: {_one_line(reason, budget)} (got {value_text})")


class UnknownNameError(InputError):
    """A reference to an asset, market or account that the book does not define."""


class NotSupportedError(CrossmarginError):
    """The input is valid but asks for a computation this version does not provide."""


class _BoundedRepr(reprlib.Repr):
    """``repr`` that looks at a few items of a few levels only: an alias-bomb value (a billion
    shared elements) or a 1,000-level nesting costs microseconds, not the whole expansion."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxtuple = self.maxlist = self.maxarray = self.maxdict = 4
        self.maxset = self.maxfrozenset = self.maxdeque = 4
        self.maxstring = self.maxother = VALUE_LIMIT
        self.maxlong = 40

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 4000:  # str() of > 4,300 digits raises ValueError
            return f"<integer of {x.bit_length()} bits>"
        return super().repr_int(x, level)


_REPR = _BoundedRepr()


def _short_repr(value: Any, limit: int = VALUE_LIMIT) -> str:
    """A one-line repr of at most ``limit`` characters, however large or deep ``value`` is."""
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()  # a numpy scalar: shown as the plain number
    try:
        text = _REPR.repr(value)
    except Exception:  # a hostile __repr__ or a pathological value: name the type only
        text = f"<{type(value).__name__}>"
    return _one_line(text, limit)


def one_line(text: str, limit: int = 300) -> str:
    """Any message as one line of at most ``limit`` characters (the CLI's error line)."""
    return _one_line(text, limit)


def _one_line(text: str, limit: int) -> str:
    """``text`` without line breaks or control characters, cut to ``limit`` characters."""
    text = str(text)[: limit * 4]  # bound the work before escaping
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class FieldValueError(ValueError):
    """Raised inside nested pydantic validators; pydantic adds the location of the model.

    ``subfield`` is relative to the model being validated; :func:`crossmargin.book.io.
    input_error_from_validation` joins it to pydantic's location to name the full field path.
    """

    def __init__(self, subfield: str, value: Any, reason: str) -> None:
        self.subfield = subfield
        self.value = value
        self.reason = reason
        super().__init__(f"{subfield}: {reason} (got {_short_repr(value)})")


def first_non_finite(data: Any) -> tuple[str, float, str | None] | None:
    """The first NaN or infinite number in nested dicts and lists (a JSON-shaped result):
    its dotted path, the value and the id of the nearest enclosing account (``account_id``,
    ``account`` or ``id`` key), or ``None`` when every number is finite."""
    stack: list[tuple[Any, str, str | None]] = [(data, "", None)]
    while stack:
        value, path, account = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                return path, value, account
        elif isinstance(value, dict):
            for key in ("account_id", "account", "id"):
                if isinstance(value.get(key), str):
                    account = value[key]
                    break
            items = [(f"{path}.{k}" if path else str(k), v) for k, v in value.items()]
            stack.extend((v, p, account) for p, v in reversed(items))
        elif isinstance(value, list | tuple):
            stack.extend((v, f"{path}[{i}]", account) for i, v in reversed(list(enumerate(value))))
    return None


class NonFiniteResultError(InputError):
    """A computed figure is NaN or infinite: some input is beyond the documented bounds."""


def check_finite(data: Any, what: str = "result") -> None:
    """Raise :class:`NonFiniteResultError` naming the account and the figure if any number
    in ``data`` (nested dicts and lists) is NaN or infinite."""
    found = first_non_finite(data)
    if found is None:
        return
    path, value, account = found
    whose = f"account {account!r}" if account is not None else "the book"
    raise NonFiniteResultError(
        f"{what}.{path}" if path else what,
        value,
        f"not a finite number: an input of {whose} (or an override) is beyond the documented "
        "bounds",
    )
