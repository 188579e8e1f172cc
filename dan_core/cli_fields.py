"""Dataclass fields that carry their own command-line help, and the parser generated from them.

A config option is written once, as a field::

    lr: float = option(0.1, "peak learning rate", group="optimisation")

and ``add_arguments(parser, Config)`` turns every field into a flag: ``--lr``; a bool that
defaults to False into ``--name``, one that defaults to True into ``--no-name``; a pair into
``--name-min`` / ``--name-max``; a nested dataclass into its own fields. A command that offers
only some of the fields names them (``only=``), and one whose default differs says so
(``defaults=``). ``from_args`` reads the parsed values back into the dataclass. ``ranged`` is the
one home of range-checked values: ``type=ranged(float, 0, 1)`` on a plain flag, or
``option(..., bounds=(0, 1))`` on a field (``bounds_of`` reads them back, e.g. to clamp a setting).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Collection, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def ranged(kind: type = float, low: float | None = None, high: float | None = None, *,
           high_open: bool = False) -> Callable[[str], Any]:
    """An argparse ``type=``: ``kind`` (int or float) within [low, high] (or [low, high) with ``high_open``);
    anything else is one line, e.g. ``argument --opacity: 5 is out of range: from 0 to 1``."""
    if low is not None and high is not None:
        span = f"from {low} to {'below ' if high_open else ''}{high}"
    elif low is not None:
        span = f"at least {low}"
    else:
        span = f"{'below' if high_open else 'at most'} {high}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'a whole number' if kind is int else 'a number'} ({span})") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number ({span})")
        if (low is not None and value < low) or (high is not None and (value >= high if high_open else value > high)):
            raise argparse.ArgumentTypeError(f"{text} is out of range: {span}")
        return value

    parse.__name__ = kind.__name__
    parse.span = span  # type: ignore[attr-defined]
    return parse


def option(default: Any, help: str, *, group: str = "", flag: str = "", choices: tuple[str, ...] | None = None,
           required: bool = False, nested: bool = False, bounds: tuple[float | None, float | None] | None = None,
           high_open: bool = False) -> Any:
    """A dataclass field with its help text; ``flag`` overrides the generated flag name; ``bounds`` (low, high) its
    range, the high end excluded with ``high_open``."""
    meta = {"help": help, "group": group, "flag": flag, "choices": choices, "required": required, "bounds": bounds,
            "high_open": high_open}
    if nested:
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _flag(f: dataclasses.Field, prefix: str = "") -> str:
    return f.metadata.get("flag") or "--" + (prefix + f.name).replace("_", "-")


def bounds_of(cls: type, name: str) -> tuple[float | None, float | None]:
    """The (low, high) range of a field of ``cls`` (None: unbounded on that side)."""
    return next(f for f in dataclasses.fields(cls) if f.name == name).metadata.get("bounds") or (None, None)


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, prefix: str = "", groups: dict[str, Any] | None = None,
                  only: Collection[str] | None = None, defaults: Mapping[str, Any] | None = None,
                  unset: str = "") -> argparse.ArgumentParser:
    """Add one flag per field of ``cls`` (recursing into nested dataclasses) to ``parser``.

    ``only``: the names of the fields to offer (all when None). ``defaults``: this command's own default for a
    field; None there means "not given" (e.g. the app's saved setting applies), which the help calls ``unset``.
    """
    groups = {} if groups is None else groups
    defaults = defaults or {}
    instance = cls()
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue  # an internal field, not an option
        default = getattr(instance, f.name)
        if dataclasses.is_dataclass(default):
            add_arguments(parser, type(default), prefix=prefix, groups=groups, only=only, defaults=defaults, unset=unset)
        elif only is None or f.name in only:
            name = f.metadata.get("group", "")  # none: the parser's own options
            if name and name not in groups:
                groups[name] = parser.add_argument_group(name)
            given = defaults.get(f.name, default)
            note = unset if f.name in defaults and given is None else ""
            _add_flag(groups[name] if name else parser, f, prefix, default, given, note)
    return parser


def _add_flag(group, f: dataclasses.Field, prefix: str, default: Any, given: Any, note: str) -> None:
    """The flag of field ``f`` whose dataclass default is ``default`` and whose default on this command is ``given``
    (``note``: what not giving it means, when that is not a value)."""
    meta = f.metadata
    dest = prefix + f.name
    text = f"{meta['help']} (default: {note})" if note else meta["help"]
    if isinstance(default, bool):
        if default:
            group.add_argument(meta.get("flag") or f"--no-{dest.replace('_', '-')}", dest=dest, action="store_false",
                               default=given, help=f"do not: {text}")
        else:
            group.add_argument(_flag(f, prefix), dest=dest, action="store_true", default=given, help=text)
    elif isinstance(default, tuple) and len(default) == 2:
        kind = type(default[0])
        group.add_argument(_flag(f, prefix) + "-min", dest=dest + "_min", type=kind, default=default[0],
                           help=f"{text} (lower end, default {default[0]})")
        group.add_argument(_flag(f, prefix) + "-max", dest=dest + "_max", type=kind, default=default[1],
                           help=f"{text} (upper end, default {default[1]})")
    else:
        kind = type(default) if default is not None else str
        if meta.get("bounds") and kind in (int, float):
            kind = ranged(kind, *meta["bounds"], high_open=meta.get("high_open", False))
        extra = {"choices": meta["choices"]} if meta.get("choices") else {}
        if meta.get("required"):
            extra["required"] = True
        shown = given not in ("", 0, None)
        group.add_argument(_flag(f, prefix), dest=dest, type=kind, default=given,
                           help=f"{text} (default: {given!r})" if shown else text, **extra)


def from_args(cls: type[T], args: argparse.Namespace, *, prefix: str = "") -> T:
    """Build ``cls`` from parsed flags (fields without a flag keep their defaults)."""
    defaults = cls()
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if "help" not in f.metadata:
            continue
        default = getattr(defaults, f.name)
        dest = prefix + f.name
        if dataclasses.is_dataclass(default):
            values[f.name] = from_args(type(default), args, prefix=prefix)
        elif isinstance(default, tuple) and len(default) == 2:
            values[f.name] = (getattr(args, dest + "_min"), getattr(args, dest + "_max"))
        elif hasattr(args, dest):
            values[f.name] = getattr(args, dest)
    return cls(**values)
