"""One generic reader: a TOML table or a JSON object into a dataclass whose fields declare their keys.

Each key is written once, on its field: the type, the default, and a ``Key`` with the doc line, the
bounds, the choices and any hook::

    @dataclass(frozen=True)
    class ServerConfig:
        queue_size: Annotated[int, Key("questions that may wait for the models", ge=0)] = 8

``read_dataclass(ServerConfig, {"queue_size": -1}, "server")`` raises
``Invalid("server.queue_size", "expected an integer >= 0, got -1")``. Only fields annotated with a
``Key`` are keys; the others come from ``given`` or their defaults.

What the reader checks, in this order, per field: the type (``str``; ``int``, never a boolean;
``float``, an integer taken; ``bool``; ``X | None``, null only in JSON; a union of those; ``tuple[X, ...]``
or ``list[X]`` from a list; ``dict[str, X]``; a nested dataclass from a table; ``Path`` from a string),
then ``choices`` and the bounds ``ge``/``le``, then the field's ``read`` hook (what is not a plain value:
a pattern, a relative path, a model source assembled from several keys). After every field: unknown keys
("did you mean"), then the class's ``check_keys(at)`` method if it has one (checks across keys). Every
error is one ``Invalid(key, message)`` whose message says what is expected.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin, get_type_hints

from .errors import UsageError

T = TypeVar("T")
MISSING: Any = dataclasses.MISSING
Hook = Callable[[Any, "At"], Any]


@dataclass(frozen=True)
class Key:
    """A dataclass field as a key of a table: ``Annotated[type, Key(...)]``."""

    doc: str  # one line: what the key means (docs/configuration.md says it at length)
    ge: float | None = None  # bounds, for a number
    le: float | None = None
    choices: tuple[str, ...] = ()
    name: str = ""  # the key in the file, when it is not the attribute's name (lambda_ → "lambda")
    raw: Any = None  # the type the file gives, when ``read`` turns it into the attribute's type
    read: Hook | None = None  # (checked value, At) → the attribute; raises at.error(...)
    keys: type | None = None  # the attribute is built by ``read`` from this dataclass's keys, in the same table
    required: str = ""  # the message when a field without a default is absent
    label: bool = False  # the value names its table in later messages: "tiers[0] (small).n_ctx"


class Invalid(UsageError):
    """A value that does not fit its key. ``str()`` is ``key: message``, one line."""

    def __init__(self, key: str, message: str) -> None:
        self.key, self.message = key, message
        super().__init__(f"{key}: {message}" if key else message)


@dataclass
class At:
    """Where the reader is: the key's full name, what the caller passed, the table's attributes so far."""

    key: str
    context: Any = None
    values: dict[str, Any] = field(default_factory=dict)
    json: bool = False
    ignore_unknown: bool = False

    def child(self, name: str | int) -> At:
        """The key ``name`` in this table (``[name]`` for an item of a list)."""
        if isinstance(name, int):
            key = f"{self.key}[{name}]"
        else:
            key = f"{self.key}.{name}" if self.key else name
        return dataclasses.replace(self, key=key)

    def table(self) -> At:
        """A nested table at this key: its own attributes."""
        return dataclasses.replace(self, values={})

    def error(self, message: str) -> Invalid:
        return Invalid(self.key, message)


def read_dataclass(
    cls: type[T],
    data: Any,
    where: str = "",
    *,
    context: Any = None,
    given: dict[str, Any] | None = None,
    json: bool = False,
    ignore_unknown: bool = False,
) -> T:
    """``data`` (a parsed TOML table or JSON object) as a ``cls``, or ``Invalid`` naming the key.

    ``where``: the table's key, prefixed to every key in a message. ``context``: handed to hooks as
    ``at.context``. ``given``: attributes that are not keys. ``json``: say "an object" and "null".
    ``ignore_unknown``: keys no field declares are skipped (an API body's options we do not use).
    """
    return _read_table(cls, data, At(where, context, json=json, ignore_unknown=ignore_unknown), given or {})


def matches(pattern: str | re.Pattern[str], expected: str) -> Hook:
    """A ``read`` hook: the string must match ``pattern``, else "expected {expected}, got '…'"."""
    regex = re.compile(pattern)

    def check(value: Any, at: At) -> Any:
        if value is not None and not regex.match(value):
            raise at.error(f"expected {expected}, got {value!r}")
        return value

    return check


@dataclass(frozen=True)
class KeyField:
    """One field of a dataclass read by the reader."""

    attr: str  # the attribute
    name: str  # the key in the file
    hint: Any  # the attribute's type, Annotated stripped
    key: Key | None  # None: not a key
    spec: dataclasses.Field[Any]

    def default(self) -> Any:
        if self.spec.default is not MISSING:
            return self.spec.default
        if callable(self.spec.default_factory):
            return self.spec.default_factory()
        return MISSING


@functools.cache
def key_fields(cls: type) -> tuple[KeyField, ...]:
    """A dataclass's fields with their keys (types resolved once per class)."""
    hints = get_type_hints(cls, include_extras=True)
    out = []
    for spec in dataclasses.fields(cls):
        hint, key = hints[spec.name], None
        if get_origin(hint) is Annotated:
            hint, *extras = get_args(hint)
            key = next((e for e in extras if isinstance(e, Key)), None)
        out.append(KeyField(spec.name, (key and key.name) or spec.name, hint, key, spec))
    return tuple(out)


def known_keys(cls: type) -> list[str]:
    """The keys a table read as ``cls`` may hold."""
    names = []
    for f in key_fields(cls):
        if f.key is not None:
            names += known_keys(f.key.keys) if f.key.keys else [f.name]
    return names


def describe(cls: type, table: str = "") -> Iterator[tuple[str, KeyField]]:
    """Every key of ``cls`` and of the tables nested in it: (its table, its field), in declaration order."""
    for f in key_fields(cls):
        if f.key is None:
            continue
        if f.key.keys is not None:
            yield from describe(f.key.keys, table)
            continue
        yield table, f
        nested = _dataclass_in(f.hint)
        if nested is not None:
            yield from describe(nested, f"{table}.{f.name}" if table else f.name)


def _is_table(hint: Any) -> bool:
    """Whether a key's type is a dataclass, read from a table of its own."""
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _dataclass_in(hint: Any) -> type | None:
    """The dataclass a key's value is read as (itself, optional, or items of a list), if any."""
    if _is_table(hint):
        return hint
    for arg in get_args(hint):
        found = _dataclass_in(arg)
        if found is not None:
            return found
    return None


# --------------------------------------------------------------------------- reading


def _read_table(cls: type, data: Any, at: At, given: dict[str, Any], whole: bool = True) -> Any:
    """Read ``cls`` from the table ``data``; ``whole``: the table is ``cls``'s alone (report unknown keys)."""
    if not isinstance(data, dict):
        raise at.error(f"expected {_noun(dict, at)}, got {show(data, at)}")
    at = at.table()
    values = at.values
    for f in key_fields(cls):
        if f.key is None:
            values[f.attr] = given[f.attr] if f.attr in given else f.default()
    for f in key_fields(cls):
        value: Any
        if f.key is None:
            continue
        if f.key.keys is not None:  # several keys of this table make one attribute
            value = _read_table(f.key.keys, data, at, {}, whole=False)
            here = at
        else:
            here, default = at.child(f.name), f.default()
            if f.name in data:
                value = _limits(_value(data[f.name], f.key.raw or f.hint, here), f.key, here)
            elif default is not MISSING:
                values[f.attr] = default
                continue
            elif _is_table(f.hint):  # a table whose keys all have defaults may be left out
                value = _read_table(f.hint, {}, here, {})
            else:
                raise here.error(f.key.required or f"missing ({f.key.doc})")
        values[f.attr] = f.key.read(value, here) if f.key.read else value
        if f.key.label:
            at.key = f"{at.key} ({values[f.attr]})"
    if whole and not at.ignore_unknown:
        known = known_keys(cls)
        for name in data:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"
                raise at.child(name).error(f"unknown key; {hint}")
    obj = cls(**{k: v for k, v in values.items() if v is not MISSING})
    check = getattr(obj, "check_keys", None)
    if check is not None:
        check(at)
    return obj


_SCALARS = {
    str: ("a string", "strings"),
    int: ("an integer", "integers"),
    float: ("a number", "numbers"),
    bool: ("true or false", "booleans"),
}


def _value(value: Any, hint: Any, at: At) -> Any:
    """``value`` checked against the type ``hint`` (lists become tuples where the type says so)."""
    origin = get_origin(hint)
    if origin is Annotated:
        return _value(value, get_args(hint)[0], at)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if value is None and len(options) < len(get_args(hint)):
            return None
        fitting = [a for a in options if _fits(value, a)]
        if not fitting:
            raise at.error(f"expected {' or '.join(_noun(a, at) for a in options)}, got {show(value, at)}")
        return _value(value, fitting[0], at)
    if _is_table(hint):
        return _read_table(hint, value, at, {})
    if not _fits(value, hint):
        raise at.error(f"expected {_noun(hint, at)}, got {show(value, at)}")
    base = origin or hint
    if base in (list, tuple):
        item = (get_args(hint) or (Any,))[0]
        if item in _SCALARS:
            for v in value:
                if not _fits(v, item):
                    raise at.error(f"expected a list of {_SCALARS[item][1]}, found {show(v, at)}")
        items = [_value(v, item, at.child(i)) for i, v in enumerate(value)]
        return tuple(items) if base is tuple else items
    if base is dict:
        kind = (get_args(hint) or (str, Any))[1]
        return {k: _value(v, kind, at.child(k)) for k, v in value.items()}
    if base is float:
        return float(value)
    if base is Path:
        return Path(value)
    return value


def _fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of the kind ``hint`` reads (its items are checked later)."""
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    if hint is Any:
        return True
    if get_origin(hint) in (Union, types.UnionType):
        return any(_fits(value, a) for a in get_args(hint))
    if hint is type(None):
        return value is None
    base = get_origin(hint) or hint
    if _is_table(hint) or base is dict:
        return isinstance(value, dict)
    if base in (list, tuple):
        return isinstance(value, list)
    if base in (int, float):
        return isinstance(value, int if base is int else (int, float)) and not isinstance(value, bool)
    if base is Path:
        return isinstance(value, str)
    return isinstance(value, base)


def _noun(hint: Any, at: At) -> str:
    base = get_origin(hint) or hint
    if base in _SCALARS:
        return _SCALARS[base][0]
    if base in (list, tuple):
        return "a list"
    if base is dict or _is_table(hint):
        return "an object" if at.json else "a table"
    return "a string" if base is Path else "a value"


def show(value: Any, at: At | None = None) -> str:
    """How a wrong value is named in a message: "the string 'x'", "a list"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object" if at is not None and at.json else "a table"
    return type(value).__name__


def _limits(value: Any, key: Key, at: At) -> Any:
    """``choices`` and the bounds ``ge``/``le``."""
    if key.choices and value is not None and value not in key.choices:
        raise at.error(f"expected one of {', '.join(map(repr, key.choices))}, got {value!r}")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    lo, hi = key.ge, key.le
    if number and ((lo is not None and value < lo) or (hi is not None and value > hi)):

        def fmt(x: Any) -> str:
            return str(x) if isinstance(x, int) else f"{x:g}"

        if lo is not None and hi is not None:
            bound = f"between {fmt(lo)} and {fmt(hi)}"
        else:
            bound = f">= {fmt(lo)}" if lo is not None else f"<= {fmt(hi)}"
        noun = "an integer" if isinstance(value, int) else "a number"
        raise at.error(f"expected {noun} {bound}, got {fmt(value)}")
    return value
