"""The collapse rule, written once: the trainable flags each evaluation with it, the analysis
re-applies it to recorded rows (with the thresholds a user picks), and the tests use it as is.
Pure Python: importing this pulls no torch.

An evaluation is *collapsed* when the prediction entropy is at most `entropy_fraction` × the
true-label entropy AND P@1 is at most the majority-label floor + `p1_margin`. Both are needed: a
healthy model can have low entropy on a skewed label set, and a weak model can sit at the floor
while still ranking labels per document. (Signals: trainable/metrics.py; thresholds:
`train.collapse_entropy_fraction`, `train.collapse_p1_margin`.)

Example:
    >>> is_collapsed(pred_entropy=0.0, true_entropy=0.8, p1=0.33, majority_p1=0.33, entropy_fraction=0.2, p1_margin=0.01)
    True
    >>> is_collapsed_row({"epoch": 1, "val_p1": 0.3}, entropy_fraction=0.2, p1_margin=0.01) is None
    True
"""

from __future__ import annotations

import math
from typing import Any

from sweetspot.trainable import keys


def is_collapsed(*, pred_entropy: float, true_entropy: float, p1: float, majority_p1: float,
                 entropy_fraction: float, p1_margin: float) -> bool:
    """The collapse rule (see the module docstring)."""
    return pred_entropy <= entropy_fraction * true_entropy and p1 <= majority_p1 + p1_margin


def is_collapsed_row(row: dict[str, Any], *, entropy_fraction: float, p1_margin: float) -> bool | None:
    """The rule on one reported row (`trainable.keys` names); the recorded `collapsed` flag when a
    signal is missing; None when neither is there."""
    signals = (row.get(keys.VAL_PRED_ENTROPY), row.get(keys.VAL_TRUE_ENTROPY), row.get(keys.VAL_P1), row.get(keys.MAJORITY_P1))
    if all(_finite(s) for s in signals):
        pred, true, p1, floor = signals
        return is_collapsed(pred_entropy=pred, true_entropy=true, p1=p1, majority_p1=floor,
                            entropy_fraction=entropy_fraction, p1_margin=p1_margin)
    flag = row.get(keys.COLLAPSED)
    return bool(flag) if _finite(flag) else None


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
