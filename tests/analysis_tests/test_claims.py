"""The study's claims checked on hand-written results folders with known verdicts, and on the two
committed ground-truth tables (the numbers docs/study.md shows)."""

from __future__ import annotations

import json

import pytest

from sweetspot.analysis.claims import CONTRADICTED, NOT_TESTED, PARTLY, REPRODUCED, check_claims
from sweetspot.analysis.results import load_results, results_from_table
from tests.analysis_tests.folders import FLOOR, row, trial, write_prepared, write_results
from tests.conftest import REPO

LABELS = [("joy", 5), ("anger", 3), ("neutral", 9)]  # neutral (id 2) is the most frequent training label


@pytest.fixture
def prepared(tmp_path):
    docs = [([101, 7, 102], [2]), ([101, 8, 102], [0])]
    return write_prepared(tmp_path / "prepared", LABELS, {"train": docs, "validation": docs, "test": docs}, majority=2)


def _onto(top, **signals):  # collapsed at the floor, one label on top of every document
    return [row(1, FLOOR, entropy=0.0, top=top, **signals), row(2, FLOOR, entropy=0.0, top=top, **signals)]


def test_each_claim_has_a_verdict_with_its_numbers(tmp_path, prepared):
    folder = write_results(tmp_path / "r", [
        trial("a4", "adam", 1e-4, [0.40, 0.50]), trial("a2", "adam", 1e-2, rows=_onto(2)),
        trial("w4", "adamw", 1e-4, [0.40, 0.50]), trial("w3", "adamw", 1e-3, [0.35, 0.45]),
        trial("m4", "amsgrad", 1e-4, [0.31, 0.31]), trial("m2", "amsgrad", 1e-2, rows=_onto(2)),
        trial("g2", "adagrad", 1e-2, [0.40, 0.50]), trial("g1", "adagrad", 1e-1, rows=_onto(1, val_pred_positive=1.0, val_top_margin=0.3)),
        trial("d1", "adadelta", 1.0, rows=_onto(0, val_pred_positive=0.0, val_top_margin=0.001)),
        trial("d0", "adadelta", 10.0, rows=[row(1, 0.0, diverged=1)], status="diverged"),
        trial("wd_a", "adam", 1e-4, [0.30, 0.30], wd=0.1), trial("wd_w", "adamw", 1e-4, [0.40, 0.50], wd=0.1),
        trial("wd_a2", "adam", 1e-4, [0.40, 0.50], wd=0.01), trial("wd_w2", "adamw", 1e-4, [0.40, 0.50], wd=0.01),
    ], epochs=2, prepared=prepared)
    claims = {c.number: c for c in check_claims(load_results(folder))}
    # (1) adam and adamw train at 1e-4, amsgrad (0.31 <= floor) does not
    assert claims[1].verdict == PARTLY and "2 of 3 Adam-family optimizers train within 0.5 decade of 1e-4" in claims[1].evidence
    assert claims[1].numbers["optimizers"]["amsgrad"]["near_1e-4"] is False
    assert "adagrad trains at 1.0e-02..8.3e-02" in claims[1].evidence  # the others too (interpolated to the level)
    # (2) adagrad trains at 1e-2; adadelta fails at both lrs (one nothing-predicted, one diverged)
    assert claims[2].verdict == PARTLY and claims[2].evidence.startswith("1 of 2 fail everywhere")
    # (3) AdamW trains at both weight decays; Adam fails at 0.1 only
    assert claims[3].verdict == PARTLY and "Adam fails at 1 of the 2 points where AdamW trains" in claims[3].evidence
    assert [(p["weight_decay"], p["adam_trains"], p["adamw_trains"]) for p in claims[3].numbers["points"]] == \
        [(0.01, True, True), (0.1, False, True)]
    # (4) failed: a2, m2 onto neutral; m4 not collapsed; g1 onto anger; d1 nothing predicted; d0 diverged; wd_a not collapsed
    c4 = claims[4]
    assert c4.verdict == PARTLY and c4.numbers["failed"] == 7, c4.evidence
    assert c4.numbers["counts"] == {"onto the most frequent label": 2, "onto another label": 1, "nothing predicted": 1,
                                    "not collapsed": 2, "diverged": 1}
    assert "(neutral (id 2))" in c4.evidence and "anger (id 1) ×1" in c4.evidence and "Kind unknown for 2" in c4.evidence


def test_claims_the_folder_cannot_test_say_why(tmp_path):
    folder = write_results(tmp_path / "r", [trial("a", "adam", 1e-2, [0.5, 0.6]), trial("b", "adam", 3e-2, [0.5, 0.55])], epochs=2)
    claims = check_claims(load_results(folder))
    assert [c.verdict for c in claims] == [NOT_TESTED] * 4
    assert "within 0.5 decade of 1e-4" in claims[0].evidence and "neither Adagrad nor Adadelta" in claims[1].evidence
    assert "needs Adam and AdamW each at >= 2 weight decays; here adam at 1 (0), adamw at 0 (none)" in claims[2].evidence
    assert claims[3].evidence == "no run failed: every run scored at the budget trains"


@pytest.mark.parametrize("table, verdicts, collapse", [
    ("go_emotions", [REPRODUCED, CONTRADICTED, NOT_TESTED, PARTLY], "56 of 66 failed runs"),
    ("reuters_all", [PARTLY, PARTLY, NOT_TESTED, PARTLY], "59 of 84 failed runs"),
])
def test_the_committed_ground_truth_tables(table, verdicts, collapse):
    results = results_from_table(json.loads((REPO / "bench" / "tables" / f"{table}.json").read_text()), source=table)
    claims = check_claims(results, labels={}, majority_label=None)
    assert [c.verdict for c in claims] == verdicts, [c.evidence for c in claims]
    assert claims[3].evidence.startswith(collapse) and "P@1 equal to the floor" in claims[3].evidence
