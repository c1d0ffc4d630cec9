"""One import namespace: everything is `sweetspot.*`; nothing installs a top-level `data`, `search`,
`trainable` or `analysis`, and a user's own packages of those names never replace sweetspot's code."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGES = ("data", "trainable", "search", "analysis")
SWEETSPOT = str(Path(sys.executable).with_name("sweetspot"))


def test_the_wheel_installs_only_the_sweetspot_package(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("sweetspot-*.whl")
    top = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {t for t in top if not t.endswith(".dist-info")} == {"sweetspot"}
    names = zipfile.ZipFile(wheel).namelist()
    for package in PACKAGES:
        assert f"sweetspot/{package}/__init__.py" in names
    # The report's templates are package data: a report written from an installed wheel needs them.
    assert {"sweetspot/analysis/templates/report.html", "sweetspot/analysis/templates/report.md"} <= set(names)


def _imports(package: str) -> set[str]:
    """The sweetspot modules that the modules of `package` import (module level and inside functions)."""
    found = set()
    for file in (REPO / package).glob("*.py") if package != "sweetspot" else (REPO / "sweetspot").glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sweetspot"):
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("sweetspot")}
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_dependencies_run_data_trainable_search_and_analysis_reads_only_pure_pieces():
    allowed = {  # what each package may import besides itself
        "data": {"storage", "checks"},
        "trainable": {"data", "layout", "storage", "checks"},
        "search": {
            "data",
            "trainable",
            "layout",
            "storage",
            "checks",
            "signing",
            "redact",
        },  # pure modules beside layout and storage
        "analysis": {"trainable", "layout", "storage", "data", "checks"},
    }
    for package, ok in allowed.items():
        layers = {_layer(m) for m in _imports(package)} - {package, None}
        assert layers <= ok, f"{package} imports {layers - ok}"
    # the analysis imports only pure pieces of the trainable (keys, config, the collapse rule, the score,
    # the optimizer table for twin lines) and the model for the attention figure, never the Ray entry
    # point or the loop
    trainable_modules = {m.split(".")[2] for m in _imports("analysis") if m.startswith("sweetspot.trainable.")}
    assert trainable_modules <= {"keys", "config", "collapse", "score", "model", "optimizers"}, trainable_modules
    # the command line sits on top: nothing imports it
    for package in (*PACKAGES, "sweetspot"):
        assert "sweetspot.cli" not in _imports(package) and not any(m.startswith("sweetspot.cli.") for m in _imports(package))


def _decoys(folder: Path) -> None:
    """A user's project with its own packages of sweetspot's old top-level names: importing any of
    them fails loudly."""
    for package in PACKAGES:
        (folder / package).mkdir()
        (folder / package / "__init__.py").write_text(f"raise ImportError('the user\\'s own {package!r} package was imported')\n")


@pytest.mark.e2e
def test_a_search_from_a_folder_holding_packages_named_data_search_analysis_trainable(tmp_path, datasets_dir):
    project = tmp_path / "project"
    project.mkdir()
    _decoys(project)
    config = {
        "name": "decoys",
        "storage_path": str(project / "results"),
        "data": {"source": "go_emotions", "max_len": 32, "train_limit": 64, "validation_limit": 32, "test_limit": 32},
        "model": {"name": "tiny-distilbert"},
        "train": {"epochs": 1, "batch_size": 16},
        "search": {"algorithm": "grid", "space": {"optimizer": ["adam"], "lr_factor": [1.0]}, "scheduler": {"name": "fifo"}},
    }
    (project / "exp.yaml").write_text(json.dumps(config))
    env = {
        **os.environ,
        "SWEETSPOT_DATA_DIR": str(datasets_dir),
        "SWEETSPOT_CACHE_DIR": str(tmp_path / "cache"),
        "PYTHONPATH": str(project),
    }  # the user's folder first on the path, as Ray's --working-dir puts it
    run = subprocess.run([SWEETSPOT, "search", "exp.yaml"], cwd=project, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    analyze = subprocess.run(
        [SWEETSPOT, "analyze", "results/decoys", "--json", "--no-report"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert analyze.returncode == 0, analyze.stderr[-3000:]
    (trial,) = json.loads(analyze.stdout)["trials"]
    assert trial["status"] == "terminated" and trial["epochs"] == 1
