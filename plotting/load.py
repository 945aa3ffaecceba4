"""One loader: any POPGym results source -> one tidy table.

Columns: env, base_env, difficulty, model, seed, step, return, mmer, wall_s (the trial's training seconds so
far; NaN where a source lacks them), one row per training iteration, and
for FFM models the logged internals as ``ffm/...`` columns (``ffm/decay_time/00``, ``ffm/period/0``, ...;
NaN for other models). Sources: ppo.py's Tune trial folders (local, the default), compact curve tables
(``popgym_curves.csv``, the tidy columns that ``table`` writes, so that committed tables of finished runs
plot beside live result folders; other tables among the sources, pomdp_*.csv and throughput*.csv, are
other loaders'), or wandb (offline run folders or a project through the public API, see
plotting.wandb_source); trial folders and wandb come as ``Run`` records and go through ``tidy``.
"""

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from plotting.source import HISTORY_KEYS, OPTIONAL_KEYS, NoResultsError, Run
from plotting.wandb_source import wandb_runs
from results_schema import INTERNALS, MODEL_KEY, RETURN, STEP, WALL, load_trial

COLUMNS = ["env", "base_env", "difficulty", "model", "seed", "step", "return", "mmer", "wall_s"]
DIFFICULTIES = ("Easy", "Medium", "Hard")


def load_popgym(sources: Sequence[Path], wandb: str | None = None, group: str | None = None) -> pd.DataFrame:
    """The tidy table of ppo.py's trials under the ``sources`` roots and in the curve tables (.csv) among
    them, or of the wandb project / offline folder."""
    if wandb is not None:
        return tidy(wandb_runs(wandb, group), f"ppo.py runs in wandb {wandb}" + (f" (group {group})" if group else ""))
    tables = [curve_table(Path(source)) for source in sources if is_table(Path(source), "popgym_")]
    folders = [Path(source) for source in sources if Path(source).suffix != ".csv"]
    if folders:
        runs = (run for folder in folders for run in local_runs(folder))
        tables.append(tidy(runs, f"ppo.py results (result.json) under {', '.join(map(str, folders))}"))
    return merged(tables)


TABLE_PREFIXES = ("popgym_", "pomdp_", "throughput")  # the tables a --source may name: each loader takes its own


def is_table(source: Path, prefix: str | tuple[str, ...]) -> bool:
    """Whether the source is a result table (.csv) whose name starts with ``prefix`` (or one of them)."""
    return source.suffix == ".csv" and source.name.startswith(prefix)


def read_table(path: Path, columns: Iterable[str], kind: str) -> pd.DataFrame:
    """A result table read back; NoResultsError if it is missing or lacks any of ``columns``."""
    if not path.exists():
        raise NoResultsError(f"results source {path} does not exist")
    table = pd.read_csv(path)
    missing = sorted(set(columns) - set(table.columns))
    if missing:
        raise NoResultsError(f"{path} is no {kind}: it lacks the columns {missing}")
    return table


def curve_table(path: Path) -> pd.DataFrame:
    """A compact curve table (the popgym_curves.csv that ``table`` writes) as tidy rows."""
    table = read_table(path, COLUMNS, "curve table")
    return table.assign(difficulty=table["difficulty"].fillna(""))  # names without a level: ''


def local_runs(source: Path) -> Iterable[Run]:
    """Every Tune trial folder (params.json and result.json) under ``source``."""
    if not source.exists():
        raise NoResultsError(f"results source {source} does not exist")
    for result in sorted(source.rglob("result.json")):
        yield Run(json.loads((result.parent / "params.json").read_text()), load_trial(result.parent))


def tidy(runs: Iterable[Run], what: str) -> pd.DataFrame:
    """Runs -> the tidy table; runs without iterations are skipped, repeated steps (resumes) keep the last row."""
    tables = [tidy_run(run) for run in runs if not run.history.empty and STEP in run.history]
    if not tables:
        raise NoResultsError(f"no {what}")
    return merged(tables)


def merged(tables: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Tidy tables as one; a step a run has twice (a resume, or a run in two sources) keeps its last row."""
    table = pd.concat(tables, ignore_index=True)
    return table.drop_duplicates(["env", "model", "seed", "step"], keep="last").reset_index(drop=True)


def tidy_run(run: Run) -> pd.DataFrame:
    """One run's rows: the tidy columns, then its FFM internals (``env_runners/`` dropped from their names)."""
    internals = sorted(column for column in run.history if column.startswith(INTERNALS))
    history = run.history.reindex(columns=[*HISTORY_KEYS, *OPTIONAL_KEYS, *internals])
    base_env, difficulty = split_difficulty(run.config["env"])
    named = {
        "env": run.config["env"],
        "base_env": base_env,
        "difficulty": difficulty,
        "model": run.config[MODEL_KEY],
        "seed": int(run.config["seed"]),
    }
    table = history.rename(columns={STEP: "step", RETURN: "return", WALL: "wall_s"} | internal_names(history.columns))
    return table.assign(**named)[COLUMNS + [c for c in table if c.startswith("ffm/")]]


def internal_names(columns: Iterable[str]) -> dict[str, str]:
    """'env_runners/ffm/period/0' -> 'ffm/period/0'."""
    return {column: column.removeprefix("env_runners/") for column in columns if column.startswith(INTERNALS)}


def split_difficulty(env: str) -> tuple[str, str]:
    """'RepeatPreviousEasy' -> ('RepeatPrevious', 'Easy'); names without a level keep '' as difficulty."""
    for level in DIFFICULTIES:
        if env.endswith(level):
            return env[: -len(level)], level
    return env, ""


def align_steps(
    table: pd.DataFrame, points: int = 48, step: str = "step", keys: Sequence[str] = ("env", "model", "seed")
) -> pd.DataFrame:
    """The table at one grid of ``step`` values per panel, so that runs average point by point.

    ``keys`` name a panel (first), a curve in it (the middle ones) and a seed (last): POPGym's tidy table
    is (env, model, seed), pomdp-baselines' (task, algo, memory, seed). Runs of one panel end their
    iterations at different env steps (episodes do not end on batch boundaries). Each run takes, at each
    of ``points`` evenly spaced grid steps, its last row at or before it (MMER, returns and the logged
    internals are step functions). A curve keeps the grid steps that all its seeds reach, so that every
    point averages the same seeds.
    """
    if table.empty:
        return table
    panel, *curve, seed = keys
    aligned = []
    for _, panel_runs in table.groupby(panel):
        steps = panel_runs[step].astype(float)
        grid = pd.DataFrame({step: np.linspace(steps.min(), steps.max(), points)})
        for _, run in panel_runs.groupby([*curve, seed]):
            run = run.assign(**{step: run[step].astype(float)}).sort_values(step)
            inside = grid[grid[step].between(run[step].iloc[0], run[step].iloc[-1])]
            aligned.append(pd.merge_asof(inside, run, on=step, direction="backward"))
    aligned = pd.concat(aligned, ignore_index=True)
    seeds = aligned.groupby([panel, *curve])[seed].transform("nunique")
    shared = aligned.groupby([panel, *curve, step])[seed].transform("nunique") == seeds
    return aligned[shared].reset_index(drop=True)[table.columns]
