"""Read a results folder back and find where fine-tuning trains: sweet spots, collapse, importance,
baselines, the study's claims checked (`check_claims`), and the report (see docs/analysis.md); `recovery.score` grades an answer's sweet spots
against a ground truth's. No Ray; torch only for the attention figure.

Example:
    >>> from sweetspot.analysis import analyze, load_results, write_report
    >>> analysis = analyze(load_results("results/quickstart"), delta=0.02)  # doctest: +SKIP
    >>> [(s.optimizer, s.found) for s in analysis.spots.optimizers]  # doctest: +SKIP
    [('adam', True), ('adagrad', False)]
    >>> write_report(analysis)  # doctest: +SKIP
    'results/quickstart/report'
"""

from sweetspot.analysis.baselines import Baselines, compute_baselines
from sweetspot.analysis.claims import Claim, check_claims
from sweetspot.analysis.collapse import CollapseReport, TrialCollapse, diagnose_collapse
from sweetspot.analysis.importance import Importances, param_importances
from sweetspot.analysis.report import Analysis, analyze, format_answer, format_summary, format_table, to_json, write_report
from sweetspot.analysis.results import (
    Results,
    ResultsError,
    TrialResult,
    epoch_table,
    load_results,
    results_from_table,
    results_to_table,
    trial_table,
)
from sweetspot.analysis.sweetspot import SweetSpot, SweetSpots, find_sweet_spots

__all__ = [
    "Analysis",
    "Baselines",
    "Claim",
    "CollapseReport",
    "Importances",
    "Results",
    "ResultsError",
    "SweetSpot",
    "SweetSpots",
    "TrialCollapse",
    "TrialResult",
    "analyze",
    "check_claims",
    "compute_baselines",
    "diagnose_collapse",
    "epoch_table",
    "find_sweet_spots",
    "format_answer",
    "format_summary",
    "format_table",
    "load_results",
    "param_importances",
    "results_from_table",
    "results_to_table",
    "to_json",
    "trial_table",
    "write_report",
]
