"""The cluster files pass the validation `ray up` applies, a typo fails it, and they hold what the
project needs from a cluster: the pinned Ray image, a head without trials, a local-only dashboard,
token authentication on every node with the token as a file mount, and no credentials.

`ray up` (ray.autoscaler._private.commands.create_or_update_cluster → _bootstrap_config) loads the
YAML, runs `prepare_config` (defaults, legacy fields, docker checks, per-type worker counts), asks
the cloud to fill in node resources, then `validate_config` (Ray's JSON schema, ray-schema.json,
with `additionalProperties: false` at the top level, in `auth`, `docker` and every node type), then
the provider's `bootstrap_config`. For AWS the last two steps need the AWS API, so the AWS file
runs the steps before them; the on-prem file runs `_bootstrap_config` whole (it is offline).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from click import ClickException
from ray.autoscaler._private.commands import _bootstrap_config
from ray.autoscaler._private.util import prepare_config, validate_config

from sweetspot.search.config import ConfigError, load_experiment, load_experiment_dict
from tests.conftest import REPO

AWS = REPO / "cluster.yaml"
ONPREM = REPO / "examples" / "cluster-onprem.yaml"


def validate_like_ray_up(config: dict) -> dict:
    """The checks of `ray up` that need no cloud account; returns the prepared config."""
    if config["provider"]["type"] == "local":
        return _bootstrap_config(copy.deepcopy(config), no_config_cache=True)
    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_cluster_file_passes_ray_up_validation(path):
    prepared = validate_like_ray_up(_load(path))
    assert prepared["head_node_type"] in prepared["available_node_types"]


def _misspell_top_level(c):
    c["head_start_ray_comands"] = c.pop("head_start_ray_commands")


def _misspell_auth(c):
    c["auth"]["ssh_usr"] = c["auth"].pop("ssh_user")


def _wrong_type(c):
    c["idle_timeout_minutes"] = "ten"


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
@pytest.mark.parametrize(
    "breakage, named",
    [
        (_misspell_top_level, "head_start_ray_comands"),
        (_misspell_auth, "ssh_usr"),
        (_wrong_type, "'ten' is not of type 'number'"),
    ],
    ids=["top-level key", "auth key", "wrong type"],
)
def test_a_broken_copy_fails_ray_up_validation_naming_the_problem(path, breakage, named):
    config = _load(path)
    breakage(config)
    with pytest.raises(jsonschema.ValidationError, match=re.escape(named)):
        validate_like_ray_up(config)


def test_a_misspelled_node_type_key_fails_ray_up_validation():
    config = _load(AWS)
    config["available_node_types"]["gpu_worker"]["max_worker"] = config["available_node_types"]["gpu_worker"].pop("max_workers")
    with pytest.raises(jsonschema.ValidationError, match="'max_worker' was unexpected"):
        validate_like_ray_up(config)


def test_onprem_file_without_head_ip_is_refused_like_ray_up():
    config = _load(ONPREM)
    del config["provider"]["head_ip"]
    with pytest.raises(ClickException, match="head_ip"):
        validate_like_ray_up(config)


def _start_commands(config: dict) -> tuple[str, str]:
    """The `ray start` command of the head and of a worker (the last command of each list)."""
    return config["head_start_ray_commands"][-1], config["worker_start_ray_commands"][-1]


def test_aws_cluster_pins_ray_runs_no_trials_on_the_head_and_has_a_scalable_gpu_worker():
    config = _load(AWS)
    assert config["provider"]["type"] == "aws"
    # The image carries the Ray this project pins (pyproject: ray>=2.60,<2.61) and is not ray-ml.
    assert config["docker"]["image"] == f"rayproject/ray:{ray.__version__}-py311-gpu"
    assert ray.__version__.startswith("2.60.")
    head_start, _ = _start_commands(config)
    assert "--head" in head_start and "--num-cpus=0" in head_start
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"] == {"CPU": 0} and head["max_workers"] == 0
    (worker,) = [t for name, t in config["available_node_types"].items() if name != config["head_node_type"]]
    assert worker["resources"]["GPU"] == 1 and worker["min_workers"] == 0 and worker["max_workers"] >= 1
    assert worker["node_config"]["InstanceType"] == "g5.xlarge"
    assert "pip install -q -e /home/ray/sweetspot" in config["setup_commands"]


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_token_auth_on_every_node_with_the_token_mounted_and_the_dashboard_local_only(path):
    config = _load(path)
    head_start, worker_start = _start_commands(config)
    for start in (head_start, worker_start):
        assert "RAY_AUTH_MODE=token ray start" in start
    assert "--dashboard-host=127.0.0.1" in head_start  # reached through `ray dashboard <file>` (an SSH tunnel)
    # The user's token file goes to the same place on every node (the file mounts reach the workers too).
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"


@pytest.mark.parametrize("path", [AWS, ONPREM], ids=["aws", "onprem"])
def test_cluster_file_holds_no_credentials(path):
    text = path.read_text()
    config = yaml.safe_load(text)
    assert "aws_credentials" not in config["provider"]
    assert set(config["auth"]) <= {"ssh_user", "ssh_private_key"}
    assert config["auth"].get("ssh_private_key", "~").startswith(("~", "/"))  # a path to the key, not the key
    for pattern in (
        r"AKIA[0-9A-Z]{16}",
        r"aws_secret_access_key\s*[:=]",
        r"RAY_AUTH_TOKEN\s*=",
        r"BEGIN [A-Z ]*PRIVATE KEY",
        r"\b[0-9a-f]{32,}\b",
        r"password\s*[:=]",
    ):
        assert not re.search(pattern, text, re.IGNORECASE), pattern


def test_onprem_cluster_uses_ssh_hosts_an_nfs_results_path_and_the_venvs_ray():
    config = _load(ONPREM)
    provider = config["provider"]
    assert provider["type"] == "local" and provider["head_ip"] and provider["worker_ips"]
    assert config["auth"]["ssh_user"] and config["auth"]["ssh_private_key"]
    setup = " ".join(config["setup_commands"])
    assert "mountpoint -q /mnt/nfs" in setup and "/mnt/nfs/sweetspot-results" in setup
    head_start, worker_start = _start_commands(config)
    for start in (head_start, worker_start):
        assert start.startswith(". ~/sweetspot-venv/bin/activate &&")  # job drivers inherit the venv's PATH
    assert "--num-cpus=0" in head_start


@pytest.mark.parametrize("gpus", [0.5, 0.25, 1, 2])
def test_experiment_accepts_fractional_and_whole_gpus_per_trial(gpus):
    config = load_experiment_dict({"resources": {"cpus_per_trial": 2, "gpus_per_trial": gpus}})
    assert config.resources.gpus_per_trial == gpus and config.resources.cpus_per_trial == 2
    # The study's GPU preset with half a GPU per trial: two trials share one A10G.
    preset = load_experiment(
        REPO / "examples" / "eurlex4k-seed-protocol.yaml", ["resources.gpus_per_trial=0.5", "train.bf16=true"]
    )
    assert preset.resources.gpus_per_trial == 0.5 and preset.train.bf16 is True


def test_experiment_refuses_negative_gpus_per_trial():
    with pytest.raises(ConfigError, match=r"resources\.gpus_per_trial: must be >= 0"):
        load_experiment_dict({"resources": {"gpus_per_trial": -0.5}})


IAM = REPO / "examples" / "iam"


def _statements(name: str) -> list[dict]:
    import json

    return json.loads((IAM / name).read_text())["Statement"]


def test_gpu_workers_get_an_s3_only_profile_narrower_than_the_launchers_default():
    # `ray up` gives the head `ray-autoscaler-v1` (AmazonEC2FullAccess + AmazonS3FullAccess); trials
    # run their code on the workers, which need the results prefix on S3 and nothing else.
    config = _load(AWS)
    (worker,) = [t for name, t in config["available_node_types"].items() if name != config["head_node_type"]]
    profile = worker["node_config"]["IamInstanceProfile"]["Name"]
    assert profile == "sweetspot-gpu-worker" and profile != "ray-autoscaler-v1"
    worker_policy = _statements("sweetspot-gpu-worker-policy.json")
    actions = {a for s in worker_policy for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions and all(a.startswith("s3:") and "*" not in a for a in actions)
    assert {s["Effect"] for s in worker_policy} == {"Allow"}
    resources = {s["Resource"] for s in worker_policy}
    assert resources == {"arn:aws:s3:::YOUR-BUCKET", "arn:aws:s3:::YOUR-BUCKET/sweetspot/*"}  # one bucket, one prefix
    # The head may hand that role, and only it, to the instances it launches.
    (pass_role,) = _statements("head-pass-worker-role.json")
    assert pass_role["Action"] == "iam:PassRole" and pass_role["Resource"].endswith(":role/sweetspot-gpu-worker")
    (trust,) = _statements("ec2-trust.json")
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    # The file says how to create it, with these files.
    text = AWS.read_text()
    for name in ("ec2-trust.json", "sweetspot-gpu-worker-policy.json", "head-pass-worker-role.json"):
        assert f"file://examples/iam/{name}" in text


def test_dependencies_install_once_per_node_through_a_cache_and_not_at_all_from_a_prebuilt_image():
    config = _load(AWS)
    first = config["setup_commands"][0]
    assert first.startswith('python -c "import torch, transformers')
    assert "|| pip install -q --cache-dir /home/ray/.cache/pip" in first
    assert "-v /home/ubuntu/.cache/pip:/home/ray/.cache/pip" in config["docker"]["run_options"]
    dockerfile = (REPO / "examples" / "docker" / "Dockerfile").read_text()
    assert f"FROM {config['docker']['image']}" in dockerfile  # the same pinned Ray


def test_the_iam_script_fills_in_the_bucket_and_account_and_runs_every_step(tmp_path):
    import os
    import subprocess

    log = tmp_path / "aws.log"
    fake = tmp_path / "bin" / "aws"
    fake.parent.mkdir()
    # A stand-in `aws`: logs each call (and the policy files it is given), answers the identity query,
    # and says that nothing exists yet.
    fake.write_text(f"""#!/usr/bin/env bash
echo "aws $*" >> {log}
for a in "$@"; do case "$a" in file://*) cat "${{a#file://}}" >> {log};; esac; done
case "$1 $2" in "sts get-caller-identity") echo 123456789012;; "iam get-role"|"iam get-instance-profile") exit 254;; esac
""")
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    script = str(IAM / "setup.sh")
    subprocess.run(["bash", script, "my-results"], env=env, check=True, capture_output=True, timeout=30)
    first = log.read_text()
    for step in (
        "iam create-role --role-name sweetspot-gpu-worker",
        "iam put-role-policy --role-name sweetspot-gpu-worker",
        "iam create-instance-profile",
        "iam add-role-to-instance-profile",
    ):
        assert step in first, step
    assert "arn:aws:s3:::my-results/sweetspot/*" in first and "YOUR-BUCKET" not in first
    subprocess.run(["bash", script, "my-results", "--head"], env=env, check=True, capture_output=True, timeout=30)
    head = log.read_text()[len(first) :]
    assert "--role-name ray-autoscaler-v1" in head and "arn:aws:iam::123456789012:role/sweetspot-gpu-worker" in head
