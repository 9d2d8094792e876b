"""Reading portfolio files (YAML or JSON) into a validated :class:`Book`.

Every failure becomes an :class:`~crossmargin.errors.InputError` naming the field and the value:
a missing file, a file that is neither YAML nor JSON, a duplicate key, or a schema violation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from crossmargin.book.schema import Book
from crossmargin.errors import FieldValueError, InputError

DEMO_BOOK = "demo_book.yaml"


def load_book(path: str | Path) -> Book:
    """Read and validate a portfolio file (``.yaml``, ``.yml`` or ``.json``)."""
    file = Path(path)
    return parse_book(_read_text(file), source=str(file), base_dir=file.parent)


def read_structured(path: str | Path) -> Any:
    """Parsed YAML or JSON of a file (unique keys), with the same errors as :func:`load_book`."""
    file = Path(path)
    return _parse_document(_read_text(file), str(file))


def _read_text(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file", str(file), "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError("file", str(file), f"cannot be read: {exc}") from None


def load_demo_book() -> Book:
    """The bundled example book used by ``crossmargin demo``."""
    text = resources.files("crossmargin.examples").joinpath(DEMO_BOOK).read_text("utf-8")
    return parse_book(text, source=DEMO_BOOK)


def demo_book_text() -> str:
    """The bundled example book as YAML text (to copy and edit)."""
    return resources.files("crossmargin.examples").joinpath(DEMO_BOOK).read_text("utf-8")


def parse_book(text: str, source: str = "<text>", base_dir: str | Path | None = None) -> Book:
    """Parse YAML or JSON text (JSON is a subset of YAML), validate it and compute any
    ``weights: dynamic`` from their price histories (paths relative to ``base_dir``)."""
    data = _parse_document(text, source)
    book = book_from_data(data)
    if any(asset.weights == "dynamic" for asset in book.assets.values()):
        # imported here: the estimators pull in pandas, scipy and arch
        from crossmargin.haircuts.resolve import resolve_dynamic_weights

        book, _ = resolve_dynamic_weights(book, base_dir)
    return book


def book_from_data(data: Any) -> Book:
    """Validate already-parsed data (e.g. a ``dict``) into a :class:`Book`."""
    if not isinstance(data, Mapping):
        raise InputError("file", type(data).__name__, "top level must be a mapping of sections")
    try:
        return Book.model_validate(data)
    except ValidationError as exc:
        raise input_error_from_validation(exc) from None


def input_error_from_validation(exc: ValidationError) -> InputError:
    """Turn pydantic's first error into one :class:`InputError` with a dotted field path."""
    error = exc.errors()[0]
    path = _dotted(error["loc"])
    original = (error.get("ctx") or {}).get("error")
    if isinstance(original, FieldValueError):
        field = f"{path}.{original.subfield}" if path else original.subfield
        return InputError(field, original.value, original.reason)
    message = error["msg"]
    if error["type"] == "missing":
        return InputError(path, None, "required field is missing")
    if error["type"] == "extra_forbidden":
        return InputError(path, error.get("input"), "unknown field")
    return InputError(path or "book", error.get("input"), message)


def _dotted(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif item in ("perp", "future", "option") and parts and not parts[-1].startswith("["):
            continue  # pydantic's discriminator tag adds no information to the path
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects duplicate mapping keys (silently last-wins otherwise)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            line = key_node.start_mark.line + 1
            raise InputError(f"line {line}", key, "duplicate key")
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)


def _parse_document(text: str, source: str) -> Any:
    if source.endswith(".json"):
        try:
            return json.loads(text, object_pairs_hook=_unique_json_object)
        except json.JSONDecodeError as exc:
            raise InputError(
                "file", source, f"not valid JSON (line {exc.lineno}, column {exc.colno})"
            ) from None
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise InputError("file", source, f"not valid YAML or JSON{where}") from None


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InputError("file", key, "duplicate key")
        result[key] = value
    return result
