"""The report's opening in words, per optimizer: a sweet spot with its edges, none (and why), unknown."""

from __future__ import annotations

from sweetspot.analysis.answer import answer
from sweetspot.analysis.report import analyze
from sweetspot.analysis.results import load_results
from tests.analysis_tests.folders import FLOOR, row, trial, write_prepared, write_results

LABELS = [("joy", 5), ("anger", 3), ("neutral", 9)]  # neutral (id 2) is the most frequent training label


def test_each_optimizer_gets_its_verdict_in_words(tmp_path):
    docs = [([101, 7, 102], [2]), ([101, 8, 102], [0])]
    prepared = write_prepared(tmp_path / "prepared", LABELS, {"train": docs, "validation": docs, "test": docs}, majority=2)
    onto = [row(e, FLOOR, entropy=0.0, top=2, val_pred_positive=0.0, val_top_margin=0.2) for e in (1, 2, 3)]
    noise = [row(e, 0.0, entropy=0.0, top=1, val_pred_positive=0.0, val_top_margin=0.0001) for e in (1, 2, 3)]
    folder = write_results(
        tmp_path / "r",
        [
            trial("a1", "adam", 1e-5, [0.3, 0.3, 0.3]),
            trial("a2", "adam", 1e-4, [0.4, 0.5, 0.6]),
            trial("a3", "adam", 1e-3, rows=onto),
            trial("g1", "adagrad", 1e-2, rows=onto),
            trial("g2", "adagrad", 1e-1, rows=onto),
            trial("d1", "adadelta", 1.0, rows=noise),
            trial("d2", "adadelta", 10.0, rows=noise),
            trial("w1", "adamw", 1e-4, [0.5], status="early_stopped"),
        ],
        epochs=3,
        prepared=prepared,
    )
    opening = answer(analyze(load_results(folder), baselines=False))
    said = dict(opening.optimizers)
    # 1e-5 and 1e-3 do not train, 1e-4 does: both edges in one-decade brackets, not resolved at 0.5 decade
    assert said["adam"].startswith(
        "trains at between 1.0e-05 and 1.0e-04 (not resolved) .. between 1.0e-04 and 1.0e-03 "
        "(not resolved), 0.9 decades; trains well (config score >= 0.527, 75% of its best gain"
    )
    assert said["adam"].endswith(
        "best config score 0.600 at 1.0e-04; one more trial at 3.2e-05 (lower edge), 3.2e-04 (upper edge) would test them"
    )
    assert said["adagrad"] == "none: every lr tried collapsed onto neutral (id 2)"
    assert said["adadelta"] == "none: every lr tried collapsed with nothing predicted"
    assert said["adamw"] == "unknown: no trial reached the budget (3 epochs)"
    assert opening.best.startswith(
        "adam lr 1.0e-04: config score 0.600 (val_p1, 1 run), against the majority-label floor 0.300, TF-IDF"
    )
    assert opening.collapse.startswith(
        "5 of 8 runs collapsed at their last evaluation (onto neutral (id 2, the most "
        "frequent training label) ×3; 2 with nothing predicted"
    )


def test_a_folder_where_no_trial_reached_the_budget_still_gets_its_report(tmp_path):
    """An interrupted ASHA search (every trial stopped early): no level to train against, every verdict
    unknown or not tested, and the report is still written."""
    from sweetspot.analysis.report import write_report

    folder = write_results(
        tmp_path / "r",
        [
            trial("a", "adam", 1e-4, [0.4], status="early_stopped"),
            trial("g", "adagrad", 1e-2, [0.3, 0.35], status="early_stopped"),
        ],
        epochs=3,
    )
    analysis = analyze(load_results(folder), baselines=False)
    opening = answer(analysis)
    assert dict(opening.optimizers) == {
        "adam": "unknown: no trial reached the budget (3 epochs)",
        "adagrad": "unknown: no trial reached the budget (3 epochs)",
    }
    assert opening.best.startswith("no configuration scored at the budget")
    assert [c.evidence for c in analysis.claims][3] == "no run reached the budget (3 epochs)"
    page = tmp_path / "out" / "report.html"
    write_report(analysis, str(tmp_path / "out"), attention=False)
    assert "none is, so far" in page.read_text()
