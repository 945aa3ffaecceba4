"""benchmark_ppo.py runs PPO end to end and writes rows whose padding counts follow from the env's episodes."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import benchmark_ppo
from results_schema import PPO_THROUGHPUT_COLUMNS

REPO = Path(__file__).resolve().parents[1]
# RepeatPreviousEasy: every episode 51 env steps, plus the one (masked) step PPO's learner adds: 52 rows
EPISODE, ROWS = 51, 52
TINY = ["--workers", "0", "--envs-per-worker", "2", "--bptt-cutoff", "64", "--minibatch", "2", "--epochs-timed", "1"]


def benchmark(out: Path, *extra: str) -> pd.DataFrame:
    command = [sys.executable, benchmark_ppo.__file__, "--models", "RayFFM", "--experiment", "RepeatPreviousEasy"]
    result = subprocess.run([*command, *TINY, "--out", str(out), *extra], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return pd.read_csv(out)


def test_rows_per_valid_step_are_the_padding_each_learner_leaves(tmp_path: Path) -> None:
    out = tmp_path / "throughput_ppo.csv"
    benchmark(out, "--label", "tiny")
    table = benchmark(out, "--label", "tiny", "--padded")
    assert list(table.columns) == PPO_THROUGHPUT_COLUMNS
    table = table.set_index("learner")
    assert sorted(table.index) == ["rllib-padded", "trimmed"]  # a second run adds its rows, keeps the first's
    # trimmed: each sequence is one whole episode, cut to its 52 rows; padded: to max_seq_len 64
    # (the table keeps 6 significant digits)
    assert table.loc["trimmed", "loss_rows_per_valid_step"] == pytest.approx(ROWS / EPISODE, rel=1e-5)
    assert table.loc["rllib-padded", "loss_rows_per_valid_step"] == pytest.approx(64 / EPISODE, rel=1e-5)
    assert table.loc["trimmed", "minibatch_time_steps"] == ROWS
    for learner, row in table.iterrows():
        assert row["epochs"] == 30 and row["epochs_timed"] == 1, learner
        # one epoch timed, 30 counted: the minibatches of a 2 x 64-step batch of whole 52-row episodes
        assert row["minibatches_per_iteration"] % 30 == 0 and row["minibatches_per_iteration"] > 0
        assert row["env_steps_per_iteration"] % EPISODE == 0 and row["env_steps_per_iteration"] >= 128
        assert row["sampling_s"] > 0 and row["learner_s"] > 0 and row["env_steps_per_s"] > 0
        assert row["update_ms"] > 0 and row["plain_update_ms"] > 0 and row["sampling_limit_steps_per_s"] > 0
        assert row["torch_threads"] == 1  # a --workers 0 trial's one CPU
