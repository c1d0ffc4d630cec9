"""Hyperparameter importance of optimizer, lr and weight decay: Optuna's PED-ANOVA and fANOVA.

The completed trials (a finite score at the comparison epoch — the budget — so neither censored
nor failed, and not diverged: a diverged trial's metric is a placeholder) are added to an in-memory Optuna study with one distribution per
parameter over all trials — a categorical for `optimizer`, a log-uniform float for `lr`, a float
for `weight_decay` (log-uniform when every value is positive). This works for grid searches too
(which have no Optuna study), and gives each parameter one distribution even where TPE's
define-by-run space gave each optimizer its own lr range. Parameters with one value are left out.

Importances are computed only from `MIN_TRIALS` completed trials on, and with at least one varying
parameter; otherwise `available` is False and `reason` says why. PED-ANOVA's `target_quantile` is
0.1 (Optuna's default) when that leaves ≥ 5 trials above it, else 5/n up to 0.5 (Optuna's note:
results are unstable with fewer than 5 trials above the quantile); when ties at that quantile
select every trial (many runs at the floor), 0.25 and then 0.1 are tried, and PED-ANOVA is left
empty with a note if all select every trial. fANOVA uses 64 trees, seed 0.
Both are normalised to sum to 1.

Example:
    >>> imp = param_importances(results, comparison)  # doctest: +SKIP
    >>> imp.ped_anova  # doctest: +SKIP
    {'lr': 0.71, 'optimizer': 0.22, 'weight_decay': 0.07}
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

from sweetspot.analysis.results import PARAMS, Results, finite
from sweetspot.analysis.sweetspot import Comparison

MIN_TRIALS = 5
MIN_TOP = 5  # trials wanted above PED-ANOVA's target quantile


@dataclass(frozen=True)
class Importances:
    available: bool
    reason: str | None
    n_trials: int
    params: tuple[str, ...] = ()
    ped_anova: dict[str, float] = field(default_factory=dict)
    fanova: dict[str, float] = field(default_factory=dict)
    target_quantile: float | None = None
    notes: tuple[str, ...] = ()  # warnings Optuna raised (e.g. all values equal)


def param_importances(results: Results, comparison: Comparison, *, mode: str | None = None) -> Importances:
    """PED-ANOVA and fANOVA importances over the completed trials (see the module docstring)."""
    mode = mode or results.mode
    points = []
    for t in results.trials:
        score = comparison.scores[t.trial_id]
        p = results.params(t)
        if t.diverged or not finite(score.value) or not finite(p["lr"]) or p["lr"] <= 0 or not finite(p["weight_decay"]):
            continue
        points.append((p, score.value))
    n = len(points)
    if n < MIN_TRIALS:
        return Importances(False, f"{n} completed trial(s); importances need at least {MIN_TRIALS}", n)
    varying = tuple(k for k in PARAMS if len({p[k] for p, _ in points}) > 1)
    if not varying:
        return Importances(False, "no parameter takes more than one value", n)
    if len({v for _, v in points}) == 1:
        return Importances(False, f"all {n} completed trials have the same score: nothing to attribute", n)

    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = {}
    for k in varying:
        values = [p[k] for p, _ in points]
        if k == "optimizer":
            distributions[k] = CategoricalDistribution(sorted(set(values)))
        else:
            lo, hi = float(min(values)), float(max(values))
            distributions[k] = FloatDistribution(lo, hi, log=lo > 0)
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={k: p[k] if k == "optimizer" else float(p[k]) for k in varying},
                distributions=distributions,
                value=float(v),
            )
            for p, v in points
        ]
    )
    first = 0.1 if n * 0.1 >= MIN_TOP else min(0.5, MIN_TOP / n)
    notes: list[str] = []

    def run(name: str, evaluator) -> tuple[dict[str, float], list[str]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                values = optuna.importance.get_param_importances(study, evaluator=evaluator)
            except RuntimeError as e:  # e.g. fANOVA's "zero total variance in all trees"
                return {}, [f"{name}: {e}"]
        said = [f"{name}: {str(w.message).splitlines()[0]}" for w in caught if "experimental" not in str(w.message)]
        return values, said

    # Ties at the target quantile (many runs at the floor) can put every trial above it, and
    # PED-ANOVA then returns equal importances: try smaller quantiles before giving up.
    ped, quantile = {}, None
    for q in dict.fromkeys((first, 0.25, 0.1)):
        ped, said = run("ped_anova", optuna.importance.PedAnovaImportanceEvaluator(target_quantile=q))
        if ped and not any("will be equal" in x for x in said):
            quantile = q
            notes += said
            break
    else:
        notes.append(f"ped_anova: the top quantiles ({first:g}, 0.25, 0.1) all select every trial (ties): not informative")
        ped = {}
    fanova, said = run("fanova", optuna.importance.FanovaImportanceEvaluator(seed=0))
    notes += said
    clean = lambda d: {k: float(v) if math.isfinite(v) else 0.0 for k, v in d.items()}  # noqa: E731
    return Importances(True, None, n, varying, clean(ped), clean(fanova), quantile, tuple(dict.fromkeys(notes)))
