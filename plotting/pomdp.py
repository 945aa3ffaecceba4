"""Figure 5: pomdp-baselines' evaluation returns, GRU vs FFM with SAC and TD3, per task.

Each run of pomdp-baselines/ writes ``<root>/pomdp/<task>/<algo>-<memory>-seed<N>/`` with run.json
({"task", "algo", "memory", "seed", "config"}) and progress.csv (env_steps, iteration, eval_return, ...:
one row per evaluation).
"""

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import seaborn as sns

from plotting.figure import panels, save
from plotting.load import align_steps
from plotting.source import NoResultsError

RUN_KEYS = ("task", "algo", "memory", "seed")
PROGRESS = ["env_steps", "iteration", "eval_return"]


def load_pomdp(sources: Sequence[Path]) -> pd.DataFrame:
    """Every run under the ``sources`` roots, one row per evaluation (task, algo, memory, seed, env_steps, ...)."""
    missing = [str(source) for source in sources if not source.exists()]
    if missing:
        raise NoResultsError(f"results source {', '.join(missing)} does not exist")
    tables = []
    for record in sorted(record for source in sources for record in source.rglob("run.json")):
        run = json.loads(record.read_text())
        progress = record.parent / "progress.csv"
        if not set(RUN_KEYS) <= run.keys() or not progress.is_file() or progress.stat().st_size == 0:
            continue
        tables.append(pd.read_csv(progress, usecols=PROGRESS).assign(**{key: run[key] for key in RUN_KEYS}))
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if table.empty:
        raise NoResultsError(
            f"no pomdp-baselines runs (run.json and progress.csv) under {', '.join(map(str, sources))}"
        )
    return table[[*RUN_KEYS, *PROGRESS]]


def final_returns(table: pd.DataFrame) -> pd.DataFrame:
    """Each run's last evaluation: task, algo, memory, seed, env_steps, iteration, eval_return."""
    return table.sort_values("env_steps").groupby(list(RUN_KEYS), as_index=False).last()


def write_final_returns(table: pd.DataFrame, out: Path) -> Path:
    """pomdp_final_return.csv in out: each run's last evaluation; returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    final_returns(table).to_csv(out / "pomdp_final_return.csv", index=False)
    return out / "pomdp_final_return.csv"


def pomdp_figure(table: pd.DataFrame, out: Path) -> Path:
    """Per task: evaluation return over env steps (mean ± sd over seeds), and the final returns (mean, 95% CI)."""
    tasks = sorted(table["task"].unique())
    final = final_returns(table)
    curves = align_steps(table, step="env_steps", keys=RUN_KEYS)
    figure, axes = panels(2 * len(tasks), columns=2, width=6, height=3.8)
    for index, task in enumerate(tasks):
        curve_axis, final_axis = axes[2 * index : 2 * index + 2]
        sns.lineplot(
            data=curves[curves["task"] == task],
            x="env_steps",
            y="eval_return",
            hue="memory",
            style="algo",
            errorbar="sd",
            ax=curve_axis,
        )
        curve_axis.set(title=f"{task}: evaluation return (mean ± sd)", xlabel="env steps", ylabel="return")
        sns.pointplot(
            data=final[final["task"] == task],
            x="algo",
            y="eval_return",
            hue="memory",
            errorbar=("ci", 95),
            seed=0,
            dodge=0.3,
            linestyle="none",
            capsize=0.1,
            ax=final_axis,
        )
        final_axis.set(title=f"{task}: final return (mean, 95% CI over seeds)", xlabel="algorithm", ylabel="return")
    return save(figure, out, "pomdp")
