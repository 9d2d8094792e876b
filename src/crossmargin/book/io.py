"""Reading portfolio files (YAML or JSON) into a validated :class:`Book`.

Every failure becomes an :class:`~crossmargin.errors.InputError` naming the field and the value:
a missing file, a file that is neither YAML nor JSON, a duplicate key, or a schema violation.

Loading is safe against hostile files (docs/methodology.md, "Bounds"), each refused with a
one-line ``file:`` error before any expansion: files over :data:`MAX_FILE_BYTES`, nesting
deeper than :data:`MAX_DEPTH`, YAML aliases (``*name``, also in merge keys ``<<``) that would
expand to more than :data:`MAX_ALIAS_NODES` nodes (a "billion laughs" file), recursive
aliases, complex (non-scalar) mapping keys and integer literals longer than
:data:`MAX_INT_DIGITS`. Anchors, aliases and merge keys within the limit are supported.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from crossmargin.book.schema import Book
from crossmargin.errors import FieldValueError, InputError

DEMO_BOOK = "demo_book.yaml"

#: Largest file read (bytes); a book of 100,000 accounts is about 15 MB of YAML.
MAX_FILE_BYTES = 20 * 1024 * 1024
#: Deepest nesting of mappings and lists (a book needs 6 levels).
MAX_DEPTH = 64
#: Most nodes that YAML aliases may add when expanded (a 442-byte alias bomb adds 1e9).
MAX_ALIAS_NODES = 100_000
#: Longest integer literal (Python's own limit for converting decimal text to int).
MAX_INT_DIGITS = 4300


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
        with file.open("rb") as handle:  # a bounded read: also safe on /dev/zero or a pipe
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InputError("file", str(file), "no such file") from None
    except OSError as exc:
        raise InputError("file", str(file), f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(
            "file", str(file), f"larger than the limit of {MAX_FILE_BYTES // 2**20} MB"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("file", str(file), f"not UTF-8 text (byte {exc.start})") from None


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
    loc = tuple(error["loc"])
    is_key = bool(loc) and loc[-1] == "[key]"  # a mapping key (a name) failed, not its value
    path = _dotted(loc[:-1] if is_key else loc)
    original = (error.get("ctx") or {}).get("error")
    if isinstance(original, FieldValueError):
        sub = original.subfield
        field = f"{path}.{sub}" if path and sub else path or sub
        return InputError(field, original.value, _key_reason(original.reason, is_key))
    value = error.get("input")
    kind = error["type"]
    if kind == "missing":
        return InputError(path, None, "required field is missing")
    if kind == "extra_forbidden":
        return InputError(path, value, "unknown field")
    if kind in _BOUND_WORDS:
        limit = (error.get("ctx") or {}).get(_BOUND_CTX[kind])
        message = f"Input should be {_BOUND_WORDS[kind]} {_number(limit)}"
    elif kind == "float_type" and isinstance(value, int) and not isinstance(value, bool):
        message = "integer too large for a float64 number"
    else:
        message = error["msg"]
    return InputError(path or "book", value, _key_reason(message, is_key))


_BOUND_WORDS = {
    "greater_than": "greater than",
    "greater_than_equal": "greater than or equal to",
    "less_than": "less than",
    "less_than_equal": "less than or equal to",
}
_BOUND_CTX = {
    "greater_than": "gt",
    "greater_than_equal": "ge",
    "less_than": "lt",
    "less_than_equal": "le",
}


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def _key_reason(reason: str, is_key: bool) -> str:
    return f"name (mapping key): {reason}" if is_key else reason


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


_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _UniqueKeyLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe YAML loader: duplicate mapping keys are errors (silently last-wins otherwise),
    keys are scalars, merge keys (``<<``) are supported, integer literals are bounded, and
    ``1e3`` is a float (YAML 1.2; PyYAML's YAML 1.1 reads it as the string "1e3")."""


class _ContentError(Exception):
    """A refused YAML construct; :func:`_parse_document` names the file."""

    def __init__(self, reason: str, node: yaml.Node) -> None:
        super().__init__(reason)
        self.reason = f"{reason} (line {node.start_mark.line + 1})"


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    merged: dict[Any, Any] = {}
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        line = key_node.start_mark.line + 1
        if key_node.tag == _MERGE_TAG:
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                if not isinstance(source, yaml.MappingNode):
                    raise _ContentError(
                        "a merge key (<<) takes a mapping or a list of them", key_node
                    )
                for key, value in loader.construct_object(source, deep=True).items():
                    merged.setdefault(key, value)  # the first mapping listed wins (YAML spec)
            continue
        if not isinstance(key_node, yaml.ScalarNode):
            raise _ContentError(
                "a mapping key must be a name or a number (a complex key)", key_node
            )
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise InputError(f"line {line}", key, "duplicate key")
        mapping[key] = loader.construct_object(value_node, deep=True)
    return {**merged, **mapping}  # the mapping's own keys override merged ones


def _construct_bounded_int(loader: _UniqueKeyLoader, node: yaml.ScalarNode) -> int:
    if len(node.value) > MAX_INT_DIGITS:
        raise _ContentError(f"integer literal longer than {MAX_INT_DIGITS} digits", node)
    value: int = loader.construct_yaml_int(node)
    return value


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _construct_bounded_int)
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _scan_yaml(text: str, source: str) -> None:
    """Refuse deep nesting and alias bombs from the event stream, before anything is built.

    Linear in the file: each anchored node's expanded size and height are recorded when it
    closes; an alias adds them without expanding anything.
    """
    anchors: dict[str, tuple[int, int]] = {}  # anchor -> (expanded nodes, height)
    open_: list[list[Any]] = []  # [anchor, expanded nodes before it, height] per collection
    expanded = added = 0

    def child(height: int) -> None:
        if open_:
            open_[-1][2] = max(open_[-1][2], height + 1)

    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(open_) >= MAX_DEPTH:
                _file_error(source, f"nested deeper than {MAX_DEPTH} levels", event)
            open_.append([event.anchor, expanded, 1])
            expanded += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before, height = open_.pop()
            if anchor is not None:
                anchors[anchor] = (expanded - before, height)
            child(height)
        elif isinstance(event, yaml.ScalarEvent):
            expanded += 1
            if event.anchor is not None:
                anchors[event.anchor] = (1, 1)
            child(1)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in anchors:
                if any(frame[0] == event.anchor for frame in open_):
                    _file_error(source, f"recursive alias *{event.anchor}", event)
                continue  # an undefined alias: the parser reports it
            size, height = anchors[event.anchor]
            expanded += size
            added += size
            if added > MAX_ALIAS_NODES:
                _file_error(source, f"aliases expand to more than {MAX_ALIAS_NODES:,} nodes", event)
            if len(open_) + height > MAX_DEPTH:
                _file_error(source, f"nested deeper than {MAX_DEPTH} levels (alias)", event)
            child(height)


def _file_error(source: str, reason: str, event: Any) -> None:
    mark = getattr(event, "start_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    raise InputError("file", source, reason + where)


def _check_depth(data: Any, source: str) -> None:
    """Iterative depth check of parsed JSON (its parser has no depth limit of its own)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth >= MAX_DEPTH:
                raise InputError("file", source, f"nested deeper than {MAX_DEPTH} levels")
            items = value.values() if isinstance(value, dict) else value
            stack.extend((item, depth + 1) for item in items if isinstance(item, dict | list))


def _parse_document(text: str, source: str) -> Any:
    if source.endswith(".json"):
        try:
            data = json.loads(
                text,
                object_pairs_hook=_unique_json_object,
                parse_int=lambda digits: _json_int(digits, source),
            )
        except json.JSONDecodeError as exc:
            raise InputError(
                "file", source, f"not valid JSON (line {exc.lineno}, column {exc.colno})"
            ) from None
        except RecursionError:
            raise InputError("file", source, f"nested deeper than {MAX_DEPTH} levels") from None
        _check_depth(data, source)
        return data
    try:
        _scan_yaml(text, source)
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except _ContentError as exc:
        raise InputError("file", source, exc.reason) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None)
        if isinstance(problem, str) and "nesting depth" in problem:  # libyaml's own limit
            raise InputError("file", source, f"nested deeper than {MAX_DEPTH} levels") from None
        detail = f": {problem}" if isinstance(problem, str) else ""
        raise InputError("file", source, f"not valid YAML or JSON{detail}{where}") from None


def _json_int(digits: str, source: str) -> int:
    if len(digits) > MAX_INT_DIGITS:
        raise InputError("file", source, f"integer literal longer than {MAX_INT_DIGITS} digits")
    return int(digits)


def _unique_json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InputError("file", key, "duplicate key")
        result[key] = value
    return result
