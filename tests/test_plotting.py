"""plotting: the tidy loader over ppo.py's result folders, the results table and the learning curves."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from plotting.__main__ import main
from plotting.load import load_popgym, split_difficulty

REPO = Path(__file__).resolve().parents[1]


def write_trial(root: Path, env: str, model: str, seed: int, returns: list[float]) -> None:
    """A Tune trial folder as ppo.py leaves it: params.json and result.json (JSON lines, nested keys)."""
    trial = root / "experiment" / f"{env}-{model}-{seed}"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({"env": env, "memory_model": model, "seed": seed}))
    best, lines = float("-inf"), []
    for i, value in enumerate(returns):
        best = max(best, value)
        result = {"num_env_steps_sampled_lifetime": 100 * (i + 1), "env_runners": {"episode_return_mean": value}}
        lines.append(json.dumps(result | {"mmer": best, "config": {"env": env}}))
    (trial / "result.json").write_text("\n".join(lines) + "\n")


@pytest.fixture
def source(tmp_path: Path) -> Path:
    write_trial(tmp_path, "RepeatPreviousEasy", "RayFFM", 0, [-0.5, 0.2, 0.1])
    write_trial(tmp_path, "RepeatPreviousEasy", "RayFFM", 1, [-0.4, 0.4, 0.3])
    write_trial(tmp_path, "RepeatPreviousEasy", "BasicMLP", 0, [-0.5, -0.45, -0.6])
    write_trial(tmp_path, "StatelessCartPoleHard", "RayFFM", 0, [0.1, 0.3])
    return tmp_path


def test_loader_builds_the_tidy_table(source: Path) -> None:
    table = load_popgym(source)
    assert list(table.columns) == ["env", "base_env", "difficulty", "model", "seed", "step", "return", "mmer"]
    assert len(table) == 11
    ffm = table[(table["model"] == "RayFFM") & (table["seed"] == 1)]
    assert list(ffm["mmer"]) == [-0.4, 0.4, 0.4] and list(ffm["step"]) == [100, 200, 300]
    assert split_difficulty("StatelessCartPoleHard") == ("StatelessCartPole", "Hard")


def test_table_and_curves_are_written(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "figures"
    main(["table", "curves", "--source", str(source), "--out", str(out)])
    table = pd.read_csv(out / "results_table.csv").set_index(["env", "model"])
    assert table.loc[("RepeatPreviousEasy", "RayFFM"), "mmer_mean"] == pytest.approx((0.2 + 0.4) / 2)
    assert table.loc[("RepeatPreviousEasy", "RayFFM"), "seeds"] == 2
    assert table.loc[("RepeatPreviousEasy", "BasicMLP"), "mmer_mean"] == pytest.approx(-0.45)
    assert "| RayFFM" in (out / "results_table.md").read_text()
    for suffix in ("png", "pdf"):
        assert (out / f"learning_curves.{suffix}").stat().st_size > 1000


def test_missing_or_empty_source_is_a_clear_message(tmp_path: Path) -> None:
    for source in (tmp_path / "nowhere", tmp_path):
        result = subprocess.run(
            [sys.executable, "-m", "plotting", "all", "--source", str(source)], cwd=REPO, capture_output=True, text=True
        )
        assert result.returncode == 1 and result.stderr.startswith("plotting: ") and "Traceback" not in result.stderr


def test_memory_gaps_and_the_required_gap(source: Path, capsys) -> None:
    main(["gaps", "--source", str(source)])
    assert "| RayFFM" in capsys.readouterr().out
    main(["gaps", "--source", str(source), "--require-gap", "0.5"])  # RayFFM: 0.3 - (-0.45) = 0.75 on one env
    with pytest.raises(SystemExit, match="RayFFM beat BasicMLP by less than 1.0 on every env"):
        main(["gaps", "--source", str(source), "--require-gap", "1.0"])
