"""Collapse diagnosis from the recorded signals of hand-written trials."""

from __future__ import annotations

import pytest

from sweetspot.analysis.collapse import diagnose_collapse
from sweetspot.analysis.results import load_results
from sweetspot.trainable.collapse import is_collapsed_row
from tests.analysis_tests.folders import FLOOR, row, trial, write_prepared, write_results

LABELS = [("joy", 5), ("anger", 3), ("neutral", 9)]  # neutral (id 2) is the most frequent training label


@pytest.fixture
def prepared(tmp_path):
    docs = [([101, 7, 102], [2]), ([101, 8, 102], [0])]
    return write_prepared(tmp_path / "prepared", LABELS, {"train": docs, "validation": docs, "test": docs}, majority=2)


def test_collapse_first_epoch_recovery_and_label(tmp_path, prepared):
    folder = write_results(
        tmp_path / "r",
        [
            trial(
                "stuck",
                "adagrad",
                1e-1,
                rows=[row(1, FLOOR, entropy=0.0, top=2), row(2, FLOOR, entropy=0.0, top=2), row(3, FLOOR, entropy=0.05, top=2)],
            ),
            trial("back", "adam", 1e-4, rows=[row(1, 0.5), row(2, FLOOR, entropy=0.0, top=2), row(3, 0.45, entropy=0.5)]),
            trial("fine", "adam", 3e-4, [0.4, 0.5, 0.55]),
            trial("onto_other", "adam", 1e-2, rows=[row(1, 0.1, entropy=0.0, top=1)]),
        ],
        prepared=prepared,
    )
    report = diagnose_collapse(load_results(folder))
    stuck, back, fine, other = (report.of(i) for i in ("stuck", "back", "fine", "onto_other"))
    assert stuck.collapsed and stuck.first_epoch == 1 and not stuck.recovered and stuck.final_collapsed
    assert stuck.collapsed_epochs == (1, 2, 3)
    assert [(x.id, x.name) for x in stuck.labels] == [(2, "neutral")] and stuck.onto_majority is True
    assert back.collapsed and back.first_epoch == 2 and back.recovered and not back.final_collapsed
    assert not fine.collapsed and fine.first_epoch is None and fine.labels == ()
    assert other.collapsed and other.labels[0].name == "anger" and other.onto_majority is False
    assert [t.trial_id for t in report.collapsed] == ["stuck", "back", "onto_other"]
    assert report.majority_label.name == "neutral"


def test_both_conditions_are_needed_and_missing_signals_fall_back_to_the_flag():
    kwargs = dict(entropy_fraction=0.2, p1_margin=0.01)
    # Low prediction entropy, but P@1 above the floor: a skewed label set, not a collapse.
    assert is_collapsed_row(row(1, FLOOR + 0.1, entropy=0.0), **kwargs) is False
    # At the floor, but still spreading its top predictions: a weak model, not a collapse.
    assert is_collapsed_row(row(1, FLOOR, entropy=0.5), **kwargs) is False
    assert is_collapsed_row(row(1, FLOOR, entropy=0.1), **kwargs) is True
    assert is_collapsed_row({"epoch": 1, "collapsed": 1}, **kwargs) is True
    assert is_collapsed_row({"epoch": 1, "val_p1": 0.3}, **kwargs) is None


def test_the_saved_configs_thresholds_decide(tmp_path):
    rows = [row(1, FLOOR, entropy=0.3)]  # 0.3 <= 0.5 × 0.8, but not <= 0.2 × 0.8
    default = write_results(tmp_path / "a", [trial("t", "adam", 1e-2, rows=rows)])
    loose = write_results(tmp_path / "b", [trial("t", "adam", 1e-2, rows=rows)], train={"collapse_entropy_fraction": 0.5})
    assert not diagnose_collapse(load_results(default)).of("t").collapsed
    assert diagnose_collapse(load_results(loose)).of("t").collapsed


def test_diverged_trials_are_listed_apart(tmp_path):
    folder = write_results(
        tmp_path / "r",
        [
            trial("nan", "adam", 1.0, rows=[row(1, FLOOR, entropy=0.0), row(1.5, 0.0, diverged=1)], status="diverged"),
            trial("ok", "adam", 1e-4, [0.5]),
        ],
    )
    report = diagnose_collapse(load_results(folder))
    assert [d.trial_id for d in report.diverged] == ["nan"] and report.diverged[0].epoch == 1.5
    assert report.of("nan") is None and [t.trial_id for t in report.trials] == ["ok"]
    assert report.majority_label is None  # no prepared data recorded: labels stay ids


def test_a_collapse_where_nothing_is_predicted_is_not_read_as_onto_its_noise_label(tmp_path, prepared):
    """The ~2,000-label case: every probability below 0.5 and near-equal, an arbitrary label "on top"
    of every document, P@1 = 0. It is told apart from a collapse onto a label (here neutral at its
    prior, below 0.5 too, but clear of the rest) and from an older row without the signals."""

    def collapsed(epoch, top, p1, **signals):
        return row(epoch, p1, entropy=0.0, top=top, **signals)

    folder = write_results(
        tmp_path / "r",
        [
            trial("noise", "adagrad", 1e-1, rows=[collapsed(1, 1, 0.0, val_pred_positive=0.0, val_top_margin=0.0001)]),
            trial("prior", "adam", 1e-2, rows=[collapsed(1, 2, FLOOR, val_pred_positive=0.0, val_top_margin=0.22)]),
            trial("usa", "adam", 1e-3, rows=[collapsed(1, 2, FLOOR, val_pred_positive=1.0, val_top_margin=0.0)]),
            trial("old", "adam", 3e-3, rows=[collapsed(1, 2, FLOOR, val_micro_f1=0.0)]),
            trial("old_f1", "adam", 1e-1, rows=[collapsed(1, 2, FLOOR, val_micro_f1=0.3)]),
        ],
        prepared=prepared,
        epochs=1,
    )
    report = diagnose_collapse(load_results(folder))
    kinds = {t.trial_id: t.kind for t in report.collapsed}
    assert kinds == {
        "noise": "nothing predicted",
        "prior": "onto a label",
        "usa": "onto a label",
        "old": "unknown kind",
        "old_f1": "onto a label",
    }
    noise = report.of("noise")
    assert noise.labels == () and noise.onto_majority is None and noise.noise_label.name == "anger"
    assert report.of("prior").labels[0].name == "neutral" and report.of("old").onto_majority is True


def test_runs_constant_on_a_label_above_the_floor_are_collapsed_and_never_train(tmp_path, prepared):
    """Every document mapped to one point (embedding rank 1), one label on top of all (entropy 0), and
    that label's validation share (0.40) above the majority-label floor (0.30): collapsed, not training,
    however far above the level its P@1 is."""
    from sweetspot.analysis.answer import answer
    from sweetspot.analysis.report import analyze

    one_point = [
        row(e, 0.40, entropy=0.0, top=0, val_embed_rank=1.0, val_pred_positive=0.0, val_top_margin=0.2) for e in (1, 2, 3)
    ]
    folder = write_results(
        tmp_path / "r",
        [
            trial("c1", "adam", 1e-2, rows=one_point),
            trial("c2", "adam", 3e-2, rows=one_point),
            trial("ok", "adam", 1e-4, [0.35, 0.45, 0.50]),
        ],
        prepared=prepared,
    )
    results = load_results(folder)
    assert all(r["collapsed"] == 1 for r in one_point)  # the trainable's flag: the same rule (folders.row uses it)
    analysis = analyze(results, baselines=False)
    assert {c.trial_id for c in analysis.collapse.trials if c.final_collapsed} == {"c1", "c2"}
    assert [analysis.spots.comparison.scores[i].outcome for i in ("c1", "c2")] == ["failed", "failed"]
    (interval,) = next(s for s in analysis.spots.optimizers if s.optimizer == "adam").intervals
    assert interval.upper_lr == pytest.approx(1e-4)  # 1e-2 and 3e-2 are outside: they do not train
    opening = answer(analysis)
    assert opening.collapse.startswith("2 of 3 runs collapsed at their last evaluation (onto joy (id 0) ×2)")
    claim = analysis.claims[3]
    assert claim.numbers["counts"]["collapsed onto another label"] == 2
    assert "joy (id 0, the 2nd most frequent training label) ×2" in claim.evidence


def test_constant_predictions_with_a_spread_representation_are_at_the_label_prior_plateau(tmp_path, prepared):
    plateau = [row(e, FLOOR, entropy=0.0, top=2, val_embed_rank=12.0) for e in (1, 2)]
    folder = write_results(tmp_path / "r", [trial("p", "adam", 1e-5, rows=plateau)], epochs=2, prepared=prepared)
    report = diagnose_collapse(load_results(folder))
    p = report.of("p")
    assert not p.collapsed and p.state == "at the label-prior plateau"
    assert report.count().text() == (
        "0 of 1 runs collapsed at their last evaluation; 1 at the label-prior plateau "
        "(constant predictions, representation not collapsed)"
    )
    kwargs = dict(entropy_fraction=0.2, p1_margin=0.01)
    assert is_collapsed_row(plateau[0], **kwargs) is False
    assert is_collapsed_row({**plateau[0], "val_embed_rank": 1.0, "val_p1": 0.9}, **kwargs) is True  # whatever its P@1
