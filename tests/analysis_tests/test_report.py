"""The report folder and `sweetspot analyze` on a hand-written results folder (no checkpoints, no
weight-decay variation: figures (c) and (f) must say so instead of failing)."""

from __future__ import annotations

import base64
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sweetspot.analysis.report import analyze, write_report
from sweetspot.analysis.results import load_results
from tests.analysis_tests.folders import FLOOR, row, trial, write_prepared, write_results
from tests.conftest import REPO

EVIL = "<script>alert(1)</script>"


@pytest.fixture
def results_dir(tmp_path):
    docs = [([101, 10, 102], [0]), ([101, 11, 102], [1]), ([101, 10, 11, 102], [0, 1]), ([101, 12, 102], [2])]
    prepared = write_prepared(
        tmp_path / "prepared",
        [(EVIL, 3), ("b|c", 2), ("plain", 1)],
        {"train": docs, "validation": docs, "test": docs},
        majority=0,
    )
    collapsed = [row(1, FLOOR, entropy=0.0, top=0), row(2, FLOOR, entropy=0.0, top=0)]
    return write_results(
        tmp_path / "results" / "exp",
        [
            trial("a1", "adam", 1e-5, [0.35, 0.40]),
            trial("a2", "adam", 1e-4, [0.50, 0.60]),
            trial("a3", "adam", 1e-3, [0.45, 0.50]),
            trial("a4", "adam", 1e-1, rows=collapsed),
            trial("g1", "adagrad", 1e-2, rows=collapsed),
            trial("g2", "adagrad", 1e-4, [0.32, 0.33]),
            trial("g3", "adagrad", 1e-3, [0.30, 0.305]),
            trial("x1", "adamw", 10.0, rows=[row(1, 0.0, diverged=1)], status="diverged"),
        ],
        epochs=2,
        prepared=prepared,
        name="exp<b>",
    )


def _analyze(*args, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "sweetspot.cli", "analyze", "--rule", "near-best", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout,
    )


def test_analyze_writes_a_self_contained_escaped_report(results_dir):
    proc = _analyze(results_dir)
    assert proc.returncode == 0, proc.stderr
    report = results_dir / "report"
    assert f"report: {report}/report.html" in proc.stdout
    lines = proc.stdout.replace("\n      ", " ").splitlines()  # wrapped lines joined
    # The answer first (per optimizer, the best against floor and TF-IDF, the collapse share), then the claims
    assert lines[:2] == ["THE ANSWER", "  compared at epoch 2 (the budget)"]
    assert lines[2] == (
        "  adagrad: none: no lr tried trains (best config score 0.330 at 1.0e-04 against the level 0.588); 1 of 3 "
        f"runs collapsed (onto {EVIL} (id 0, the most frequent training label) ×1)"
    )
    assert (
        lines[3].startswith(
            "  adam: trains at between 1.0e-05 and 1.0e-04 (not resolved) .. between 1.0e-04 and 1.0e-03 (not resolved)"
        )
        and "one more trial at 3.2e-05 (lower edge), 3.2e-04 (upper edge)" in lines[3]
    )
    assert lines[4] == "  adamw: none: every lr tried diverged"
    assert lines[5].startswith(
        "  best: adam lr 1.0e-04: config score 0.600 (val_p1, 1 run), against the majority-label floor 0.300, TF-IDF"
    )
    assert lines[6].startswith(
        "  baselines: the best configuration does not beat TF-IDF + linear beyond the validation set's "
        "noise (below it at P@1) (validation, n = 4"
    )
    assert lines[7].startswith("  collapse: 2 of 7 runs collapsed at their last evaluation (onto ")
    assert lines.index("THE STUDY'S CLAIMS, CHECKED HERE") < lines.index(next(x for x in lines if x.startswith("trial_id")))
    table = lines.index(next(x for x in lines if x.startswith("trial_id")))
    assert lines[table + 2].startswith("a2")  # then the trial table, best first, then the floor
    assert "majority-label floor" in proc.stdout and "sweet spot adam: lr" in proc.stdout
    assert "sweet spot adagrad: no sweet spot" in proc.stdout
    assert "compared at: epoch 2 (the budget, train.epochs)" in proc.stdout
    page = (report / "report.html").read_text()
    assert "<b>Compared at:</b> epoch 2 (the budget, train.epochs)" in page
    assert page.index('id="answer"') < page.index('id="claims"') < page.index('id="details"') < page.index("<pre>")
    assert "<b>adamw</b>: none: every lr tried diverged" in page and '<td class="verdict partly">partly</td>' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page
    assert "exp&lt;b&gt;" in page and "exp<b>" not in page
    images = re.findall(r'<img id="img-(\w)" alt="[^"]*" src="data:image/png;base64,([^"]+)"', page)
    assert sorted(letter for letter, _ in images) == ["a", "b", "d", "e"]
    assert all(base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n" for _, data in images)
    assert 'id="missing-c"' in page and "more than one weight decay" in page
    assert 'id="missing-f"' in page and "checkpoint" in page
    assert page.count("<table>") == 6  # trials, sweet spots, collapsed, diverged, importances, baselines (regions: none)
    assert page.count('<table class="claims">') == 1
    for letter in "abde":
        assert len(list(report.glob(f"fig_{letter}_*.png"))) == 1
    markdown = (report / "report.md").read_text()
    assert "**Compared at:** epoch 2 (the budget, train.epochs)" in markdown
    assert markdown.index("## The answer") < markdown.index("## The study's claims") < markdown.index("## The details")
    assert "- **adamw**: none: every lr tried diverged" in markdown
    assert "| 4 | Failed runs collapse onto the most frequent training labels | partly | 2 of 4 failed runs" in markdown
    outside_code = re.sub(r"```.*?```", "", markdown, flags=re.S)  # a code block shows its text literally
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in outside_code and EVIL not in outside_code
    for name in re.findall(r"\]\((fig_\w+\.png)\)", markdown):
        assert (report / name).is_file()
    with open(report / "trials.csv") as f:
        trials = list(csv.DictReader(f))
    assert len(trials) == 8 and {t["trial_id"] for t in trials if t["collapsed"] == "True"} == {"a4", "g1"}
    with open(report / "epochs.csv") as f:
        assert len(list(csv.DictReader(f))) == 15  # every reported row: 7 trials × 2 epochs + 1


def test_json_summary_has_the_analysis_and_the_original_keys(results_dir):
    proc = _analyze(results_dir, "--json", "--no-report")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert {
        "folder",
        "metric",
        "mode",
        "majority_p1",
        "trials",
        "sweet_spots",
        "collapsed",
        "diverged",
        "importances",
        "baselines",
        "answer",
        "claims",
    } <= set(summary)
    assert summary["answer"]["optimizers"]["adamw"] == "none: every lr tried diverged"
    assert [(c["number"], c["verdict"]) for c in summary["claims"]] == [
        (1, "partly"),
        (2, "contradicted"),
        (3, "not tested here"),
        (4, "partly"),
    ]  # (1): adam's region is 2 decades or more
    assert summary["claims"][3]["numbers"]["counts"]["collapsed onto the most frequent label"] == 2
    assert {c["trial_id"]: c["kind"] for c in summary["collapsed"]} == {"a4": "unknown kind", "g1": "unknown kind"}
    assert summary["report"] is None and not (results_dir / "report").exists()
    first = summary["trials"][0]
    assert {"trial_id", "status", "config", "epochs", "score", "history"} <= set(first) and first["trial_id"] == "a2"
    spots = summary["sweet_spots"]
    assert (spots["compared_at_epoch"], spots["budget"], spots["epoch_source"]) == (2, 2, "budget")
    adam = next(o for o in spots["optimizers"] if o["optimizer"] == "adam")
    assert adam["found"] and adam["verdict"] == "found" and adam["intervals"][0]["best_lr"] == pytest.approx(1e-4)
    # 0.588 is crossed 0.06 decade below 1e-4 and 0.12 above: 0.94 decade from 1e-5 and 0.88 from 1e-3 (neither qualifies)
    assert (adam["intervals"][0]["lower_resolution"], adam["intervals"][0]["upper_resolution"]) == pytest.approx((0.94, 0.88))
    assert adam["trains"] == [
        "between 1.0e-05 and 1.0e-04 (not resolved) .. between 1.0e-04 and 1.0e-03 (not resolved), 0.2 decades"
    ]
    assert {c["trial_id"] for c in summary["collapsed"]} == {"a4", "g1"}
    assert all(c["labels"][0]["name"] == EVIL and c["onto_majority"] for c in summary["collapsed"])
    assert [d["trial_id"] for d in summary["diverged"]] == ["x1"]
    assert summary["importances"]["available"] and "lr" in summary["importances"]["fanova"]
    assert summary["baselines"]["available"] and summary["baselines"]["majority"]["validation"]["p1"] == pytest.approx(0.5)


def test_a_storage_uri_reads_and_writes_like_a_local_path(results_dir, tmp_path):
    local = load_results(results_dir)
    remote = load_results(f"file://{results_dir}")
    assert [(t.trial_id, t.history) for t in remote.ranked()] == [(t.trial_id, t.history) for t in local.ranked()]
    out = write_report(analyze(remote, baselines=False), f"file://{tmp_path / 'uri-report'}")
    assert out.startswith("file://") and (tmp_path / "uri-report" / "report.html").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--delta", "-1"], "--delta"),
        (["--metric", "val_nope"], "no trial reported it"),
        (["--epoch", "0"], "--epoch"),
    ],
)
def test_bad_options_end_with_one_line_and_exit_code_2(results_dir, args, message):
    proc = _analyze(results_dir, *args, "--no-report")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc.stderr


def test_an_unreadable_summary_is_one_line_and_exit_code_2(results_dir):
    (results_dir / "summary.json").write_text("{not json")
    proc = _analyze(results_dir, "--no-report")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "summary.json: unreadable" in proc.stderr


def test_trials_without_an_lr_are_reported_but_left_out_of_sweet_spots(tmp_path):
    folder = write_results(tmp_path / "r", [trial("a", "adam", 1e-4, [0.5]), trial("b", "adam", 1e-3, [0.45])], epochs=1)
    config = json.loads((folder / "trial_b" / "params.json").read_text())
    del config["lr"]  # neither searched nor set in train.lr: the optimizer's default, unknown here
    (folder / "trial_b" / "params.json").write_text(json.dumps(config))
    summary = json.loads((folder / "summary.json").read_text())
    del summary["trials"][1]["config"]["lr"]
    (folder / "summary.json").write_text(json.dumps(summary))
    analysis = analyze(load_results(folder), baselines=False, rule="near-best")
    assert [c.trial_ids for c in analysis.spots.configs] == [("a",)]
    page = (Path(write_report(analysis)) / "report.html").read_text()
    assert "<td>b</td>" in page and 'id="img-b"' in page


def test_eval_test_metrics_rank_trials_and_reach_epochs_csv(tmp_path):
    """`train.eval_test: true` adds test_* keys to every report: `--metric test_p1` compares by them
    (here the opposite order to val_p1), and epochs.csv carries them."""

    def rows(val, test):
        return [row(i + 1, v, test_p1=t, test_loss=0.5 - t) for i, (v, t) in enumerate(zip(val, test))]

    folder = write_results(
        tmp_path / "r",
        [
            trial("a", "adam", 1e-4, rows=rows([0.40, 0.60], [0.50, 0.45])),
            trial("b", "adam", 1e-3, rows=rows([0.45, 0.50], [0.55, 0.62])),
        ],
        epochs=2,
    )
    proc = _analyze(folder, "--metric", "test_p1", "--json", "--no-baselines", "--no-attention")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["metric"] == "test_p1" and [t["trial_id"] for t in summary["trials"]] == ["b", "a"]
    assert summary["sweet_spots"]["best"]["lr"] == pytest.approx(1e-3) and summary["sweet_spots"]["best"][
        "value"
    ] == pytest.approx(0.62)
    with open(Path(summary["report"]) / "epochs.csv") as f:
        epochs = list(csv.DictReader(f))
    assert [float(r["test_p1"]) for r in epochs if r["trial_id"] == "b"] == [0.55, 0.62]
    assert [float(r["test_loss"]) for r in epochs if r["trial_id"] == "a"] == pytest.approx([0.0, 0.05])


@pytest.mark.parametrize("ci, outcome", [("1", "1 failed"), ("", "1 skipped")])
def test_the_browser_check_of_the_report_fails_in_ci_without_chromium(tmp_path, ci, outcome):
    """tests/analysis_tests/test_report_real_search.py opens the report in Chromium: with `CI` set
    and no browser on PATH it must fail (before running its search), not skip."""
    node = "tests/analysis_tests/test_report_real_search.py::test_report_renders_in_headless_chromium"
    env = {**os.environ, "CI": ci, "PATH": str(tmp_path)}  # an empty PATH: no chromium, no chromedriver
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", node],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
    )
    assert outcome in proc.stdout, proc.stdout[-2000:]
    assert "chromium and chromedriver not found on PATH" in proc.stdout


def test_an_asha_folder_is_reported_at_the_budget_with_its_censored_trials(tmp_path):
    """Trials that ASHA stopped at epoch 1 are listed with their epoch and rank there; the sweet spots,
    the tables and figure (d) are at the budget (3 epochs), and an optimizer with no trial there is unknown."""
    folder = write_results(
        tmp_path / "r",
        [
            trial("long", "adam", 1e-4, [0.40, 0.50, 0.70]),
            trial("low", "adam", 1e-5, [0.32, 0.35, 0.36]),
            trial("cut", "adam", 1e-3, [0.45], status="early_stopped"),
            trial("g", "adagrad", 1e-2, [0.50], status="early_stopped"),
        ],
        epochs=3,
    )
    proc = _analyze(folder, "--no-baselines", "--no-attention")
    assert proc.returncode == 0, proc.stderr
    assert (
        "compared at: epoch 3 (the budget, train.epochs): a run's score is its best val_p1 over its epoch ends <= 3, "
        "evaluations with constant predictions left out; 2 trial(s) that stopped"
    ) in proc.stdout
    assert "sweet spot adagrad: unknown (no trial reached 3 epochs)" in proc.stdout
    assert "censored cut: adam lr=1.0e-03 stopped by the scheduler at epoch 1, rank 2 of 4 there" in proc.stdout
    assert "sweet spot adam: lr" in proc.stdout and "open above" in proc.stdout  # 1e-3 is unknown at epoch 3
    page = (folder / "report" / "report.html").read_text()
    assert "<td>censored: stopped by the scheduler at epoch 1, rank 1 of 4 there</td>" in page  # g
    assert "<th>score (best val_p1 over epoch ends ≤ 3)</th>" in page and 'id="img-d"' in page
    with open(folder / "report" / "trials.csv") as f:
        trials = {t["trial_id"]: t for t in csv.DictReader(f)}
    assert trials["cut"]["outcome"] == "censored" and trials["cut"]["score"] == "" and trials["long"]["score"] == "0.7"
