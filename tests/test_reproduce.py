"""scripts/reproduce.py: which commit a committed trial is re-run at, and how its curve is compared."""

import importlib.util
import subprocess
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
