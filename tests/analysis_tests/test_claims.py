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


def _onto(top, p1=FLOOR, rank=1.0, **signals):  # one label on top of every document; rank 1: every document one point
    return [row(e, p1, entropy=0.0, top=top, val_embed_rank=rank, **signals) for e in (1, 2)]


def _claims(tmp_path, trials, **kwargs):
    return {c.number: c for c in check_claims(load_results(write_results(tmp_path / "r", trials, epochs=2, **kwargs)))}


def test_claim_1_needs_a_region_near_and_narrow(tmp_path, prepared):
    """Adam trains from 1e-5 to 1e-2 (3 decades: near 1e-4 but wide), AMSGrad at 1e-4 only: partly."""
    trains, fails = [0.40, 0.50], [0.30, 0.30]
    claims = _claims(
        tmp_path,
        [
            *(trial(f"a{i}", "adam", lr, trains) for i, lr in enumerate((1e-5, 1e-4, 1e-3, 1e-2))),
            trial("a_lo", "adam", 1e-6, fails),
            trial("a_hi", "adam", 1e-1, fails),
            trial("m_lo", "amsgrad", 10**-4.5, fails),
            trial("m", "amsgrad", 1e-4, trains),
            trial("m_hi", "amsgrad", 10**-3.5, fails),
        ],
        prepared=prepared,
    )
    c1 = claims[1]
    assert c1.verdict == PARTLY and c1.evidence.startswith("1 of 2 Adam-family optimizers train only near 1e-4"), c1.evidence
    assert c1.numbers["optimizers"]["adam"]["near_1e-4"] and not c1.numbers["optimizers"]["adam"]["narrow"]
    assert c1.numbers["optimizers"]["adam"]["width_decades"] > 3 and "near but wide" in c1.evidence
    assert c1.numbers["optimizers"]["amsgrad"]["narrow"] and "near and narrow" in c1.evidence


def test_claim_2_needs_a_positive_control(tmp_path, prepared):
    """Adagrad and Adadelta fail, but so does everything else: not tested. With Adam training: reproduced."""
    fails = [0.30, 0.30]
    runs = [trial("g", "adagrad", 1e-2, fails), trial("d", "adadelta", 1.0, fails), trial("a", "adam", 1e-4, fails)]
    assert _claims(tmp_path / "none", runs, prepared=prepared)[2].verdict == NOT_TESTED
    assert "no positive control" in _claims(tmp_path / "none2", runs, prepared=prepared)[2].evidence
    claims = _claims(tmp_path / "control", runs[:2] + [trial("a", "adam", 1e-4, [0.4, 0.5])], prepared=prepared)
    assert claims[2].verdict == REPRODUCED and claims[2].evidence.endswith("positive control: adam trains here")


def test_claim_3_counts_only_lrs_where_adam_trains_without_weight_decay(tmp_path, prepared):
    """At 1e-3 Adam fails even at weight decay 0: its failure with weight decay is not the decay's and is
    not counted. At 1e-4 Adam trains at 0 and fails at 0.1 where AdamW trains: reproduced, 1 of 1."""
    trains, fails = [0.40, 0.50], [0.30, 0.30]
    claims = _claims(
        tmp_path,
        [
            trial("a0", "adam", 1e-4, trains),
            trial("a1", "adam", 1e-4, fails, wd=0.1),
            trial("w0", "adamw", 1e-4, trains),
            trial("w1", "adamw", 1e-4, trains, wd=0.1),
            trial("b0", "adam", 1e-3, fails),
            trial("b1", "adam", 1e-3, fails, wd=0.1),
            trial("v0", "adamw", 1e-3, trains),
            trial("v1", "adamw", 1e-3, trains, wd=0.1),
        ],
        prepared=prepared,
    )
    c3 = claims[3]
    assert (
        c3.verdict == REPRODUCED
        and "fails at 1 of the 1 points where AdamW trains and Adam trains at weight decay 0" in c3.evidence
    )
    assert [(p["lr"], p["counted"]) for p in c3.numbers["points"]] == [(pytest.approx(1e-4), True), (pytest.approx(1e-3), False)]


def test_claim_4_checks_the_representation_and_the_label_and_names_the_plateau(tmp_path, prepared):
    claims = _claims(
        tmp_path,
        [
            trial("ok", "adam", 1e-4, [0.40, 0.50]),
            trial("most", "adam", 1e-2, rows=_onto(2)),  # collapsed onto neutral, the most frequent
            trial("second", "adam", 3e-2, rows=_onto(0, p1=0.35)),  # collapsed onto joy, 2nd most frequent, above the floor
            trial("plateau", "adam", 1e-5, rows=_onto(2, rank=15.0)),  # constant predictions, representation spread
            trial("nothing", "adadelta", 1.0, rows=_onto(1, val_pred_positive=0.0, val_top_margin=0.001)),
            trial("slow", "adam", 1e-6, [0.25, 0.26]),  # spread predictions, below the floor
            trial("nan", "adadelta", 10.0, rows=[row(1, 0.0, diverged=1)], status="diverged"),
        ],
        prepared=prepared,
    )
    c4 = claims[4]
    assert c4.verdict == PARTLY and c4.numbers["failed"] == 6, c4.evidence
    assert c4.numbers["counts"] == {
        "collapsed onto the most frequent label": 1,
        "collapsed onto another label": 1,
        "nothing predicted": 1,
        "at the label-prior plateau": 1,
        "not collapsed": 1,
        "diverged": 1,
    }
    assert "joy (id 0, the 2nd most frequent training label) ×1" in c4.evidence
    assert "neutral (id 2, the most frequent training label)" in c4.evidence and "1 at the label-prior plateau" in c4.evidence


def test_claim_4_is_not_tested_when_the_label_cannot_be_identified(tmp_path):
    """No labels.json, and no collapsed run sits exactly at the floor (whose label would be the most frequent)."""
    folder = write_results(
        tmp_path / "r", [trial("ok", "adam", 1e-4, [0.40, 0.50]), trial("c", "adam", 1e-2, rows=_onto(0, p1=0.35))], epochs=2
    )
    c4 = check_claims(load_results(folder))[3]
    assert c4.verdict == NOT_TESTED and "cannot be identified" in c4.evidence


def test_claims_the_folder_cannot_test_say_why(tmp_path):
    folder = write_results(
        tmp_path / "r", [trial("a", "adam", 1e-2, [0.5, 0.6]), trial("b", "adam", 3e-2, [0.5, 0.55])], epochs=2
    )
    claims = check_claims(load_results(folder))
    assert [c.verdict for c in claims] == [NOT_TESTED] * 4
    assert "within 0.5 decade of 1e-4" in claims[0].evidence and "neither Adagrad nor Adadelta" in claims[1].evidence
    assert "needs Adam and AdamW each at >= 2 weight decays; here adam at 1 (0), adamw at 0 (none)" in claims[2].evidence
    assert claims[3].evidence == "no run failed: every run scored at the budget trains"


# The verdicts every committed table gives (docs/study.md shows them with their numbers, per dataset merged).
TABLE_VERDICTS = {
    "go_emotions": [REPRODUCED, CONTRADICTED, NOT_TESTED, PARTLY],
    "go_emotions_wd": [NOT_TESTED, NOT_TESTED, PARTLY, CONTRADICTED],
    "go_emotions_adagrad_study": [NOT_TESTED, NOT_TESTED, NOT_TESTED, REPRODUCED],
    "go_emotions_adadelta_study": [NOT_TESTED, NOT_TESTED, NOT_TESTED, CONTRADICTED],
    "reuters_all": [PARTLY, REPRODUCED, NOT_TESTED, PARTLY],
    "reuters_all_adagrad_study": [NOT_TESTED, NOT_TESTED, NOT_TESTED, PARTLY],
    "reuters_all_adadelta_study": [NOT_TESTED, NOT_TESTED, NOT_TESTED, CONTRADICTED],
    "reuters_r90": [REPRODUCED, CONTRADICTED, NOT_TESTED, PARTLY],  # held out: the claims on a table nobody tuned on
}


@pytest.mark.parametrize("table", sorted(p.stem for p in (REPO / "bench" / "tables").glob("*.json")))
def test_the_committed_ground_truth_tables(table):
    results = results_from_table(json.loads((REPO / "bench" / "tables" / f"{table}.json").read_text()), source=table)
    claims = check_claims(results, labels={}, majority_label=None)
    assert [c.verdict for c in claims] == TABLE_VERDICTS[table], [c.evidence for c in claims]
