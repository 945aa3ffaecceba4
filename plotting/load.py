"""One loader: any results source -> one tidy table (env, base_env, difficulty, model, seed, step, return, mmer)."""

import json
from pathlib import Path

import pandas as pd

from ppo import MMER, MODEL_KEY, RETURN_MEAN, load_trial

COLUMNS = ["env", "base_env", "difficulty", "model", "seed", "step", "return", "mmer"]
DIFFICULTIES = ("Easy", "Medium", "Hard")


class NoResultsError(RuntimeError):
    """The source holds no results to plot."""


def load_popgym(source: Path) -> pd.DataFrame:
    """Every ppo.py trial under ``source`` (Tune trial folders with params.json and result.json)."""
    source = Path(source)
    if not source.exists():
        raise NoResultsError(f"results source {source} does not exist")
    tables = []
    for result in sorted(source.rglob("result.json")):
        params = json.loads((result.parent / "params.json").read_text())
        trial = load_trial(result.parent)
        if trial.empty:
            continue
        base_env, difficulty = split_difficulty(params["env"])
        tables.append(
            pd.DataFrame(
                {
                    "env": params["env"],
                    "base_env": base_env,
                    "difficulty": difficulty,
                    "model": params[MODEL_KEY],
                    "seed": params["seed"],
                    "step": trial["num_env_steps_sampled_lifetime"],
                    "return": trial[f"env_runners/{RETURN_MEAN}"],
                    "mmer": trial[MMER],
                }
            )
        )
    if not tables:
        raise NoResultsError(f"no ppo.py results (result.json) under {source}")
    return pd.concat(tables, ignore_index=True)[COLUMNS]


def split_difficulty(env: str) -> tuple[str, str]:
    """'RepeatPreviousEasy' -> ('RepeatPrevious', 'Easy'); names without a level keep '' as difficulty."""
    for level in DIFFICULTIES:
        if env.endswith(level):
            return env[: -len(level)], level
    return env, ""
