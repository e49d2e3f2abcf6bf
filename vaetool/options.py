"""What every component's options are: a frozen dataclass whose fields have defaults and a
one-line doc (``option(default, "doc")``), built from a plain dict by :func:`make_options`.

A component (an objective, a likelihood, …) sets ``Options`` to such a dataclass; its
``__post_init__`` checks ranges. The dict comes from a config file, the flags, ``--option
KEY=VALUE`` or a checkpoint's metadata; a key the component does not have, or a value of the
wrong type, is one :class:`ConfigError` naming the field and the component.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from typing import Any

from vaetool.errors import ConfigError, field


def option(default: Any, doc: str) -> Any:
    """A field with ``default`` and its one-line ``doc`` (shown by ``vaetool components``)."""
    return dataclasses.field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class NoOptions:
    """A component that takes no options."""


@dataclass(frozen=True)
class OptionDoc:
    name: str
    type: str
    default: Any
    doc: str


def option_docs(options_type: type) -> list[OptionDoc]:
    """Each option's name, type, default and one-line doc, in declaration order."""
    return [
        OptionDoc(f.name, str(f.type), f.default, f.metadata.get("doc", ""))
        for f in fields(options_type)
    ]


def option_names(options_type: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(options_type))


def type_ok(value: Any, hint: str) -> bool:
    """Whether ``value`` fits a field's annotation (the few forms options and configs use)."""
    if hint.endswith(" | None"):
        return value is None or type_ok(value, hint.removesuffix(" | None"))
    if hint.startswith("tuple["):
        inner = hint[len("tuple[") : -1].split(", ")[0]
        return isinstance(value, tuple) and all(type_ok(v, inner) for v in value)
    if hint.startswith("dict["):
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    if hint == "bool":
        return isinstance(value, bool)
    if hint == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if hint == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str) if hint == "str" else True


def make_options(kind: str, name: str, options_type: type, raw: dict[str, Any]) -> Any:
    """``options_type`` from ``raw`` (defaults for what is absent) for the component ``name``
    of family ``kind``; an option it does not have, a value of the wrong type or out of range
    is a ConfigError naming the field."""
    if not isinstance(raw, dict):
        raise ConfigError(f"‹{kind}› {name}: options must be a table, got {type(raw).__name__}")
    known = {f.name: f for f in fields(options_type)}
    for key, value in raw.items():
        if key not in known:
            valid = ", ".join(field(n) for n in sorted(known)) or "none"
            raise ConfigError(
                f"{field(key)} does not apply to ‹{kind}› {name} (its options: {valid})"
            )
        hint = str(known[key].type)
        if not type_ok(value, hint):
            raise ConfigError(f"{field(key)} {value!r} (‹{kind}› {name}): expected {hint}")
    try:
        return options_type(**raw)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"‹{kind}› {name}: {err}") from None


def comma_list(name: str, text: str, expected: str) -> tuple[str, ...]:
    """``"a, b,c"`` -> ("a", "b", "c") for the option ``name`` (a field, written ‹name› in the
    error); an empty list or an empty item is one ConfigError saying what was ``expected``."""
    items = tuple(item.strip() for item in text.split(","))
    if not text.strip() or not all(items):
        raise ConfigError(f"{field(name)} {text!r}: expected {expected}")
    return items


def comma_ints(name: str, text: str, expected: str) -> tuple[int, ...]:
    """``"0,5,9"`` -> (0, 5, 9) for the option ``name``; anything but comma-separated integers
    is one ConfigError saying what was ``expected``."""
    try:
        return tuple(int(item) for item in comma_list(name, text, expected))
    except ValueError:
        raise ConfigError(f"{field(name)} {text!r}: expected {expected}") from None
