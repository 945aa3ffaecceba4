"""ppo.py: settings from flags and POPGYM_* variables, a real Tune run, and resume after a kill."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import ppo
from models import MODELS, PAPER_MODELS
from results_schema import load_trial

REPO = Path(__file__).resolve().parents[1]
TINY = ["--workers", "0", "--envs-per-worker", "2", "--bptt-cutoff", "32", "--minibatch", "2"]


def test_defaults_are_the_papers() -> None:
    settings = ppo.parse_settings([], environ={})
    assert settings.models == ("RayFFM",)
    assert settings.envs == tuple(ppo.env_groups()["ALL"])  # the paper's 45 envs
    assert (settings.steps, settings.samples, settings.workers, settings.envs_per_worker) == (15_000_000, 1, 4, 16)
    assert (settings.bptt_cutoff, settings.minibatch, settings.project) == (1024, 8, "")
    assert settings.train_batch_size == 65_536 and settings.minibatch_size == 8192
    assert settings.storage == REPO / "results"


def test_variables_are_read_and_flags_win() -> None:
    environ = {"POPGYM_MODELS": "GRU,LSTM", "POPGYM_EXPERIMENT": "DIAGNOSTIC_EASY", "POPGYM_STEPS": "2e5"}
    settings = ppo.parse_settings(["--models", "RayFFM,GRU,RayFFM"], environ=environ)
    assert settings.models == ("RayFFM", "GRU")
    assert settings.steps == 200_000
    assert set(settings.envs) == {"AutoencodeEasy", "RepeatPreviousEasy", "RepeatFirstEasy", "CountRecallEasy"}
    paper_grid = ppo.parse_settings([], environ={"POPGYM_MODELS": "ALL"}).models
    assert len(paper_grid) == 20 and set(paper_grid) == {model.name for model in PAPER_MODELS}
    assert set(MODELS) - set(paper_grid) == {"RayFFM_32_104", "LinearAttentionDot"}  # by name only, outside ALL
    assert ppo.parse_settings(["--models", "RayFFM_32_104"], environ={}).models == ("RayFFM_32_104",)


def test_env_names_groups_and_splits() -> None:
    environ = {"POPGYM_EXPERIMENT": "RepeatPreviousEasy,CONTROL_EASY"}
    envs = ppo.parse_settings([], environ=environ).envs
    assert envs[0] == "RepeatPreviousEasy" and "PositionOnlyCartPoleEasy" in envs
    halves = [ppo.parse_settings(["--num-splits", "2", "--split-id", str(i)], environ=environ).envs for i in (0, 1)]
    assert sorted(halves[0] + halves[1]) == sorted(envs) and not set(halves[0]) & set(halves[1])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--models", "RayFFM,Transformer"], "unknown model 'Transformer'; valid models: RayFFM, "),
        (["--experiment", "CartPole"], "unknown env 'CartPole'; valid envs: AutoencodeEasy, "),
        (["--steps", "lots"], "--steps: expected a whole number, got 'lots'"),
        (["--steps", "1.5"], "--steps: expected a whole number, got '1.5'"),
        (["--workers", "-1"], "--workers: expected a value >= 0, got -1"),
        (["--gpu", "x"], "--gpu: expected a number, got 'x'"),
        (["--num-splits", "2", "--split-id", "2"], "expected 0 <= split id < 2"),
        (
            ["--samples", "3", "--seeds", "3"],
            "--seeds: expected distinct whole numbers in 0 .. 2 (--samples 3), got '3'",
        ),
        (["--samples", "3", "--seeds", "1,1"], "--seeds: expected distinct whole numbers in 0 .. 2"),
    ],
)
def test_bad_values_exit_with_one_clear_message(argv, message, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        ppo.parse_settings(argv, environ={})
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_help_documents_flags_and_variables() -> None:
    result = subprocess.run([sys.executable, "ppo.py", "--help"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0
    for flag, variable, *_ in ppo.OPTIONS:
        assert f"--{flag}" in result.stdout and variable in result.stdout


def test_a_trial_asks_for_a_cpu_per_env_runner_and_one_for_its_learner() -> None:
    assert ppo.trial_resources(ppo.parse_settings(["--gpu", "0"], environ={})) == {"CPU": 5, "GPU": 0}
    one_core = ppo.parse_settings(["--workers", "0", "--envs-per-worker", "64", "--gpu", "1"], environ={})
    assert ppo.trial_resources(one_core) == {"CPU": 1, "GPU": 1}
    for preset in ppo.PRESETS:  # every preset, and so every committed run, fits one core per trial
        assert ppo.trial_resources(ppo.parse_settings(["--preset", preset, "--gpu", "0"], environ={}))["CPU"] == 1


def test_a_trial_too_big_for_this_machine_ends_before_ray_starts(tmp_path: Path, monkeypatch, capsys) -> None:
    """The authors' defaults (4 env runners: 5 CPUs per trial) on 2 cores: one clear error, naming the setting
    that fits, before Ray starts or the experiment folder is made; on a cluster (--address) no such check."""
    import ray

    monkeypatch.setattr(ppo, "local_resources", lambda: {"CPU": 2, "GPU": 0})
    settings = ppo.parse_settings(["--experiment", "RepeatPreviousEasy", "--storage", str(tmp_path)], environ={})
    with monkeypatch.context() as no_ray, pytest.raises(SystemExit) as exit_info:
        no_ray.setattr(ray, "init", lambda *args, **kwargs: pytest.fail("Ray was started"))  # (another test's may run)
        ppo.run(settings)
    message = str(exit_info.value.code)
    assert "a trial asks for 5 CPUs (4 env runners + 1 for the trial's learner)" in message
    assert "this machine has 2 CPUs" in message
    assert "--workers 0 --envs-per-worker 64 (the same batch of 65,536 env steps on one core per trial" in message
    assert not (tmp_path / settings.name).exists()
    assert "new API stack" not in capsys.readouterr().err  # RLlib's notice is hidden here too
    fits = ppo.parse_settings(["--workers", "0", "--envs-per-worker", "64", "--gpu", "0"], environ={})
    assert ppo.unfit_for_this_machine(fits, {"CPU": 1, "GPU": 0}) is None
    gpu = ppo.parse_settings(["--workers", "0", "--gpu", "1"], environ={})
    assert "To fit: train on the CPU, --gpu 0;" in ppo.unfit_for_this_machine(gpu, {"CPU": 2, "GPU": 0})
    monkeypatch.setattr(ppo, "unfit_for_this_machine", lambda *args: pytest.fail("checked on a cluster"))
    monkeypatch.setattr(ppo, "_check_same_experiment", lambda *args: pytest.fail("stop here: past the check"))
    for variable, value in (("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1"), ("RAY_AIR_NEW_OUTPUT", "0")):
        monkeypatch.setenv(variable, value)  # run() sets them; restored after the test
    cluster = ppo.parse_settings(["--address", "auto", "--storage", str(tmp_path / "shared")], environ={})
    with pytest.raises(pytest.fail.Exception, match="past the check"):
        ppo.run(cluster)


def test_tunes_warning_that_no_trial_can_be_placed_reaches_the_console(tmp_path: Path, monkeypatch, capsys) -> None:
    """Ray's and Tune's logs go to ray.log, but Tune's warning that a trial fits no node (a cluster too small
    for one trial) is written to the console as well."""
    import logging

    for name in ("ray", ppo.UNPLACEABLE_LOGGER):
        monkeypatch.setattr(logging.getLogger(name), "handlers", list(logging.getLogger(name).handlers))
    ppo.route_ray_logs(ppo.parse_settings([], environ={}), tmp_path)
    logging.getLogger(ppo.UNPLACEABLE_LOGGER).warning("You asked for 5 CPUs and 0 GPUs per trial")
    logging.getLogger("ray.tune.tune").warning("another of Tune's lines")
    for handler in logging.getLogger("ray").handlers:
        handler.flush()
    assert capsys.readouterr().err.strip() == "You asked for 5 CPUs and 0 GPUs per trial"
    logged = (tmp_path / "ray.log").read_text()
    assert "You asked for 5 CPUs" in logged and "another of Tune's lines" in logged


def test_wrapped_envs_carry_previous_action_and_antialias_flag() -> None:
    env = ppo.make_env("RepeatPreviousEasy")
    observation, _ = env.reset(seed=0)
    assert len(observation) == 3 and observation[2] == 1  # (obs, previous action, first-step flag)
    observation, *_ = env.step(2)
    assert observation[1] == 2 and observation[2] == 0


def run_ppo(storage: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "ppo.py", "--experiment", "RepeatPreviousEasy", "--storage", str(storage), *TINY, *extra]
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def progress(storage: Path, trial: str) -> pd.DataFrame:
    return load_trial(storage / "popgym-ppo" / trial)


def test_tune_run_writes_results_with_mmer_and_a_quiet_console(tmp_path: Path) -> None:
    process = run_ppo(tmp_path, "--models", "RayFFM,BasicMLP", "--steps", "256")
    console, _ = process.communicate(timeout=600)
    assert process.returncode == 0, console[-3000:]
    lines = console.splitlines()
    # the settings, a line per finished trial, the overall progress, and (off a terminal) the bars once a minute
    assert len(lines) <= 20, console
    for model in ("RayFFM", "BasicMLP"):
        finished = f"RepeatPreviousEasy-{model}-0"
        # whole episodes: at least the 256 steps asked for
        assert any(
            line.startswith(finished) and re.search(r"done: (25[6-9]|2[6-9]\d|3\d\d) steps, MMER", line)
            for line in lines
        ), console
    assert lines[-1].startswith("all trials") and "100%" in lines[-1] and "512/512 steps" in lines[-1]
    for noise in ("NaN or Inf", "Traceback", "WARNING", "Warning", "started with configuration", "num_env_runners"):
        assert noise not in console
    ray_log = (tmp_path / "popgym-ppo" / "ray.log").read_text()
    assert "Started a local Ray instance" in ray_log and "new API stack" not in ray_log
    trials = sorted(path.name for path in (tmp_path / "popgym-ppo").iterdir() if path.is_dir())
    assert trials == ["RepeatPreviousEasy-BasicMLP-0", "RepeatPreviousEasy-RayFFM-0"]
    for trial in trials:
        table = progress(tmp_path, trial)
        # batch_mode complete_episodes (the authors' ppo.py): each iteration samples whole episodes only, at
        # least 2 envs x 32 steps; truncate_episodes would sample exactly 64
        sampled = table["num_env_steps_sampled_lifetime"]
        per_iteration = sampled.diff().fillna(sampled.iloc[0])
        episodes = table["env_runners/num_episodes"] * table["env_runners/episode_len_mean"]
        pd.testing.assert_series_equal(per_iteration, episodes.astype(float), check_names=False)
        assert (per_iteration > 64).all() and sampled.iloc[-1] >= 256 and sampled.iloc[-2] < 256
        returns = table["env_runners/episode_return_mean"]  # every iteration finishes episodes
        assert returns.notna().all()
        expected = returns.where(returns.notna(), -float("inf")).cummax().replace(-float("inf"), float("nan"))
        pd.testing.assert_series_equal(table["mmer"], expected, check_names=False)
        assert {"time_total_s", "timestamp"} <= set(table.columns)
        # a trial with --workers 0 holds one CPU (its env runner samples in the trial process): one thread
        assert (table["torch_threads"] == 1).all() and (table["env_runners/torch_threads"] == 1).all()
    internals = progress(tmp_path, "RepeatPreviousEasy-RayFFM-0")
    decay_times = internals[[f"env_runners/ffm/decay_time/{i:02d}" for i in range(32)]].iloc[-1]
    assert 4 < decay_times.iloc[0] < 10 and decay_times.iloc[-1] > 500  # from 6.8 to 1024 steps at init
    assert 0 < internals["env_runners/ffm/input_gate/mean"].iloc[-1] < 1
    assert not any(column.startswith("env_runners/ffm/") for column in progress(tmp_path, trials[0]).columns)


def test_seeds_run_one_part_of_the_seed_grid(tmp_path: Path) -> None:
    """A grid's seeds in chunks: --seeds 1 of --samples 2 trains seed 1 only, and says so."""
    assert ppo.parse_settings(["--samples", "3"], environ={}).seeds == (0, 1, 2)
    assert ppo.parse_settings(["--samples", "3"], environ={"POPGYM_SEEDS": "2,0"}).seeds == (0, 2)
    process = run_ppo(tmp_path, "--models", "BasicMLP", "--steps", "64", "--samples", "2", "--seeds", "1")
    console, _ = process.communicate(timeout=600)
    assert process.returncode == 0, console[-3000:]
    assert console.startswith("1 envs x 1 models x seeds 1 of 2, 64 steps each"), console
    experiment = tmp_path / "popgym-ppo"
    assert sorted(path.name for path in experiment.iterdir() if path.is_dir()) == ["RepeatPreviousEasy-BasicMLP-1"]
    assert json.loads((experiment / "RepeatPreviousEasy-BasicMLP-1" / "params.json").read_text())["seed"] == 1


def test_rerun_after_a_kill_resumes_without_losing_or_repeating_trials(tmp_path: Path) -> None:
    arguments = ("--models", "BasicMLP,GRU", "--steps", "640", "--checkpoint-every", "1")
    process = run_ppo(tmp_path, *arguments)
    experiment = tmp_path / "popgym-ppo"
    deadline = time.monotonic() + 300
    while not list(experiment.glob("*/checkpoint_*")) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert process.poll() is None, "the first run finished before it could be interrupted"
    os.kill(process.pid, signal.SIGINT)
    process.communicate(timeout=120)
    interrupted = {path.parent.name: len(load_trial(path.parent)) for path in experiment.glob("*/result.json")}
    assert interrupted and min(interrupted.values()) < 7  # 640 steps: 7 iterations of two 51-step episodes

    process = run_ppo(tmp_path, *arguments)
    console, _ = process.communicate(timeout=600)
    assert process.returncode == 0, console[-3000:]
    trials = sorted(path.name for path in experiment.iterdir() if path.is_dir())
    assert trials == ["RepeatPreviousEasy-BasicMLP-0", "RepeatPreviousEasy-GRU-0"]
    for trial in trials:
        table = progress(tmp_path, trial)
        assert table["num_env_steps_sampled_lifetime"].iloc[-1] >= 640
        iterations = table["training_iteration"]
        assert iterations.is_unique and list(iterations) == list(range(1, len(iterations) + 1)), trial

    with pytest.raises(subprocess.CalledProcessError) as error:
        command = [sys.executable, "ppo.py", "--experiment", "RepeatPreviousEasy", "--storage", str(tmp_path), *TINY]
        subprocess.run(command + ["--models", "LSTM"], cwd=REPO, capture_output=True, text=True, check=True)
    assert "holds an experiment with other settings (models: ['BasicMLP', 'GRU'] -> ['LSTM']," in error.value.stderr


def test_verbose_is_a_flag_and_a_variable_but_no_setting_of_the_experiment(tmp_path: Path) -> None:
    quiet = ppo.parse_settings(["--storage", str(tmp_path)], environ={})
    assert not quiet.verbose and ppo.parse_settings([], environ={"POPGYM_VERBOSE": "1"}).verbose
    experiment = tmp_path / quiet.name
    experiment.mkdir()
    (experiment / "settings.json").write_text(json.dumps(ppo._settings_record(quiet)))
    ppo._check_same_experiment(experiment, ppo.parse_settings(["--storage", str(tmp_path), "--verbose"], environ={}))
    assert "verbose" not in json.loads((experiment / "settings.json").read_text())


def test_demo_preset_is_a_default_that_flags_and_variables_override() -> None:
    demo = ppo.parse_settings(["--preset", "demo"], environ={})
    assert demo.models == ("RayFFM", "GRU", "BasicMLP") and demo.name == "demo" and demo.workers == 0
    assert ppo.parse_settings(["--steps", "100"], environ={"POPGYM_PRESET": "demo"}).steps == 100
    assert ppo.parse_settings(["--preset", "demo"], environ={"POPGYM_STEPS": "200"}).steps == 200


def test_cpu_presets_span_the_groups_and_share_the_ablation_envs() -> None:
    """Issue 8's CPU runs: six envs over diagnostic, control, noisy and game; the ablations on two of them."""
    main = ppo.parse_settings(["--preset", "cpu"], environ={})
    ablations = ppo.parse_settings(["--preset", "cpu-ablations"], environ={})
    groups = ppo.env_groups()
    for group in ("DIAGNOSTIC", "CONTROL", "NOISY", "GAME"):
        assert set(main.envs) & set(groups[f"{group}_EASY"]), group
    assert len(main.envs) == 6 and main.samples == ablations.samples == 3
    assert set(ablations.envs) < set(main.envs) and "RayFFM" in main.models
    assert ablations.models == tuple(name for name in MODELS if name.startswith("RayFFMNo"))
    same = ("steps", "workers", "envs_per_worker", "bptt_cutoff", "minibatch")
    assert all(getattr(main, key) == getattr(ablations, key) for key in same)


def test_env_groups_are_the_papers() -> None:
    """POPGym 689d89b's 15 env kinds x 3 levels; popgym 1.0.7's VelocityOnlyCartPole runs by name only."""
    groups = ppo.env_groups()
    assert len(groups["ALL"]) == 45 and not any(name.startswith("VelocityOnly") for name in groups["ALL"])
    assert set(groups["NAVIGATION_HARD"]) == {"LabyrinthEscapeHard", "LabyrinthExploreHard"}  # needs mazelib
    assert set(groups["CONTROL_EASY"]) == {"PositionOnlyCartPoleEasy", "PositionOnlyPendulumEasy"}
    assert ppo.parse_settings(["--experiment", "VelocityOnlyCartPoleEasy"], environ={}).envs == (
        "VelocityOnlyCartPoleEasy",
    )


def test_ten_times_preset_is_the_cpu_preset_with_ten_times_the_steps() -> None:
    cpu, ten = (ppo.parse_settings(["--preset", name], environ={}) for name in ("cpu", "cpu-10x"))
    assert ten.steps == 10 * cpu.steps and set(ten.envs) < set(cpu.envs) and ten.models == ("RayFFM", "GRU")
    same = ("samples", "workers", "envs_per_worker", "bptt_cutoff", "minibatch", "train_batch_size")
    assert all(getattr(ten, key) == getattr(cpu, key) for key in same)


def test_paper_settings_preset_has_the_papers_batch_on_one_machine() -> None:
    paper, preset = (ppo.parse_settings(argv, environ={}) for argv in ([], ["--preset", "paper-settings"]))
    same = ("bptt_cutoff", "minibatch", "train_batch_size", "minibatch_size")
    assert all(getattr(preset, key) == getattr(paper, key) for key in same)
    assert (preset.workers, preset.envs_per_worker) == (0, 4 * 16)  # the paper's 4 runners x 16 envs, in-process
    assert preset.models == ("RayFFM", "GRU") and preset.envs == ("RepeatPreviousEasy",) and preset.samples == 3
    assert preset.steps >= 1_000_000


def test_installed_popgym_is_not_shadowed_by_the_popgym_folder() -> None:
    import popgym

    assert popgym.__file__ is not None and "site-packages" in popgym.__file__
