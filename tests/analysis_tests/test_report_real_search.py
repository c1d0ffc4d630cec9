"""A real search, then its report, as a user runs them: `sweetspot search` on a real local Ray
(the session's `minilm_search`: MiniLM on go_emotions, a slice of the seed-protocol grid with Adam vs
AdamW at two weight decays, shared with tests/test_export.py), then `sweetspot analyze`, then the
report opened in headless Chromium. Its grid holds a learning rate that collapses and one that
trains, so every figure (a)–(f) has something to draw.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.e2e

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _sweetspot(*args, env, timeout):
    return subprocess.run(
        [sys.executable, "-m", "sweetspot.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def searched(minilm_search):
    folder, env = minilm_search["folder"], minilm_search["env"]
    analyze = _sweetspot("analyze", folder, "--json", env=env, timeout=300)
    assert analyze.returncode == 0, analyze.stderr[-3000:]
    summary = json.loads(analyze.stdout)
    prepared = Path(yaml.safe_load((folder / "sweetspot.yaml").read_text())["prepared_path"])
    return {
        "folder": folder,
        "summary": summary,
        "manifest": json.loads((prepared / "manifest.json").read_text()),
        "prepared": prepared,
        "report": Path(summary["report"]),
    }


def test_search_has_collapsed_and_healthy_runs_and_names_the_collapse_label(searched):
    summary, manifest = searched["summary"], searched["manifest"]
    assert len(summary["trials"]) == 8
    stayed = [c for c in summary["collapsed"] if not c["recovered"]]
    assert stayed, "no run stayed collapsed"
    majority = manifest["majority_label"]
    # The study: a collapsed run predicts the most frequent training label for every document.
    assert all(
        c["labels"][0]["id"] == majority["id"] and c["labels"][0]["name"] == majority["name"] and c["onto_majority"]
        for c in stayed
    ), (stayed, majority)
    healthy = [t for t in summary["trials"] if t["history"] and not t["history"][-1].get("collapsed")]
    assert healthy, "no run ended healthy"
    best = summary["sweet_spots"]["best"]
    assert best["value"] > summary["majority_p1"] + 0.01 and best["lr"] == pytest.approx(2e-4)
    spots = {o["optimizer"]: o for o in summary["sweet_spots"]["optimizers"]}
    assert spots[best["optimizer"]]["found"] and spots[best["optimizer"]]["intervals"][0]["lower_open"]
    assert all(i["upper_lr"] < 2e-2 for o in spots.values() for i in o["intervals"])  # 2e-2 is outside every spot
    reason = summary["importances"]["reason"] or ""
    assert summary["importances"]["available"] or "same score" in reason or "need at least" in reason
    base = summary["baselines"]
    assert base["available"] and base["majority"]["validation"]["p1"] == pytest.approx(summary["majority_p1"])
    assert (searched["prepared"] / "baselines.json").is_file()


def test_the_score_edges_regions_and_collapse_count_read_the_same_in_text_json_and_html(searched, datasets_dir):
    """One number, one name: what `analyze` prints, its JSON and the HTML page say the same things."""
    import markupsafe  # what the report's Jinja2 templates escape with

    class html:  # noqa: N801 - escapes as the page does ('&#39;' for a quote)
        @staticmethod
        def escape(text):
            return str(markupsafe.escape(text))

    env = {**os.environ, "SWEETSPOT_DATA_DIR": str(datasets_dir), "RAY_ADDRESS": ""}
    text = _sweetspot("analyze", searched["folder"], "--no-report", env=env, timeout=300)
    assert text.returncode == 0, text.stderr[-3000:]
    printed = text.stdout.replace("\n      ", " ")  # the answer's wrapped lines joined
    summary, page = searched["summary"], (searched["report"] / "report.html").read_text()
    answer, spots = summary["answer"], summary["sweet_spots"]
    for o in spots["optimizers"]:
        said = answer["optimizers"][o["optimizer"]]
        assert f"  {o['optimizer']}: {said}" in printed and f"<li><b>{o['optimizer']}</b>: {html.escape(said)}</li>" in page
        if o["found"]:  # the regions in words, and the config score, as the JSON has them
            assert said.startswith(f"trains at {'; '.join(o['trains'])}"), (said, o["trains"])
            assert f"best config score {o['config_score']:.3f}" in said
            assert all(html.escape(region) in page for region in o["trains"] + o["well"])
    best = spots["best"]
    assert f"config score {best['value']:.3f}" in answer["best"] and f"<td>{best['value']:.4f}</td>" in page
    assert f"  best: {answer['best']}" in printed and f"  baselines: {answer['baselines']}" in printed
    assert html.escape(answer["baselines"]) in page and "Wilson" in answer["baselines"]
    count = summary["collapse_count"]
    words = f"{count['final']} of {count['runs']} runs collapsed at their last evaluation"
    assert answer["collapse"].startswith(words) and f"  collapse: {answer['collapse']}" in printed
    assert html.escape(answer["collapse"]) in page and words in page  # the answer and the sweet-spot table's note
    assert count["final"] == sum(1 for t in summary["trials"] if t["state"] == "collapsed")
    for t in summary["trials"]:  # each run's score: the JSON, the trials table, the HTML
        if t["score"] is not None:
            assert f"<td>{t['score']:.4f}</td>" in page and f"{t['score']:.4f}" in printed
            scored = [r["val_p1"] for r in t["history"] if float(r["epoch"]).is_integer() and r["epoch"] <= 2]
            assert t["score"] in scored  # read at an epoch end


def test_report_contains_every_figure_and_table(searched):
    report = searched["report"]
    page = (report / "report.html").read_text()
    for letter in "abcdef":
        assert f'id="img-{letter}"' in page and f'id="missing-{letter}"' not in page, letter
        assert len(list(report.glob(f"fig_{letter}_*.png"))) == 1
    # every table that has rows is rendered as one (the rest say why they are empty): the trials, the
    # sweet spots, the collapsed runs and the baselines always have rows in this search
    for title in ("Trials", "Sweet spots", "Collapsed runs", "Baselines"):
        assert f"<h3>{title}</h3>\n<table>" in page, title
    importances = page.split("<h3>Importances</h3>\n", 1)[1]
    assert importances.startswith("<table>") or importances.startswith('<p class="missing">not computed: '), importances[:200]
    tables = page.split('<h2 id="tables">', 1)[1]
    assert page.count("<table>") == tables.count("<h3>") - tables.count('<p class="missing">')
    for name in ("report.md", "trials.csv", "epochs.csv"):
        assert (report / name).is_file()


def _fits(driver, width: int, height: int) -> list:
    """[layout width, the page's scroll width, the widest image, the answer's top, the screen height, viewport tag?]
    at a window of `width` x `height` CSS pixels."""
    # A phone's browser honours the viewport tag (without it a page lays out at 980 px and is shrunk):
    # Chromium does so when it emulates a mobile screen.
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700}
    )
    driver.execute_script("window.scrollTo(0, 0)")
    return driver.execute_script(
        "const a = document.getElementById('answer-lines').getBoundingClientRect();"
        "return [window.innerWidth, document.documentElement.scrollWidth,"
        " Math.max(...Array.from(document.images).map(i => i.getBoundingClientRect().right)), a.top, window.innerHeight,"
        " !!document.querySelector('meta[name=viewport]')]"
    )


def test_report_renders_in_headless_chromium(request):
    # Checked before the search runs. Where CI is set the report must be seen rendered: a missing
    # browser fails the test; elsewhere it skips, saying what to install.
    if not (CHROMIUM and CHROMEDRIVER):
        missing = " and ".join(name for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)) if not path)
        message = f"{missing} not found on PATH (Debian: apt-get install chromium chromium-driver)"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, but {message}", pytrace=False)
        pytest.skip(message)
    searched = request.getfixturevalue("searched")
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="chromium-")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,4000",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get((searched["report"] / "report.html").as_uri())
        images = driver.execute_script("return Array.from(document.images).map(i => [i.id, i.complete, i.naturalWidth])")
        tables = driver.execute_script("return Array.from(document.querySelectorAll('table')).map(t => t.rows.length)")
        screenshot = driver.get_screenshot_as_png()
        driver.set_window_size(1280, 800)  # a laptop's first screen: the answer must be on it, unscrolled
        driver.execute_script("window.scrollTo(0, 0)")
        first_screen = driver.execute_script(
            "const r = document.getElementById('answer-lines').getBoundingClientRect();"
            "return [r.top, r.bottom, window.innerHeight, document.getElementById('answer-lines').innerText]"
        )
        claims = driver.execute_script("return document.querySelector('table.claims').rows.length")
        phone = _fits(driver, 390, 844)  # a phone: the page lays out at its width, nothing scrolls sideways
        laptop = _fits(driver, 1280, 800)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    for size, (width, page_width, widest_image, answer_top, height, viewport) in (("390x844", phone), ("1280x800", laptop)):
        assert viewport and width == int(size.split("x")[0]), (size, width)  # the viewport tag: no 980 px layout
        assert page_width <= width and widest_image <= width, (size, page_width, widest_image)
        assert 0 <= answer_top < height / 2, (size, answer_top)  # the answer starts on the first screen
    top, bottom, height, text = first_screen
    assert 0 <= top < bottom <= height, first_screen  # the whole answer is on the first screen
    assert "best: " in text and "collapse: " in text and ("adam: trains at" in text or "adamw: trains at" in text), text
    assert claims == 5  # a header and the four claims
    assert sorted(i[0] for i in images) == [f"img-{x}" for x in "abcdef"]
    assert all(complete and width > 0 for _, complete, width in images), images
    assert len(tables) >= 6 and all(rows >= 2 for rows in tables), tables  # a header and at least one row each
    pixels = Image.open(io.BytesIO(screenshot)).convert("L")
    low, high = pixels.getextrema()
    assert high - low > 100 and len(pixels.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 50  # text and plots, not blank
