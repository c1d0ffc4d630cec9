"""bench/docsection.py: a script's section of a docs page, written between its markers."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def _docsection():
    spec = importlib.util.spec_from_file_location("docsection", REPO / "bench" / "docsection.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_missing_page_is_created_with_the_section(tmp_path):
    page = tmp_path / "reliability.md"
    _docsection().write_section("faults", "## Faults\n", docs=page)
    assert page.read_text() == "<!-- faults:start (written by bench/faults.py) -->\n## Faults\n<!-- faults:end -->\n"


def test_a_bare_start_marker_is_the_sections_and_the_text_around_it_stays(tmp_path):
    page = tmp_path / "reliability.md"
    page.write_text(
        "# Reliability\n\n<!-- faults:start -->\nold\n<!-- faults:end -->\n\n<!-- secure:start -->\nkept\n<!-- secure:end -->\n"
    )
    docsection = _docsection()
    docsection.write_section("faults", "new", docs=page)
    docsection.write_section("faults", "new", docs=page)  # again: the same page
    assert page.read_text() == (
        "# Reliability\n\n<!-- faults:start -->\nnew\n<!-- faults:end -->\n\n"  # the marker as found
        "<!-- secure:start -->\nkept\n<!-- secure:end -->\n"
    )
