"""How the report writes its numbers, once: a learning rate, an edge, a region, a score. The answer,
the claims, the tables and the figures all call these, so one quantity reads the same everywhere.

- An lr: `1.3e-05`.
- A resolved edge (its bracket spans at most the resolution): `1.3e-05 (±0.10 decade)`; an unresolved
  one: `between 3.2e-04 and 3.2e-03 (not resolved)`; an open one (it trains at the outermost lr
  sampled): `open below 1.0e-06`.
- A region: `1.3e-05 (±0.10 decade) .. between 3.2e-04 and 3.2e-03 (not resolved), 1.4 decades`.
- A configuration's score: `config score 0.469` (mean − std of its runs' scores, analysis/sweetspot.py).

Example:
    >>> from sweetspot.analysis.sweetspot import Interval
    >>> i = Interval(lower_lr=1.3e-5, upper_lr=5e-4, width_decades=1.585, best_lr=1e-4, best_value=0.5, best_weight_decay=0.0,
    ...              n_trials=4, lower_open=False, upper_open=False, lower_resolution=0.1, upper_resolution=0.8,
    ...              lower_bracket=(1e-5, 1.6e-5), upper_bracket=(3.2e-4, 3.2e-3))
    >>> region_text(i)
    '1.3e-05 (±0.10 decade) .. between 3.2e-04 and 3.2e-03 (not resolved), 1.6 decades'
    >>> next_trials(i)  # the unresolved bracket's midpoint
    ['1.0e-03 (upper edge)']
"""

from __future__ import annotations

import math
from typing import Any

CONFIG_SCORE = "config score"  # a configuration's mean − std of its runs' scores
BEST_RUN = "best run"  # the best of a configuration's runs' scores
CONFIG_SCORE_WHAT = "mean − std of its runs' scores; a run's score: its best val P@1 over its epoch ends <= the budget"


def lr_text(x: Any) -> str:
    """`1.3e-05`; `-` when not a finite number."""
    return f"{x:.1e}" if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else "-"


def edge_text(interval: Any, side: str) -> str:
    """One edge of an `Interval` in words (the module docstring)."""
    lower = side == "lower"
    if interval.lower_open if lower else interval.upper_open:
        return f"open {'below' if lower else 'above'} {lr_text(interval.lower_lr if lower else interval.upper_lr)}"
    edge = interval.lower_lr if lower else interval.upper_lr
    bracket = interval.lower_bracket if lower else interval.upper_bracket
    resolution = interval.lower_resolution if lower else interval.upper_resolution
    if bracket is None or interval.resolved(side):
        return f"{lr_text(edge)} (±{resolution:.2f} decade)"
    return f"between {lr_text(bracket[0])} and {lr_text(bracket[1])} (not resolved)"


def region_text(interval: Any) -> str:
    """Both edges and the width in decades; a single sampled lr as itself."""
    if interval.width_decades == 0 and interval.lower_open and interval.upper_open:
        return f"{lr_text(interval.lower_lr)}, the only lr scored (edges unknown)"
    if interval.width_decades == 0:
        return (
            f"{lr_text(interval.lower_lr)} only (lower edge {edge_text(interval, 'lower')}, "
            f"upper edge {edge_text(interval, 'upper')})"
        )
    width = f"{interval.width_decades:.1f} decades" + (" or more" if interval.lower_open or interval.upper_open else "")
    return f"{edge_text(interval, 'lower')} .. {edge_text(interval, 'upper')}, {width}"


def next_trials(interval: Any) -> list[str]:
    """What one more trial would test, per edge not resolved: the bracket's midpoint lr (log scale),
    or, for an open edge, the lr one resolution step beyond the sampled range."""
    out = []
    for side in ("lower", "upper"):
        lower = side == "lower"
        bracket = interval.lower_bracket if lower else interval.upper_bracket
        if interval.lower_open if lower else interval.upper_open:
            edge = interval.lower_lr if lower else interval.upper_lr
            out.append(f"{lr_text(edge * 10 ** (-interval.resolution if lower else interval.resolution))} ({side} edge, open)")
        elif bracket is not None and not interval.resolved(side):
            out.append(f"{lr_text(math.sqrt(bracket[0] * bracket[1]))} ({side} edge)")
    return out
