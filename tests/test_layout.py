"""The results-folder layout (sweetspot/layout.py): how result.json is read back, and names."""

import json

import pytest

from sweetspot import layout
from sweetspot.analysis.results import ResultsError, load_results


def _lines(*rows) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def test_a_torn_last_line_is_skipped():
    text = _lines({"epoch": 1, "val_p1": 0.2}, {"epoch": 2, "val_p1": 0.3}) + '{"epoch": 3, "val_'
    assert [r["epoch"] for r in layout.parse_result_lines(text, where="r.json")] == [1, 2]


def test_a_corrupt_line_in_the_middle_is_an_error_naming_file_and_line(tmp_path):
    rows = [{"epoch": e, "val_p1": 0.1 * e, "trial_id": "t1"} for e in range(1, 10)]
    text = _lines(*rows[:2]) + "{garbage\n" + _lines(*rows[2:])
    with pytest.raises(layout.LayoutError, match=r"r\.json:3: unreadable report"):
        layout.parse_result_lines(text, where="r.json")
    # and the analysis reports it instead of silently keeping epochs 1-2 of 9
    trial = tmp_path / layout.trial_folder("t1")
    trial.mkdir()
    (trial / layout.RESULT_FILE).write_text(text)
    (tmp_path / layout.CONFIG_FILE).write_text("name: x\n")
    with pytest.raises(ResultsError, match=r"result\.json:3: unreadable report"):
        load_results(str(tmp_path))


def test_a_torn_report_with_the_resumed_runs_next_report_appended_reads_the_later_one():
    # a driver killed mid-write leaves epoch 2 torn; the resumed trial appends its epoch 2 to that line
    torn = '{"epoch": 2, "val_p1": 0.2'
    text = _lines({"epoch": 1, "val_p1": 0.1}) + torn + _lines({"epoch": 2, "val_p1": 0.25}, {"epoch": 3, "val_p1": 0.3})
    rows = layout.parse_result_lines(text, where="r.json")
    assert [(r["epoch"], r["val_p1"]) for r in rows] == [(1, 0.1), (2, 0.25), (3, 0.3)]


@pytest.mark.parametrize("row", [{"val_p1": 0.5}, {"epoch": None, "val_p1": 0.5}, {"epoch": "1", "val_p1": 0.5}])
def test_a_report_without_an_epoch_is_an_error_naming_file_and_line_not_a_silent_epoch_1(row):
    text = _lines({"epoch": 1, "val_p1": 0.1}, row, {"epoch": 2, "val_p1": 0.2})
    with pytest.raises(layout.LayoutError, match=r"r\.json:2: a report without a numeric `epoch`"):
        layout.parse_result_lines(text, where="r.json")


def test_a_retried_trials_repeated_epochs_count_once():
    # epochs 1, 2, then a failure; the retry resumes from the epoch-1 checkpoint and reports 2 and 3
    text = _lines(
        {"epoch": 1, "val_p1": 0.1}, {"epoch": 2, "val_p1": 0.2}, {"epoch": 2, "val_p1": 0.25}, {"epoch": 3, "val_p1": 0.3}
    )
    rows = layout.parse_result_lines(text, where="r.json")
    assert [(r["epoch"], r["val_p1"]) for r in rows] == [(1, 0.1), (2, 0.25), (3, 0.3)]


def test_test_split_metrics_are_recorded_beside_validation_ones():
    row = layout.reported({"epoch": 1, "val_p1": 0.3, "test_p1": 0.28, "test_macro_f1": 0.1, "time_total_s": 9.0})
    assert row == {"epoch": 1, "val_p1": 0.3, "test_p1": 0.28, "test_macro_f1": 0.1}


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../x", "", ".hidden", "-x", "a b"])
def test_an_experiment_name_must_be_one_plain_folder_name(name):
    with pytest.raises(layout.LayoutError, match="name: .* is not a plain folder name"):
        layout.check_name(name)
    assert layout.check_name("quickstart-2.v1_a") == "quickstart-2.v1_a"
