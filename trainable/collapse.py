"""The collapse rule, written once: the trainable flags each evaluation with it, the analysis
re-applies it to recorded rows (with the thresholds a user picks), the early collapse stop reads it,
and the tests use it as is. Pure Python: importing this pulls no torch.

Two signals, both reported by every evaluation (trainable/metrics.py):
- *constant predictions*: the entropy of the top-1 predicted labels is at most `entropy_fraction` ×
  the true-label entropy (`constant_predictions`): the model gives (nearly) every document the same
  top label. Such an evaluation never counts as training (trainable/score.py), whatever its P@1 and
  whatever that label's share of the validation documents.
- *the representation collapsed*: the effective rank (RankMe) of the pooled validation embeddings is
  at most `RANK_MAX`: every document maps to one point (the study's collapse).

An evaluation is **collapsed** when both hold. With constant predictions and a representation that
still tells documents apart it is **at the label-prior plateau** (`PLATEAU`): the head predicts the
label prior, the encoder has not collapsed, such runs can still leave it. Rows recorded without
`val_embed_rank` (older folders and tables) fall back to the rule those were recorded under:
constant predictions and P@1 at most the majority-label floor + `p1_margin` count as collapsed, and
`prediction_state` says the representation was not measured (`CONSTANT`).

The early collapse stop (`early_verdict`) decides from a trend in the reports of the first half of
the budget that a run will not beat the floor at the budget.

Example:
    >>> is_collapsed(pred_entropy=0.0, true_entropy=0.8, embed_rank=1.0, p1=0.42, majority_p1=0.33,
    ...              entropy_fraction=0.2, p1_margin=0.01)  # one label above the floor's, one point: collapsed
    True
    >>> prediction_state({"val_pred_entropy": 0.0, "val_true_entropy": 0.8, "val_embed_rank": 9.0},
    ...                  entropy_fraction=0.2, p1_margin=0.01)
    'at the label-prior plateau'
    >>> is_collapsed_row({"epoch": 1, "val_p1": 0.3}, entropy_fraction=0.2, p1_margin=0.01) is None
    True
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sweetspot.trainable import keys

COLLAPSED = "collapsed"  # prediction_state: constant predictions, representation collapsed (or, unmeasured, P@1 at the floor)
PLATEAU = "at the label-prior plateau"  # constant predictions, the representation not collapsed
CONSTANT = "constant predictions (representation not measured)"  # no val_embed_rank, P@1 above the floor
STATES = (COLLAPSED, PLATEAU, CONSTANT)


def is_collapsed(
    *,
    pred_entropy: float,
    true_entropy: float,
    embed_rank: float | None,
    p1: float | None,
    majority_p1: float | None,
    entropy_fraction: float,
    p1_margin: float,
    rank_max: float | None = None,
) -> bool:
    """The collapse rule (see the module docstring): constant predictions and a collapsed
    representation; without `embed_rank`, constant predictions and P@1 at the floor + `p1_margin`."""
    if not pred_entropy <= entropy_fraction * true_entropy:
        return False
    if _finite(embed_rank):
        return embed_rank <= (RANK_MAX if rank_max is None else rank_max)
    return _finite(p1) and _finite(majority_p1) and p1 <= majority_p1 + p1_margin


def constant_predictions(row: dict[str, Any], *, entropy_fraction: float) -> bool:
    """The predictions are (nearly) constant across documents at this evaluation: the entropy of
    the top-1 predicted labels is at most `entropy_fraction` × that of the true labels. Such an
    evaluation never counts as training (trainable/score.py), whatever its P@1. False when a
    signal is missing.

    Example:
        >>> constant_predictions({"val_pred_entropy": 0.0, "val_true_entropy": 0.8}, entropy_fraction=0.2)
        True
    """
    pred, true = row.get(keys.VAL_PRED_ENTROPY), row.get(keys.VAL_TRUE_ENTROPY)
    return _finite(pred) and _finite(true) and pred <= entropy_fraction * true


def prediction_state(
    row: dict[str, Any], *, entropy_fraction: float, p1_margin: float, rank_max: float | None = None
) -> str | None:
    """COLLAPSED, PLATEAU or CONSTANT for an evaluation with constant predictions; None when its
    predictions are not constant or the entropy signals are missing."""
    if not constant_predictions(row, entropy_fraction=entropy_fraction):
        return None
    rank = row.get(keys.VAL_EMBED_RANK)
    if _finite(rank):
        return COLLAPSED if rank <= (RANK_MAX if rank_max is None else rank_max) else PLATEAU
    p1, floor = row.get(keys.VAL_P1), row.get(keys.MAJORITY_P1)
    return COLLAPSED if _finite(p1) and _finite(floor) and p1 <= floor + p1_margin else CONSTANT


def is_collapsed_row(
    row: dict[str, Any], *, entropy_fraction: float, p1_margin: float, rank_max: float | None = None
) -> bool | None:
    """The rule on one reported row (`trainable.keys` names); the recorded `collapsed` flag when the
    entropy signals are missing; None when neither is there."""
    if _finite(row.get(keys.VAL_PRED_ENTROPY)) and _finite(row.get(keys.VAL_TRUE_ENTROPY)):
        return prediction_state(row, entropy_fraction=entropy_fraction, p1_margin=p1_margin, rank_max=rank_max) == COLLAPSED
    flag = row.get(keys.COLLAPSED)
    return bool(flag) if _finite(flag) else None


# ------------------------------------------------------------------------------------------------
# The early collapse stop. Every fraction below is of the budget, so one rule serves any budget; how
# each constant was chosen, and on which tables, is in docs/benchmarks.md ("Early collapse stop").

RANK_MAX = 1.1  # the embeddings collapsed to a point: effective rank (RankMe) of the pooled validation
# embeddings <= this (1 = every document maps to one direction)
PLATEAU_TOL = 0.25  # on the label-prior plateau: prior_bce / (1 + this) <= train_loss_recent <= (1 + this) x prior_bce;
# below that band the run fits the training labels better than their prior does
SLOW_FACTOR = 2.0  # too slow: at its rate of fall (log loss per epoch), the training loss needs more than this x
# the epochs left to come down to the plateau
MIN_REPORTS = 3  # a trend is read from at least this many reports: two points make a step, not a trend
HOLD_FRACTION = 1 / 9  # and they span at least this share of the budget
WINDOW_FRACTION = 1 / 2  # decide only from reports within this share of the budget; later: undecided
_EPOCH_TOL = 1e-3  # reported epochs are rounded (0.3333, 0.6667)
# The keys of a run's rows that `is_collapsed`, `collapsed_epochs`, `early_verdict` and the score
# (trainable/score.py) read: what a consumer of a run's reports (a stopper, the region searcher) must
# keep to reach the verdict the records do.
SIGNALS = (
    keys.EPOCH,
    keys.VAL_P1,
    keys.MAJORITY_P1,
    keys.COLLAPSED,
    keys.DIVERGED,
    keys.VAL_PRED_ENTROPY,
    keys.VAL_TRUE_ENTROPY,
    keys.VAL_EMBED_RANK,
    keys.TRAIN_LOSS_RECENT,
    keys.PRIOR_BCE,
)
ON_PRIOR = "collapsed onto the label prior"  # EarlyVerdict.cause
TOO_SLOW = "too slow for the budget"


@dataclass(frozen=True)
class EarlyVerdict:
    """What `early_verdict` decided, and on what."""

    doomed: bool | None  # True: stop it, it will not beat the floor at the budget; False: it left the floor; None: undecided
    reason: str
    cause: str | None  # when doomed: ON_PRIOR or TOO_SLOW
    epoch: float | None  # the epoch of the last report read (None: no reports)
    budget_epochs: float  # the budget the decision assumed
    window_end: float = math.inf  # the last epoch the rule decides at: past it a run stays undecided for good


def early_verdict(
    rows: Sequence[dict[str, Any]],
    *,
    budget_epochs: float,
    entropy_fraction: float,
    p1_margin: float,
    rank_max: float = RANK_MAX,
    plateau_tol: float = PLATEAU_TOL,
    slow_factor: float = SLOW_FACTOR,
    min_reports: int = MIN_REPORTS,
    hold_fraction: float = HOLD_FRACTION,
    window_fraction: float = WINDOW_FRACTION,
) -> EarlyVerdict:
    """Decides from the rows a run reported so far (`trainable.keys` names) whether it is doomed:
    whether at `budget_epochs` its P@1 will still not beat the majority-label floor.

    The rule reads a trend, never a step: its evidence is the last `min_reports` reports (at least
    three), spanning at least `hold_fraction` of the budget, the latest within the first
    `window_fraction` of it. A run is doomed when over that span either
      - it *collapsed onto the label prior*: at every report the collapse rule holds (prediction
        entropy ~0 and P@1 at the floor, `entropy_fraction` and `p1_margin` as in `is_collapsed`),
        the embeddings span one direction (`val_embed_rank` <= `rank_max`) and the training loss sits
        on the plateau (`train_loss_recent` within a factor 1 + `plateau_tol` of `prior_bce`): it has
        learnt the label prior and every document looks the same to it; or
      - it is *too slow for the budget*: its training loss stays above the plateau at every report
        and at *every* step of the span (a sustained rise, or a fall that stays slow) it would need
        more than `slow_factor` x the epochs left to reach the plateau. One fast step anywhere in the
        span leaves it undecided.
    A run whose loss is falling toward the plateau in time, is below it, or sits on it with embeddings
    that still differ (rank above `rank_max`: such runs can still leave the floor) is undecided (None).
    A run whose P@1 beat floor + `p1_margin` at any report has left the floor (False). Too few
    reports, reports past the window, a diverged run, or a missing signal: None (the reason says which).

    Example:
        >>> on_prior = {"val_pred_entropy": 0.0, "val_true_entropy": 0.8, "val_p1": 0.39, "majority_p1": 0.39,
        ...             "val_embed_rank": 1.0, "train_loss_recent": 0.151, "prior_bce": 0.150}
        >>> rows = [{**on_prior, "epoch": e} for e in (1 / 3, 2 / 3, 1)]
        >>> early_verdict(rows, budget_epochs=3, entropy_fraction=0.2, p1_margin=0.01).doomed
        True
        >>> early_verdict(rows[:2], budget_epochs=3, entropy_fraction=0.2, p1_margin=0.01).doomed is None  # two reports
        True
    """
    if not (_finite(budget_epochs) and budget_epochs > 0):
        raise ValueError(f"budget_epochs must be a number > 0, got {budget_epochs!r}")
    rows = sorted(rows, key=lambda r: float(r.get(keys.EPOCH, 0.0)))
    window_end = window_fraction * budget_epochs + _EPOCH_TOL

    def verdict(doomed: bool | None, reason: str, cause: str | None = None) -> EarlyVerdict:
        epoch = float(rows[-1].get(keys.EPOCH, 0.0)) if rows else None
        return EarlyVerdict(
            doomed=doomed,
            reason=f"{cause + ': ' if cause else ''}{reason} (budget {budget_epochs:g} epochs)",
            cause=cause,
            epoch=epoch,
            budget_epochs=float(budget_epochs),
            window_end=window_end,
        )

    if not rows:
        return verdict(None, "no reports yet")
    for row in rows:
        floor, p1 = row.get(keys.MAJORITY_P1), row.get(keys.VAL_P1)
        if _finite(floor) and _finite(p1) and p1 > floor + p1_margin:
            return verdict(
                False, f"left the floor at epoch {row.get(keys.EPOCH, 0):g}: P@1 {p1:.3f} > {floor:.3f} + {p1_margin:g}"
            )
    if any(row.get(keys.DIVERGED) for row in rows):
        return verdict(None, "diverged: the divergence stop's case")
    now = float(rows[-1].get(keys.EPOCH, 0.0))
    if now > window_end:
        return verdict(None, f"past the decision window (the first {window_fraction * budget_epochs:g} epochs)")
    span = rows[-max(min_reports, 2) :]
    hold = max(hold_fraction * budget_epochs, 2 * _EPOCH_TOL)
    first = float(span[0].get(keys.EPOCH, 0.0))
    if len(span) < min_reports or now - first < hold - _EPOCH_TOL:
        return verdict(
            None, f"{len(rows)} report(s) spanning {now - first:.3g} epochs: a trend needs {min_reports} over at least {hold:.3g}"
        )
    needed = (keys.TRAIN_LOSS_RECENT, keys.PRIOR_BCE, keys.VAL_EMBED_RANK, keys.VAL_P1, keys.MAJORITY_P1)
    missing = sorted({k for row in span for k in needed if not _finite(row.get(k))})
    if missing or not all(r[keys.PRIOR_BCE] > 0 and r[keys.TRAIN_LOSS_RECENT] > 0 for r in span):
        return verdict(None, f"no finite positive {', '.join(missing) or 'training loss / prior_bce'} to decide on")
    ratio = [r[keys.TRAIN_LOSS_RECENT] / r[keys.PRIOR_BCE] for r in span]  # loss / plateau, 1 = on it
    since = f"from epoch {first:g} to {now:g}"
    if all(
        is_collapsed_row(r, entropy_fraction=entropy_fraction, p1_margin=p1_margin)
        and r[keys.VAL_EMBED_RANK] <= rank_max
        and 1 / (1 + plateau_tol) <= q <= 1 + plateau_tol
        for r, q in zip(span, ratio)
    ):
        return verdict(
            True,
            f"{since}: embedding rank <= {max(r[keys.VAL_EMBED_RANK] for r in span):.3g}, P@1 at the "
            f"floor, training loss <= {max(ratio):.3g} x the prior plateau",
            ON_PRIOR,
        )
    if min(ratio) > 1 + plateau_tol:
        left = budget_epochs - now
        epochs = [float(r.get(keys.EPOCH, 0.0)) for r in span]
        rates = [math.log(a / b) / (tb - ta) for a, b, ta, tb in zip(ratio, ratio[1:], epochs, epochs[1:])]  # per epoch
        fastest = max(rates)
        need = math.log(ratio[-1] / (1 + plateau_tol)) / fastest if fastest > 0 else math.inf  # epochs to the plateau
        if need > slow_factor * left:
            return verdict(
                True,
                f"training loss {ratio[-1]:.3g} x the prior plateau at epoch {now:g}, falling at most "
                f"{fastest:.3g} log-units an epoch {since}, needs {need:.3g} epochs of the {left:.3g} left",
                TOO_SLOW,
            )
        return verdict(None, f"falling toward the plateau: {need:.3g} epochs to reach it at its fastest, {left:.3g} left")
    if ratio[-1] < 1 / (1 + plateau_tol):
        return verdict(None, f"training loss {ratio[-1]:.3g} x the prior plateau: below it, it learns more than the prior")
    return verdict(
        None,
        f"on or near the plateau, not collapsed onto it {since}: embedding rank up to "
        f"{max(r[keys.VAL_EMBED_RANK] for r in span):.3g}, training loss {min(ratio):.3g}..{max(ratio):.3g} "
        "x the plateau",
    )


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def collapsed_epochs(rows: Iterable[dict[str, Any]]) -> int:
    """The epochs a trial has stayed collapsed: the epoch ends (whole `epoch` values) reported
    within its newest run of collapsed evaluations. Any evaluation that is not collapsed, at an
    epoch end or between, ends the run."""
    ends = set()
    for row in reversed(list(rows)):
        if not row.get(keys.COLLAPSED):
            break
        epoch = row.get(keys.EPOCH)
        if isinstance(epoch, (int, float)) and float(epoch).is_integer():
            ends.add(float(epoch))  # a set: an epoch end reported twice counts once
    return len(ends)
