"""Dataclass fields that carry their own command-line help, and the parser generated from them.

A config option is written once, as a field::

    lr: float = option(0.1, "peak learning rate", group="optimisation")

and ``add_arguments(parser, Config)`` turns every field into a flag: ``--lr``; a bool that
defaults to False into ``--name``, one that defaults to True into ``--no-name``; a pair into
``--name-min`` / ``--name-max``; a nested dataclass into its own fields. ``from_args`` reads
the parsed values back into the dataclass. ``ranged`` is the one home of range-checked values:
``type=ranged(float, 0, 1)`` on a plain flag, or ``option(..., bounds=(0, 1))`` on a field.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable
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
           required: bool = False, nested: bool = False, bounds: tuple[float | None, float | None] | None = None) -> Any:
    """A dataclass field with its help text; ``flag`` overrides the generated flag name; ``bounds`` (low, high) its range."""
    meta = {"help": help, "group": group, "flag": flag, "choices": choices, "required": required, "bounds": bounds}
    if nested:
        return dataclasses.field(default_factory=default, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _flag(f: dataclasses.Field, prefix: str = "") -> str:
    return f.metadata.get("flag") or "--" + (prefix + f.name).replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type, *, prefix: str = "",
                  groups: dict[str, Any] | None = None) -> argparse.ArgumentParser:
    """Add one flag per field of ``cls`` (recursing into nested dataclasses) to ``parser``."""
    groups = {} if groups is None else groups
    defaults = cls()
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if "help" not in meta:
            continue  # an internal field, not an option
        default = getattr(defaults, f.name)
        name = meta.get("group") or "options"
        group = groups.setdefault(name, parser.add_argument_group(name))
        if dataclasses.is_dataclass(default):
            add_arguments(parser, type(default), prefix=prefix, groups=groups)
            continue
        dest = prefix + f.name
        text = meta["help"]
        if isinstance(default, bool):
            if default:
                group.add_argument(meta.get("flag") or f"--no-{dest.replace('_', '-')}", dest=dest, action="store_false",
                                   help=f"do not: {text}")
            else:
                group.add_argument(_flag(f, prefix), dest=dest, action="store_true", help=text)
        elif isinstance(default, tuple) and len(default) == 2:
            kind = type(default[0])
            group.add_argument(_flag(f, prefix) + "-min", dest=dest + "_min", type=kind, default=default[0],
                               help=f"{text} (lower end, default {default[0]})")
            group.add_argument(_flag(f, prefix) + "-max", dest=dest + "_max", type=kind, default=default[1],
                               help=f"{text} (upper end, default {default[1]})")
        else:
            kind = type(default) if default is not None else str
            if meta.get("bounds") and kind in (int, float):
                kind = ranged(kind, *meta["bounds"])
            extra = {"choices": meta["choices"]} if meta.get("choices") else {}
            if meta.get("required"):
                extra["required"] = True
            group.add_argument(_flag(f, prefix), dest=dest, type=kind, default=default,
                               help=f"{text} (default: {default!r})" if default not in ("", 0) else text, **extra)
    return parser


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
