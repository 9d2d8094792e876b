"""Exceptions raised by crossmargin.

Every error a user can cause names the offending field and value, so that the CLI can print one
line and exit with status 2 instead of a traceback.
"""

from __future__ import annotations

from typing import Any


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
        super().__init__(f"{field}: {reason} (got {_short_repr(value)})")


class UnknownNameError(InputError):
    """A reference to an asset, market or account that the book does not define."""


class NotSupportedError(CrossmarginError):
    """The input is valid but asks for a computation this version does not provide."""


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
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
