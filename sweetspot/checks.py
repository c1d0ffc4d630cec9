"""Value rules declared beside each config field, and the one checker that reads them.

A field says what values it takes where it is declared:

    epochs: int = field(default=3, metadata=rule(at_least(1)))

and `check_fields` walks a (nested) frozen dataclass once, after the YAML is converted, returning
`<dotted.key>: <what is wrong>` for every field whose rule refuses its value. A rule is a plain
function `value -> message | None`; a message that starts with a sub-key (`[1]: ...`, `.low: ...`)
names an item inside the field. Numbers must be finite: NaN and inf fail every numeric rule.

    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class C:
    ...     dropout: float = field(default=0.1, metadata=rule(between(0.0, 1.0)))
    ...     lrs: tuple[float, ...] = field(default=(1e-3,), metadata=rule(values(above(0.0))))
    >>> check_fields(C(dropout=1.0, lrs=(1e-3, float("nan"))), "model")
    ['model.dropout: must be in [0, 1), got 1.0', 'model.lrs[1]: must be a finite number, got nan']

Cross-field rules (one field against another) live with the config that holds both fields.
"""

from __future__ import annotations

import codecs
import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import field
from typing import Any

__all__ = [
    "Rule",
    "rule",
    "check_fields",
    "at_least",
    "above",
    "between",
    "did_you_mean",
    "one_of",
    "optional",
    "values",
    "each",
    "non_empty",
    "known_encoding",
    "registered",
    "all_of",
]

Rule = Callable[[Any], "str | None"]


def rule(check: Rule) -> dict[str, Rule]:
    """The `metadata` of a field whose values `check` decides."""
    return {"check": check}


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _g(x: float) -> str:
    return f"{x:g}"


def _compare(x: Any, ok: Callable[[float], bool], wanted: str) -> str | None:
    if isinstance(x, float) and not math.isfinite(x):
        return f"must be a finite number, got {x!r}"
    return None if _number(x) and ok(x) else f"must be {wanted}, got {x!r}"


def at_least(low: float) -> Rule:
    return lambda x: _compare(x, lambda v: v >= low, f">= {_g(low)}")


def above(low: float) -> Rule:
    return lambda x: _compare(x, lambda v: v > low, f"> {_g(low)}")


def between(low: float, high: float, *, include_low: bool = True, include_high: bool = False) -> Rule:
    """`[low, high)` by default."""

    def check(x: Any) -> str | None:
        ok = _number(x) and (x >= low if include_low else x > low) and (x <= high if include_high else x < high)
        span = f"{'[' if include_low else '('}{_g(low)}, {_g(high)}{']' if include_high else ')'}"
        return None if ok else f"must be in {span}, got {x!r}"

    return check


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """` (did you mean 'adam'?)` for the closest known name (difflib), else ''.

    Example:
        >>> did_you_mean("adma", ["adam", "adagrad"])
        " (did you mean 'adam'?)"
    """
    import difflib

    close = difflib.get_close_matches(str(name), [str(k) for k in known], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def one_of(*names: str) -> Rule:
    return lambda x: None if x in names else f"expected {', '.join(names[:-1])} or {names[-1]}, got {x!r}{did_you_mean(x, names)}"


def registered(table: Callable[[], Iterable[str]], what: str) -> Rule:
    """A name from a table (a registry) that is looked up only when checked (it may import torch)."""

    def check(x: Any) -> str | None:
        known = list(table())
        return None if x in known else f"unknown {what} {x!r}{did_you_mean(x, known)} (known: {', '.join(known)})"

    return check


def optional(check: Rule) -> Rule:
    """`None` (the field's "not set") passes; anything else must pass `check`."""
    return lambda x: None if x is None else check(x)


def non_empty(x: Any) -> str | None:
    return None if len(x) else "must not be empty"


def each(check: Rule) -> Rule:
    """Every item of a tuple passes `check`; a failing item is named by its index."""

    def check_each(items: Any) -> str | None:
        for i, item in enumerate(items):
            message = check(item)
            if message:
                return f"[{i}]{message if message[:1] in '[.' else ': ' + message}"
        return None

    return check_each


def all_of(*checks: Rule) -> Rule:
    def check(x: Any) -> str | None:
        return next((m for m in (c(x) for c in checks) if m), None)

    return check


def values(check: Rule) -> Rule:
    """A searched parameter's values: one number, a list of them, or a range `{low, high, log}`
    (any object with those attributes), whose ends pass `check`, low <= high, and a log range
    starts above 0."""

    def check_values(x: Any) -> str | None:
        if hasattr(x, "low") and hasattr(x, "high"):
            for end in ("low", "high"):
                message = check(getattr(x, end))
                if message:
                    return f".{end}: {message}"
            if x.low > x.high:
                return f": low ({x.low:g}) must be <= high ({x.high:g})"
            if getattr(x, "log", False) and x.low <= 0:
                return f".low: a log range needs low > 0, got {x.low:g}"
            return None
        if isinstance(x, tuple):
            return non_empty(x) or each(check)(x)
        return check(x)

    return check_values


def known_encoding(x: Any) -> str | None:
    try:
        codecs.lookup(x)
    except LookupError:
        return f"unknown text encoding {x!r} (e.g. utf-8, latin-1, cp1252)"
    return None


def check_fields(obj: Any, prefix: str = "") -> list[str]:
    """`<dotted.key>: <what is wrong>` for every field of `obj` (and of the dataclasses inside it)
    whose declared rule refuses its value, in declaration order."""
    problems = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}.{f.name}" if prefix else f.name
        check = f.metadata.get("check")
        message = check(value) if check else None
        if message:
            problems.append(f"{key}{message}" if message[:1] in "[.:" else f"{key}: {message}")
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            problems += check_fields(value, key)
    return problems


# Re-exported so that a config module needs one import for its field declarations.
field = field
