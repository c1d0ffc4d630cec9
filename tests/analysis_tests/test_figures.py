"""analysis/figures.py: what a figure shows, read from the matplotlib figure before it is rendered."""

from __future__ import annotations

import json

import pytest

from sweetspot.analysis import figures
from sweetspot.analysis.collapse import diagnose_collapse
from sweetspot.analysis.results import results_from_table
from tests.conftest import REPO


@pytest.fixture
def drawn(monkeypatch):
    """The matplotlib figures the figure functions build, in order, instead of their PNG bytes."""
    out = []
    monkeypatch.setattr(figures, "_png", lambda fig: out.append(fig) or b"png")
    return out


def test_figure_e_counts_the_runs_of_a_90_trial_search_instead_of_naming_each(drawn):
    table = json.loads((REPO / "bench" / "tables" / "reuters_all.json").read_text())
    results = results_from_table(table)
    collapse = diagnose_collapse(results)
    figures.fig_collapse(results, collapse)
    (ax,) = drawn[0].axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    collapsed = sum(1 for c in collapse.trials if c.entropy and c.collapsed and not c.recovered)
    assert len(trials := [c for c in collapse.trials if c.entropy]) == 90 and collapsed > figures.LABELLED_COLLAPSES
    assert f"collapsed ({collapsed} runs)" in labels and len(labels) == 4  # collapsed, recovered, not collapsed, threshold
    assert not any(t.trial_id in label for t in trials for label in labels)


def test_figure_e_names_the_collapsed_runs_of_a_small_search(drawn):
    table = json.loads((REPO / "bench" / "tables" / "reuters_all.json").read_text())
    full = diagnose_collapse(results_from_table(table))
    collapsed = [c.trial_id for c in full.trials if c.entropy and c.collapsed]
    healthy = [c.trial_id for c in full.trials if c.entropy and not c.collapsed]
    keep = set(collapsed[:3] + healthy[:10])
    results = results_from_table({**table, "trials": [t for t in table["trials"] if t["trial_id"] in keep]})
    figures.fig_collapse(results, diagnose_collapse(results))
    labels = [t.get_text() for t in drawn[0].axes[0].get_legend().get_texts()]
    assert [i for i in collapsed[:3] if any(label.startswith(i) for label in labels)] == collapsed[:3]
    assert "not collapsed (10 runs)" in labels
