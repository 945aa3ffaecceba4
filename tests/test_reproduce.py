"""scripts/reproduce.py: which commit a committed trial is re-run at, and how its curve is compared."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("reproduce", REPO / "scripts" / "reproduce.py")
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)


def committed_trials() -> list[tuple[str, str, str, int]]:
    """One (run, env, model, seed) per model of every committed chunk run."""
    trials = []
    for run in sorted({path.parent.parent.name for path in (REPO / "results").glob("*/*/popgym_curves.csv")}):
        if run == "before-rerun":
            continue
        table = pd.concat(pd.read_csv(path) for path in (REPO / "results" / run).glob("*/popgym_curves.csv"))
        for (env, model), rows in table.groupby(["env", "model"]):
            trials.append((run, env, model, int(rows["seed"].max())))
    return trials


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_every_committed_trial_has_a_recorded_commit_in_the_history() -> None:
    trials = committed_trials()
    assert {run for run, *_ in trials} >= {"cpu", "cpu-10x", "cpu-10x-init", "paper-settings"}
    for trial in trials:
        commit = reproduce.recorded_commit(*trial)
        found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=REPO, capture_output=True)
        assert found.returncode == 0, (trial, commit)
    assert reproduce.recorded_commit("cpu", "RepeatFirstEasy", "LinearAttention", 0) != reproduce.recorded_commit(
        "cpu", "RepeatFirstEasy", "RayFFM", 0
    )  # the cell's part that names the model


def test_a_curve_is_identical_only_with_every_iteration_to_the_tables_precision() -> None:
    committed = reproduce.committed_curve(reproduce.committed_curves("cpu"), "cpu", "RepeatFirstEasy", "RayFFM", 0)
    assert reproduce.compare(committed, committed).startswith(f"identical: {len(committed)} iterations")
    rounded = committed.assign(mmer=committed["mmer"] * (1 + 1e-7))
    assert reproduce.compare(committed, rounded).startswith("identical")
    changed = committed.copy()
    changed.loc[5, "mmer"] += 0.01
    assert reproduce.compare(committed, changed).startswith("differs from iteration 6:")
    assert reproduce.compare(committed, committed.iloc[:-1]).startswith("differs in length")


def test_head_runs_are_read_against_the_committed_seeds_spread() -> None:
    seeds = pd.Series({0: 0.2, 1: 0.4, 2: 0.6})  # std 0.2
    assert "within the seeds' spread (0.2000" in reproduce.within_spread(0.35, seeds, 0)
    assert "outside" in reproduce.within_spread(0.45, seeds, 0)


def test_a_run_is_made_with_its_own_preset_or_the_one_its_name_extends() -> None:
    assert reproduce.preset_of("cpu-10x-all") == "cpu-10x-all"
    assert reproduce.preset_of("cpu-linear-attention-dot") == "cpu"
    with pytest.raises(SystemExit, match="expected a run made with a ppo.py preset"):
        reproduce.preset_of("pomdp-sac")


SETTINGS = (
    "import dataclasses, json, sys, ppo; "
    "print(json.dumps(dataclasses.asdict(ppo.parse_settings(sys.argv[1:], {})), default=str))"
)


def parsed_settings(checkout: Path, arguments: list[str]) -> dict:
    """The settings the checkout's ppo.py makes of the arguments, less what differs by checkout or is per run."""
    printed = subprocess.run(
        [sys.executable, "-c", SETTINGS, *arguments],
        cwd=checkout,
        env=reproduce.checkout_environ(checkout),
        capture_output=True,
        text=True,
        check=True,
    )
    settings = json.loads(printed.stdout.splitlines()[-1])
    return {key: value for key, value in settings.items() if key not in ("storage", "name")}


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_a_preset_newer_than_the_recorded_commit_goes_as_flags_with_the_same_settings(tmp_path: Path) -> None:
    """cpu-10x-all's runs are recorded at a commit before the preset: its ppo.py gets the preset's settings as
    flags, and makes of them what this checkout's preset makes (on every setting both commits have)."""
    commit = reproduce.recorded_commit("cpu-10x-all", "HigherLowerEasy", "GRU", 0)
    checkout = tmp_path / commit
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(checkout), commit], cwd=REPO, check=True, capture_output=True
    )
    try:
        environ = reproduce.checkout_environ(checkout)
        assert reproduce.preset_arguments(checkout, "cpu-10x", environ) == ["--preset", "cpu-10x"]
        flags = reproduce.preset_arguments(checkout, "cpu-10x-all", environ)
        assert "--preset" not in flags
        trial = ["--experiment", "HigherLowerEasy", "--models", "GRU", "--samples", "1"]  # as reproduce sets them
        then, now = parsed_settings(checkout, flags + trial), parsed_settings(REPO, ["--preset", "cpu-10x-all", *trial])
        shared = then.keys() & now.keys()
        assert {"steps", "workers", "envs_per_worker", "bptt_cutoff", "minibatch"} <= shared
        assert {key: then[key] for key in shared} == {key: now[key] for key in shared}
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=REPO, check=True)


def test_a_trial_takes_the_commit_of_the_row_whose_chunks_can_hold_it(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        "| file | what | commit |\n|---|---|---|\n"
        "| `cpu/<env>/`, `cpu-ablations/<env>/` | tables | a2418b8; LinearAttention 7fcc6e3 |\n"
        "| `paper-settings/RepeatPreviousEasy-seed<S>/` | tables | seed 0 2e6e22c; seed 1 4e38947 |\n"
        "| `paper-settings/MultiarmedBanditEasy-seed<S>/` | tables | seed 0 d7ba8f9 |\n"
    )
    assert reproduce.recorded_commit("cpu-ablations", "RepeatPreviousEasy", "RayFFMNoDecay", 2, readme) == "a2418b8"
    assert reproduce.recorded_commit("cpu", "RepeatFirstEasy", "LinearAttention", 0, readme) == "7fcc6e3"
    assert reproduce.recorded_commit("paper-settings", "RepeatPreviousEasy", "GRU", 1, readme) == "4e38947"
    assert reproduce.recorded_commit("paper-settings", "MultiarmedBanditEasy", "GRU", 0, readme) == "d7ba8f9"
    with pytest.raises(SystemExit, match="records no commit"):
        reproduce.recorded_commit("paper-settings", "RepeatFirstEasy", "GRU", 0, readme)
