"""Experiment files become typed frozen dataclasses; bad keys and types fail naming the key."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from sweetspot.search.config import ConfigError, ExperimentConfig, Range, load_experiment, load_experiment_dict, to_dict
from tests.conftest import REPO


def test_quickstart_example_loads_into_typed_frozen_config():
    config = load_experiment(REPO / "examples" / "quickstart.yaml")
    assert isinstance(config, ExperimentConfig)
    assert config.name == "quickstart" and config.model.name == "minilm-l6"
    assert config.data.source == "go_emotions" and config.data.path is None
    assert config.train.epochs == 3 and config.search.num_samples == 12 and config.search.max_concurrent_trials == 2
    assert config.search.algorithm == "edges" and config.search.stop_early_collapse and config.train.eval_every_steps
    assert isinstance(config.search.space.lr_factor, Range)
    assert config.search.space.optimizer == ("adam", "adagrad")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.epochs = 5  # type: ignore[misc]


def test_an_empty_file_gets_the_documented_defaults():
    config = load_experiment_dict({})
    defaults = {
        "name": "sweetspot",
        "storage_path": "./results",
        "data.source": "go_emotions",
        "data.path": None,
        "model.name": "minilm-l6",
        "train.epochs": 3,
        "search.num_samples": 8,
        "search.max_concurrent_trials": 2,
    }
    for dotted, expected in defaults.items():
        node = config
        for part in dotted.split("."):
            node = getattr(node, part)  # raises AttributeError if the key is missing
        assert node == expected, dotted


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"train": {"epoch": 3}}, "train.epoch: unknown key"),
        ({"search": {"num_samples": "many"}}, "search.num_samples: expected int, got 'many'"),
        ({"search": {"num_samples": True}}, "search.num_samples: expected int"),
        ({"search": {"space": {"lr": {"low": 1e-5}}}}, "search.space.lr"),
        ({"search": {"space": {"optimizer": ["adam", "lion"]}}}, "search.space.optimizer[1]: unknown optimizer 'lion'"),
        ({"data": "go_emotions"}, "data: expected a mapping"),
        ({"data": {"max_len": 2.5}}, "data.max_len: expected int"),
        ({"model": {"pooling": "max"}}, "model.pooling: expected cls or mean"),
        ({"train": {"epochs": 0}}, "train.epochs: must be >= 1"),
        ({"name": ".."}, "name: '..' is not a plain folder name"),
        ({"name": "."}, "name: '.' is not a plain folder name"),
        ({"name": "a/b"}, "name: 'a/b' is not a plain folder name"),
        ({"search": {"seeds": 2}}, "search.seeds: 2 seeds with scheduler asha would give Optuna means over different epochs"),
    ],
)
def test_bad_values_fail_with_the_dotted_key(raw, message):
    with pytest.raises(ConfigError) as e:
        load_experiment_dict(raw)
    assert str(e.value).startswith(message.split(":")[0]), str(e.value)
    assert message in str(e.value)


def test_seeds_with_asha_are_refused_only_where_optuna_averages_them():
    # tpe/random average a configuration's seeds for Optuna (Repeater); a grid's trials stand alone.
    assert load_experiment_dict({"search": {"seeds": 2, "scheduler": {"name": "fifo"}}}).search.seeds == 2
    grid = {"algorithm": "grid", "seeds": 2, "space": {"optimizer": ["adam"], "lr_factor": [1.0]}}
    assert load_experiment_dict({"search": grid}).search.scheduler.name == "asha"
    for algorithm in ("tpe", "random"):
        with pytest.raises(ConfigError, match="search.seeds"):
            load_experiment_dict({"search": {"algorithm": algorithm, "seeds": 3, "scheduler": {"name": "asha"}}})


def test_floats_written_without_a_dot_are_numbers():
    # YAML 1.1 reads `1e-4` as a string; the config accepts it as the number it means.
    config = load_experiment_dict({"train": {"lr": "1e-4"}, "search": {"space": {"weight_decay": "1e-2"}}})
    assert config.train.lr == pytest.approx(1e-4)
    assert config.search.space.weight_decay == pytest.approx(1e-2)


def test_set_overrides_any_key(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: a\ntrain:\n  epochs: 3\n")
    config = load_experiment(
        path,
        [
            "train.epochs=5",
            "data.train_limit=100",
            "search.space.optimizer=[adam, adamw]",
            "search.space.lr={low: 1.0e-5, high: 1.0e-3}",
            "data.path=/x",
        ],
    )
    assert config.train.epochs == 5
    assert config.data.train_limit == 100
    assert config.search.space.optimizer == ("adam", "adamw")
    assert config.search.space.lr == Range(1e-5, 1e-3, True)
    assert config.data.path == "/x"
    with pytest.raises(ConfigError, match=r"exp.yaml: train.epochs: expected int"):
        load_experiment(path, ["train.epochs=three"])
    with pytest.raises(ConfigError, match=r"expected KEY=VALUE"):
        load_experiment(path, ["train.epochs"])


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: a\ntrain:\n  epochs: [3\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:\d+: not valid YAML"):
        load_experiment(path)


def test_resolved_config_round_trips():
    config = load_experiment(REPO / "examples" / "quickstart.yaml")
    assert load_experiment_dict(to_dict(config)) == config


def test_cli_reports_a_config_error_in_one_line_with_exit_code_2(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("name: a\nsearch:\n  num_sample: 3\n")
    for command in ("prepare", "search"):
        proc = subprocess.run(
            [sys.executable, "-m", "sweetspot.cli", command, str(path)], capture_output=True, text=True, cwd=REPO
        )
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "search.num_sample: unknown key" in lines[0], proc.stderr


def test_the_edges_search_is_built_from_the_experiment_and_refuses_asha_and_seeds():
    from sweetspot.search.edges import EdgeSearch
    from sweetspot.search.runner import search_components

    base = {
        "search": {
            "algorithm": "edges",
            "num_samples": 30,
            "scheduler": {"name": "fifo"},
            "space": {"optimizer": ["adam", "adagrad"], "lr_factor": {"low": 0.001, "high": 10.0}, "weight_decay": [0.0, 0.01]},
        }
    }
    parts = search_components(load_experiment_dict(base))
    assert isinstance(parts.searcher, EdgeSearch) and parts.num_samples == 30 and parts.grid is None
    knobs = {"delta": 0.05, "resolution": 0.25, "probes": 3, "seeds": 3, "noise": 0.03, "relatives": False, "twins": False}
    searcher = search_components(load_experiment_dict({"search": {**base["search"], "edges": knobs}})).searcher
    assert (searcher._delta, searcher._resolution, searcher._probes, searcher._seeds, searcher._noise) == (0.05, 0.25, 3, 3, 0.03)
    assert searcher._relative == {} and searcher._twin == {}
    assert to_dict(load_experiment_dict({"search": {**base["search"], "edges": knobs}}))["search"]["edges"] == knobs
    for key, bad, message in [
        ("delta", -0.1, ">= 0"),
        ("resolution", 0, "> 0"),
        ("probes", 1, ">= 2"),
        ("seeds", 0, ">= 1"),
        ("noise", -1, ">= 0"),
    ]:
        with pytest.raises(ConfigError, match=f"search.edges.{key}: must be {message}, got"):
            load_experiment_dict({"search": {**base["search"], "edges": {key: bad}}})
    with pytest.raises(ConfigError, match="search.scheduler.name: the edges search reads every trial at the budget"):
        load_experiment_dict({"search": {**base["search"], "scheduler": {"name": "asha"}}})
    with pytest.raises(ConfigError, match="search.seeds: the edges search chooses its own seeds"):
        load_experiment_dict({"search": {**base["search"], "seeds": 2}})
    with pytest.raises(ConfigError, match="search.stop_early_collapse: decides from evaluations within the first epoch"):
        load_experiment_dict({"search": {**base["search"], "stop_early_collapse": True}})
