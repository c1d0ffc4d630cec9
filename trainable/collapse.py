"""The collapse rule, written once: the trainable flags each evaluation with it, the analysis
re-applies it to recorded rows (with the thresholds a user picks), and the tests use it as is.
Pure Python: importing this pulls no torch.

An evaluation is *collapsed* when the prediction entropy is at most `entropy_fraction` × the
true-label entropy AND P@1 is at most the majority-label floor + `p1_margin`. Both are needed: a
healthy model can have low entropy on a skewed label set, and a weak model can sit at the floor
while still ranking labels per document. (Signals: trainable/metrics.py; thresholds:
`train.collapse_entropy_fraction`, `train.collapse_p1_margin`.)

The early collapse stop (`early_verdict`) decides from the reports of the first third of the budget
that a run will not beat the floor at the budget; its constants and their calibration follow it.

Example:
    >>> is_collapsed(pred_entropy=0.0, true_entropy=0.8, p1=0.33, majority_p1=0.33, entropy_fraction=0.2, p1_margin=0.01)
    True
    >>> is_collapsed_row({"epoch": 1, "val_p1": 0.3}, entropy_fraction=0.2, p1_margin=0.01) is None
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

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


# ------------------------------------------------------------------------------------------------
# The early collapse stop. Calibrated on bench/tables/{go_emotions,reuters_all}.json (MiniLM,
# 28 and 362 labels, 5 optimizers x 9 lrs x 2 seeds, a budget of 3 epochs, 3 reports an epoch) by
# bench/early_stop.py, which reports its confusion matrix, savings and margins there
# (docs/benchmarks-early-stop.json). Every fraction below is of the budget, so one rule serves any
# budget; only 3 epochs is measured.

RANK_MAX = 1.1  # the embeddings collapsed to a point: effective rank (RankMe) of the pooled validation
# embeddings <= this (1 = every document maps to one direction). In their first epoch the ground truth's
# healthy runs never go below 1.27 (Adam at lr 3.2e-4 on reuters, at the floor until epoch 2).
PLATEAU_TOL = 0.25  # on the label-prior plateau: prior_bce / (1 + this) <= train_loss_recent <= (1 + this) x prior_bce;
# below that band the run fits the training labels better than their prior does
SLOW_FACTOR = 2.0  # too slow: at its recent rate of fall (log loss per epoch), the training loss needs more
# than this x the epochs left to come down to the plateau
HOLD_FRACTION = 1 / 9  # the evidence spans at least this share of the budget (1/3 epoch of 3: two reports 50 steps apart there)
WINDOW_FRACTION = 1 / 3  # decide only from reports within this share of the budget (the first epoch of 3); later: undecided
_EPOCH_TOL = 1e-3  # reported epochs are rounded (0.3333, 0.6667)
# The keys of a run's rows that `is_collapsed`, `collapsed_epochs` and `early_verdict` read: what a
# consumer of a run's reports (the region searcher) must keep to reach the verdict the records do.
SIGNALS = (keys.EPOCH, keys.VAL_P1, keys.MAJORITY_P1, keys.COLLAPSED, keys.DIVERGED, keys.VAL_PRED_ENTROPY,
           keys.VAL_TRUE_ENTROPY, keys.VAL_EMBED_RANK, keys.TRAIN_LOSS_RECENT, keys.PRIOR_BCE)
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


def early_verdict(rows: Sequence[dict[str, Any]], *, budget_epochs: float, entropy_fraction: float, p1_margin: float,
                  rank_max: float = RANK_MAX, plateau_tol: float = PLATEAU_TOL, slow_factor: float = SLOW_FACTOR,
                  hold_fraction: float = HOLD_FRACTION, window_fraction: float = WINDOW_FRACTION) -> EarlyVerdict:
    """Decides from the rows a run reported so far (`trainable.keys` names) whether it is doomed:
    whether at `budget_epochs` its P@1 will still not beat the majority-label floor.

    A run is doomed, at its latest report within the first `window_fraction` of the budget, when over
    the reports of the last `hold_fraction` of the budget (two or more) either
      - it *collapsed onto the label prior*: at every one of them the collapse rule holds (prediction
        entropy ~0 and P@1 at the floor, `entropy_fraction` and `p1_margin` as in `is_collapsed`),
        the embeddings span one direction (`val_embed_rank` <= `rank_max`) and the training loss sits
        on the plateau (`train_loss_recent` within a factor 1 + `plateau_tol` of `prior_bce`): it has
        learnt the label prior and every document looks the same to it; or
      - it is *too slow for the budget*: its training loss is still above the plateau and, falling at
        the rate it fell over that span (log loss per epoch), needs more than `slow_factor` x the
        epochs left to reach it.
    A run whose loss is falling toward the plateau in time, is below it, or sits on it with embeddings
    that still differ (rank above `rank_max`: such runs can still leave the floor) is undecided (None).
    A run whose P@1 beat floor + `p1_margin` at any report has left the floor (False). Reports past
    the window, a diverged run, or a missing signal: None (the reason says which).

    Example:
        >>> on_prior = {"val_pred_entropy": 0.0, "val_true_entropy": 0.8, "val_p1": 0.39, "majority_p1": 0.39,
        ...             "val_embed_rank": 1.0, "train_loss_recent": 0.151, "prior_bce": 0.150}
        >>> rows = [{**on_prior, "epoch": 1 / 3}, {**on_prior, "epoch": 2 / 3}]
        >>> early_verdict(rows, budget_epochs=3, entropy_fraction=0.2, p1_margin=0.01).doomed
        True
        >>> early_verdict(rows[:1], budget_epochs=3, entropy_fraction=0.2, p1_margin=0.01).doomed is None  # one report
        True
    """
    if not (_finite(budget_epochs) and budget_epochs > 0):
        raise ValueError(f"budget_epochs must be a number > 0, got {budget_epochs!r}")
    rows = sorted(rows, key=lambda r: float(r.get(keys.EPOCH, 0.0)))

    def verdict(doomed: bool | None, reason: str, cause: str | None = None) -> EarlyVerdict:
        epoch = float(rows[-1].get(keys.EPOCH, 0.0)) if rows else None
        return EarlyVerdict(doomed=doomed, reason=f"{cause + ': ' if cause else ''}{reason} (budget {budget_epochs:g} epochs)",
                            cause=cause, epoch=epoch, budget_epochs=float(budget_epochs))

    if not rows:
        return verdict(None, "no reports yet")
    for row in rows:
        floor, p1 = row.get(keys.MAJORITY_P1), row.get(keys.VAL_P1)
        if _finite(floor) and _finite(p1) and p1 > floor + p1_margin:
            return verdict(False, f"left the floor at epoch {row.get(keys.EPOCH, 0):g}: P@1 {p1:.3f} > {floor:.3f} + {p1_margin:g}")
    if any(row.get(keys.DIVERGED) for row in rows):
        return verdict(None, "diverged: the divergence stop's case")
    now = float(rows[-1].get(keys.EPOCH, 0.0))
    if now > window_fraction * budget_epochs + _EPOCH_TOL:
        return verdict(None, f"past the decision window (the first {window_fraction * budget_epochs:g} epochs)")
    hold = max(hold_fraction * budget_epochs, 2 * _EPOCH_TOL)  # > 0: the span's first report is earlier than its last
    start = next((i for i in range(len(rows) - 2, -1, -1) if float(rows[i].get(keys.EPOCH, 0.0)) <= now - hold + _EPOCH_TOL), None)
    if start is None:
        return verdict(None, f"the reports span less than {hold:.3g} epochs")
    span = rows[start:]
    needed = (keys.TRAIN_LOSS_RECENT, keys.PRIOR_BCE, keys.VAL_EMBED_RANK, keys.VAL_P1, keys.MAJORITY_P1)
    missing = sorted({k for row in span for k in needed if not _finite(row.get(k))})
    if missing or not all(r[keys.PRIOR_BCE] > 0 and r[keys.TRAIN_LOSS_RECENT] > 0 for r in span):
        return verdict(None, f"no finite positive {', '.join(missing) or 'training loss / prior_bce'} to decide on")
    ratio = [r[keys.TRAIN_LOSS_RECENT] / r[keys.PRIOR_BCE] for r in span]  # loss / plateau, 1 = on it
    since = f"from epoch {span[0].get(keys.EPOCH, 0):g} to {now:g}"
    if all(is_collapsed_row(r, entropy_fraction=entropy_fraction, p1_margin=p1_margin) and r[keys.VAL_EMBED_RANK] <= rank_max
           and 1 / (1 + plateau_tol) <= q <= 1 + plateau_tol for r, q in zip(span, ratio)):
        return verdict(True, f"{since}: embedding rank <= {max(r[keys.VAL_EMBED_RANK] for r in span):.3g}, P@1 at the "
                             f"floor, training loss <= {max(ratio):.3g} x the prior plateau", ON_PRIOR)
    if ratio[-1] > 1 + plateau_tol:
        rate = math.log(ratio[0] / ratio[-1]) / (now - float(span[0].get(keys.EPOCH, 0.0)))  # per epoch
        need = math.log(ratio[-1] / (1 + plateau_tol)) / rate if rate > 0 else math.inf  # epochs to reach the plateau
        left = budget_epochs - now
        if need > slow_factor * left:
            return verdict(True, f"training loss {ratio[-1]:.3g} x the prior plateau at epoch {now:g}, falling {rate:.3g} "
                                 f"log-units an epoch {since}, needs {need:.3g} epochs of the {left:.3g} left", TOO_SLOW)
        return verdict(None, f"falling toward the plateau: {need:.3g} epochs to reach it, {left:.3g} left")
    if ratio[-1] < 1 / (1 + plateau_tol):
        return verdict(None, f"training loss {ratio[-1]:.3g} x the prior plateau: below it, it learns more than the prior")
    return verdict(None, f"on the plateau, not collapsed onto it {since}: embedding rank up to "
                         f"{max(r[keys.VAL_EMBED_RANK] for r in span):.3g}, training loss up to {max(ratio):.3g} x the plateau")


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
