"""Config parsing, the one parser: a trial config (plain data from YAML or Tune) → a frozen dataclass.

A leaf module (it imports nothing of trainables), so every config — a generator's own keys
(:func:`trainables.lifecycle.parse_config` is this one) and the benchmark's
(:meth:`trainables.common.BenchmarkConfig.from_config`) — is parsed by the same rules: unknown
keys refused with the closest name, each value checked against its field's annotation (``int``,
``float``, ``bool``, ``str``, ``Literal`` choices, optional values, tuples), ranges by the
dataclass's ``__post_init__``; every problem one ``ValueError`` line.
"""
from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Mapping, Sequence

import numpy as np


def check_type(owner: str, name: str, value: Any, hint: Any) -> Any:
    """``value`` as the field type ``hint`` wants it (lists become tuples), else ValueError."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in (o for o in options if o is not type(None)):
            try:
                return check_type(owner, name, value, option)
            except ValueError as exc:
                errors.append(exc)
        raise errors[0]
    if origin is typing.Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            value = (value,)
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{owner}: {name} must be a list, got {value!r}")
        item = typing.get_args(hint)[0]
        return tuple(check_type(owner, name, v, item) for v in value)
    if hint is bool:
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{owner}: {name} must be true or false, got {value!r}")
        return bool(value)
    if hint is int:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{owner}: {name} must be a whole number, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or not np.isfinite(value):
            raise ValueError(f"{owner}: {name} must be a finite number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError(f"{owner}: {name} must be a string, got {value!r}")
        return value
    return value


def parse_config(cls: type, config: Mapping[str, Any], owner: str, *, allowed: Sequence[str] = ()):
    """The frozen dataclass ``cls`` built from ``config``'s keys that name its fields.

    Keys that are neither its fields nor ``allowed`` (the benchmark's keys, which
    :class:`common.BenchmarkConfig` parses) are refused with the closest known name; every
    value is checked against its field's type; ``cls.__post_init__`` checks the ranges. Any
    problem is a ``ValueError`` of one line, prefixed with ``owner``.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    known = [*names, *allowed]
    for key in config:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(f"{owner}: unknown config key {key!r}{hint}")
    kw = {k: check_type(owner, k, config[k], hints[k]) for k in names if k in config}
    return cls(**kw)
