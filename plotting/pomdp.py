"""Figure 5: pomdp-baselines' evaluation returns, GRU vs FFM with SAC and TD3, per task.

Each run of pomdp-baselines/ writes ``<root>/pomdp/<task>/<algo>-<memory>-seed<N>/`` with run.json
({"task", "algo", "memory", "seed", "config"}) and progress.csv (env_steps, iteration, eval_return, ...,
wall_s: one row per evaluation). The tables: pomdp_return.csv / .md (mean and std over seeds per task,
algorithm and memory), pomdp_final_return.csv (each run's last evaluation) and pomdp_curves.csv (every
evaluation, readable back as a source beside run folders, so that the committed tables of finished chunks
plot with live runs).
"""

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import seaborn as sns

from plotting.figure import panels, save
from plotting.load import align_steps, is_table, read_table
from plotting.source import NoResultsError

RUN_KEYS = ("task", "algo", "memory", "seed")
PROGRESS = ["env_steps", "iteration", "eval_return", "wall_s"]  # wall_s: the run's seconds so far


def load_pomdp(sources: Sequence[Path]) -> pd.DataFrame:
    """Every run under the ``sources`` roots and in the pomdp_*.csv curve tables among them, one row per
    evaluation (task, algo, memory, seed, env_steps, ...); an evaluation found twice keeps its last row."""
    missing = [str(source) for source in sources if not source.exists()]
    if missing:
        raise NoResultsError(f"results source {', '.join(missing)} does not exist")
    tables = [
        read_table(source, [*RUN_KEYS, *PROGRESS], "pomdp curve table")
        for source in sources
        if is_table(source, "pomdp_")
    ]
    folders = [source for source in sources if source.is_dir()]
    for record in sorted(record for source in folders for record in source.rglob("run.json")):
        run = json.loads(record.read_text())
        progress = record.parent / "progress.csv"
        if not set(RUN_KEYS) <= run.keys() or not progress.is_file() or progress.stat().st_size == 0:
            continue
        tables.append(pd.read_csv(progress, usecols=PROGRESS).assign(**{key: run[key] for key in RUN_KEYS}))
    table = pd.concat([part[[*RUN_KEYS, *PROGRESS]] for part in tables], ignore_index=True) if tables else None
    if table is None or table.empty:
        raise NoResultsError(
            f"no pomdp-baselines runs (run.json and progress.csv) under {', '.join(map(str, sources))}"
        )
    return table.drop_duplicates([*RUN_KEYS, "env_steps"], keep="last").reset_index(drop=True)


def final_returns(table: pd.DataFrame) -> pd.DataFrame:
    """Each run's last evaluation: task, algo, memory, seed, env_steps, iteration, eval_return, wall_s."""
    return table.sort_values("env_steps").groupby(list(RUN_KEYS), as_index=False).last()


def return_table(final: pd.DataFrame) -> pd.DataFrame:
    """From each run's last evaluation (``final_returns``), per task, algo and memory: the final return's
    mean and std over seeds, the seeds, the env steps the runs ended at (the smallest) and their mean wall
    seconds (the compute a run took)."""
    grouped = final.groupby(["task", "algo", "memory"])
    summary = grouped["eval_return"].agg(["mean", "std", "count"]).join(grouped["env_steps"].min())
    summary = summary.join(grouped["wall_s"].mean()).reset_index()
    return summary.rename(
        columns={"mean": "return_mean", "std": "return_std", "count": "seeds", "wall_s": "wall_s_mean"}
    )


def write_tables(table: pd.DataFrame, out: Path) -> list[Path]:
    """In out: pomdp_return.csv and .md (mean and std over seeds), pomdp_final_return.csv (each run's last
    evaluation) and pomdp_curves.csv (every evaluation)."""
    out.mkdir(parents=True, exist_ok=True)
    final = final_returns(table)
    summary = return_table(final)
    summary.to_csv(out / "pomdp_return.csv", index=False)
    (out / "pomdp_return.md").write_text(summary.to_markdown(index=False, floatfmt=".1f") + "\n")
    final.to_csv(out / "pomdp_final_return.csv", index=False)
    table.to_csv(out / "pomdp_curves.csv", index=False)
    return [
        out / name for name in ("pomdp_return.csv", "pomdp_return.md", "pomdp_final_return.csv", "pomdp_curves.csv")
    ]


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
        task_final = final[final["task"] == task]
        sns.pointplot(
            data=task_final,
            x="algo",
            y="eval_return",
            hue="memory",
            errorbar=("ci", 95),
            seed=0,
            dodge=0.3 if task_final["memory"].nunique() > 1 else False,  # seaborn divides by zero dodging one hue
            linestyle="none",
            capsize=0.1,
            ax=final_axis,
        )
        final_axis.set(title=f"{task}: final return (mean, 95% CI over seeds)", xlabel="algorithm", ylabel="return")
    return save(figure, out, "pomdp")
