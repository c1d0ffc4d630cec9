"""CSV files the analysis writes (`trials.csv`, `epochs.csv`), through one function that keeps a
spreadsheet from running a cell as a formula.

Label names (`collapsed_onto`), error lines and config values come from the data and the trials: a
label named `=HYPERLINK(...)` or `@SUM(...)` would run as a formula when the CSV is opened in a
spreadsheet. A text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading
`'` (OWASP's CSV-injection advice), so it shows as the text it is. Numbers are left as they are
(`-0.5` is a number, not a formula).

Example:
    >>> [neutralise(v) for v in ["=HYPERLINK(\\"http://x\\")", "+1", "-x", "@SUM(A1)", "\\tcmd", "adam", -0.5, None]]
    ['\\'=HYPERLINK("http://x")', "'+1", "'-x", "'@SUM(A1)", "'\\tcmd", 'adam', -0.5, None]
"""

from __future__ import annotations

import io
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """A text cell that a spreadsheet would read as a formula, prefixed with `'`; anything else unchanged."""
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def csv_bytes(frame) -> bytes:
    """A pandas DataFrame as CSV (UTF-8, no index), every text cell and header `neutralise`d."""
    safe = frame.rename(columns=neutralise)
    for column in safe.columns:
        if safe[column].dtype == object or str(safe[column].dtype) in ("string", "str"):
            safe[column] = safe[column].map(neutralise)
    buf = io.StringIO()
    safe.to_csv(buf, index=False)
    return buf.getvalue().encode("utf-8")
