"""ppo.py on a real two-node Ray cluster with nothing of this repository installed on the nodes.

A head and a second node run on this machine, each from its own temporary folder (Ray's runtime
resources, logs and sockets apart, as on two machines). ppo.py is started from a folder that is not the
checkout. The test checks that the code the nodes import is the copy Ray shipped with the job, that the
trials spread over both nodes and land under one storage path, that killing the second node in the
middle loses no trial (Tune retries it from its checkpoint), and that rerunning the command resumes.
"""

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import pytest

import ppo
from results_schema import load_trial
from tests.test_ppo import TINY

REPO = Path(__file__).resolve().parents[1]
STEPS = 1500  # about 15 iterations of two 51-step episodes: time to kill a node in the middle
GRID = ["--models", "BasicMLP", "--samples", "2", "--experiment", "RepeatPreviousEasy", "--steps", str(STEPS)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def ray_node(temp_dir: Path, *arguments: str) -> Iterator[subprocess.Popen]:
    """`ray start --block` with its own temporary folder and one CPU; stopped (all its processes) on exit."""
    temp_dir.mkdir()
    command = [sys.executable, "-m", "ray.scripts.scripts", "start", "--block", "--num-cpus", "1"]
    command += ["--temp-dir", str(temp_dir), "--dashboard-agent-listen-port", str(free_port()), *arguments]
    log = (temp_dir / "ray-start.log").open("w")
    node = subprocess.Popen(command, cwd=temp_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (temp_dir / "ray_current_cluster").exists():  # written once the node has joined
            assert node.poll() is None and time.monotonic() < deadline, (temp_dir / "ray-start.log").read_text()
            time.sleep(0.5)
        yield node
    finally:
        node.terminate()  # Ray stops the node's processes on SIGTERM
        with suppress(subprocess.TimeoutExpired):
            node.wait(timeout=60)
        with suppress(ProcessLookupError):
            os.killpg(node.pid, signal.SIGKILL)  # whatever of its process group is left
        log.close()


def run_ppo(address: str, storage: Path, cwd: Path) -> subprocess.Popen:
    command = [sys.executable, str(REPO / "ppo.py"), "--address", address, "--storage", str(storage), *GRID, *TINY]
    command += ["--checkpoint-every", "1"]
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def node_of(pid: int, nodes: dict[str, Path]) -> str:
    """The node whose Ray logs hold the worker with this pid (Tune's result.json records each trial's pid)."""
    [name] = [
        name for name, temp_dir in nodes.items() if list(temp_dir.glob(f"session_latest/logs/worker-*-{pid}.out"))
    ]
    return name


def results(trial: Path) -> list[dict]:
    """Every reported iteration, in order, as Tune wrote it (a retried trial's new rows follow the old)."""
    return [json.loads(line) for line in (trial / "result.json").read_text().splitlines() if line.strip()]


def pids(trial: Path) -> list[int]:
    """The process that reported each iteration."""
    return [row["pid"] for row in results(trial)]


def first_pid(trial: Path) -> int | None:
    """The process that reported the trial's first iteration, once Tune has written that line whole (else None).

    Read once per poll: result.json is written while we read it, so two reads can disagree.
    """
    path = trial / "result.json"
    first_line, newline, _ = (path.read_text() if path.exists() else "").partition("\n")
    return json.loads(first_line)["pid"] if newline else None


def check_shipped_code(address: str, nodes: dict[str, Path]) -> None:
    """With ppo.py's runtime environment, each node imports the copy Ray unpacked in its own folder."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    def where_imports_resolve() -> dict[str, str]:  # runs on a node (a local function: pickled by value)
        return {name: importlib.util.find_spec(name).origin for name in ("ppo", "models", "aggregations", "ffm")}

    ray.init(address=address, runtime_env=ppo.runtime_env(address))
    try:
        probe = ray.remote(num_cpus=1)(where_imports_resolve)
        for name, temp_dir in nodes.items():
            [node_id] = [node["NodeID"] for node in ray.nodes() if str(temp_dir) in node["RayletSocketName"]]
            strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
            origins = {
                module: Path(origin)
                for module, origin in ray.get(probe.options(scheduling_strategy=strategy).remote()).items()
            }
            resources = (temp_dir / "session_latest").resolve() / "runtime_resources"
            for module in ("ppo", "models", "aggregations"):
                assert origins[module].is_relative_to(resources / "working_dir_files"), (name, origins)
            assert origins["ffm"].is_relative_to(resources / "py_modules_files"), (name, origins)
    finally:
        ray.shutdown()


def test_grid_spreads_over_two_nodes_survives_a_node_kill_and_resumes(monkeypatch) -> None:
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # a test cluster on this machine, nodes inherit it
    with ExitStack() as stack:
        # a short path: Ray's socket paths under it must stay within the OS limit
        root = Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="ray-", dir="/tmp", ignore_cleanup_errors=True))
        )
        stack.enter_context(ray_node(root / "head", "--head", "--port", str(free_port()), "--include-dashboard=false"))
        address = (root / "head" / "ray_current_cluster").read_text().strip()
        worker = stack.enter_context(ray_node(root / "worker", "--address", address))
        nodes = {"head": root / "head", "worker": root / "worker"}
        check_shipped_code(address, nodes)

        submit, storage = root / "submit", root / "storage"  # the folder the grid is started from: no checkout
        submit.mkdir()
        driver = run_ppo(address, storage, submit)
        stack.callback(driver.kill)
        experiment = storage / "popgym-ppo"
        trials = [experiment / f"RepeatPreviousEasy-BasicMLP-{seed}" for seed in (0, 1)]

        # both trials running, one on each node; kill the second node once its trial has a checkpoint
        deadline = time.monotonic() + 300
        while True:
            assert driver.poll() is None and time.monotonic() < deadline, "no trial ran on the second node in time"
            first_pids = {trial: first_pid(trial) for trial in trials}
            placed = {node_of(pid, nodes): trial for trial, pid in first_pids.items() if pid is not None}
            killed = placed.get("worker")
            if len(placed) == 2 and list(killed.glob("checkpoint_*")):
                break
            time.sleep(0.2)
        os.killpg(worker.pid, signal.SIGKILL)  # the node, its raylet and the trial's worker process

        _, errors = driver.communicate(timeout=600)
        assert driver.returncode == 0, errors[-3000:]
        for trial in trials:  # no trial lost: both ran to the end, every iteration once
            table = load_trial(trial)
            assert table["num_env_steps_sampled_lifetime"].iloc[-1] >= STEPS
            assert list(table["training_iteration"]) == list(range(1, len(table) + 1)), trial.name
        # the killed trial was retried on the head, from its checkpoint rather than from the start
        first, retry = pids(killed)[0], pids(killed)[-1]
        assert node_of(first, nodes) == "worker" and node_of(retry, nodes) == "head"
        assert min(row["training_iteration"] for row in results(killed) if row["pid"] == retry) > 1
        [survivor] = [trial for trial in trials if trial != killed]
        assert {node_of(pid, nodes) for pid in pids(survivor)} == {"head"}

        # the same command again resumes the finished experiment: nothing reruns, nothing is rewritten
        before = {trial: (trial / "result.json").read_text() for trial in trials}
        rerun = run_ppo(address, storage, submit)
        stack.callback(rerun.kill)
        _, errors = rerun.communicate(timeout=600)
        assert rerun.returncode == 0, errors[-3000:]
        assert {trial: (trial / "result.json").read_text() for trial in trials} == before


@pytest.mark.parametrize(
    ("environ", "shipped"),
    [
        ({}, {"working_dir", "py_modules"}),
        # `ray job submit --working-dir . -- python ppo.py ...`: Ray Jobs shipped the checkout already
        (
            {"RAY_JOB_CONFIG_JSON_ENV_VAR": json.dumps({"runtime_env": {"working_dir": "gcs://_ray_pkg_0.zip"}})},
            {"py_modules"},
        ),
    ],
)
def test_runtime_env_ships_the_checkout_and_ffm_only_to_a_cluster(environ: dict, shipped: set) -> None:
    local = ppo.runtime_env("", environ={"PYTHONPATH": "/elsewhere"})
    assert local == {"env_vars": {"PYTHONPATH": os.pathsep.join([str(REPO), "/elsewhere"])}}
    cluster = ppo.runtime_env("10.0.0.1:6379", environ=environ)
    assert set(cluster) == shipped
    assert cluster["py_modules"] == [str(REPO / "standalone" / "ffm")]
    assert cluster.get("working_dir", str(REPO)) == str(REPO)


def test_cluster_settings_need_shared_storage_and_retry_failed_trials(tmp_path: Path, capsys) -> None:
    local = ppo.parse_settings([], environ={})
    assert (local.address, local.max_failures) == ("", 3)
    cluster = ppo.parse_settings(["--storage", str(tmp_path)], environ={"RAY_ADDRESS": "10.0.0.1:6379"})
    assert (cluster.address, cluster.storage) == ("10.0.0.1:6379", tmp_path)
    with pytest.raises(SystemExit):  # the default, results/ in this checkout, is on one machine only
        ppo.parse_settings(["--address", "auto"], environ={})
    assert "--storage: on a cluster (--address), give a folder every node can reach" in capsys.readouterr().err


def test_resuming_on_another_cluster_or_from_an_older_record_is_the_same_experiment(tmp_path: Path) -> None:
    settings = ppo.parse_settings(["--storage", str(tmp_path), "--address", "10.0.0.1:6379"], environ={})
    experiment = tmp_path / settings.name
    experiment.mkdir()
    older = ppo._settings_record(settings) | {"address": ""}
    del older["max_failures"]  # a record written before ppo.py had the setting
    (experiment / "settings.json").write_text(json.dumps(older))
    ppo._check_same_experiment(experiment, settings)
    (experiment / "settings.json").write_text(json.dumps(older | {"steps": 100}))
    with pytest.raises(SystemExit, match="steps: 100 -> 15000000"):
        ppo._check_same_experiment(experiment, settings)


def test_example_cluster_definition_is_valid_for_rays_cluster_launcher() -> None:
    import yaml
    from ray.autoscaler._private.util import fillout_defaults, validate_config

    config = fillout_defaults(yaml.safe_load((REPO / "cluster" / "aws.yaml").read_text()))
    validate_config(config)  # Ray's schema: raises on a wrong field
    assert config["available_node_types"][config["head_node_type"]]["resources"] == {"CPU": 0}
    for mounted in config["file_mounts"].values():  # the dependency pins only, never the code
        assert (REPO / mounted).name in {"requirements.txt", "constraints.txt"} and (REPO / mounted).is_file()
