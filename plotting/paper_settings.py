"""RayFFM vs the GRU at the paper's PPO batch against the cpu-10x preset's, on the same envs (``batch``).

Both runs' committed curve tables (results/<run>/<chunk>/popgym_curves.csv) share env, model and seed, so each table
is labelled by its run: ``paper-settings``, or ``cpu-10x`` for the scaled-down batch, whose curves of an env come
from the first folder of SCALED_FOLDERS that holds it (``cpu-10x``, the run the comparison was first made with, else
``cpu-10x-all``, the same preset on every env family). The ranking is compared at equal env steps, the cpu-10x
budget (each trial's MMER read by the final MMER's rule: at its first iteration that reaches the budget, as a trial
of that budget would end), and at the end of each run."""

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import seaborn as sns

from plotting.figure import panels, save
from plotting.load import align_steps, curve_table, is_table
from plotting.popgym_figures import final_mmer, mmer_at
from plotting.source import NoResultsError

PAPER, SCALED = "paper-settings", "cpu-10x"  # the runs
SCALED_FOLDERS = ("cpu-10x", "cpu-10x-all")  # the folders under results/ of the scaled-down run, in preference
RUNS = {  # run: its PPO settings (ppo.py's presets)
    SCALED: "cpu-10x: batch 1,024, BPTT 64",
    PAPER: "paper: batch 65,536, BPTT 1,024",
}
TABLE = "paper_settings_mmer.csv"
KEYS = ("run", "model", "seed")  # align_steps: a grid per run, a curve per model


def load_runs(sources: Sequence[Path]) -> pd.DataFrame:
    """The curve tables among ``sources`` of the two runs, with a ``run`` column, on the paper run's envs
    and models only; each env's scaled-down curves from the first of SCALED_FOLDERS that holds it."""
    tables = [
        curve_table(path).assign(run=path.parent.parent.name)
        for path in map(Path, sources)
        if is_table(path, "popgym_curves") and path.parent.parent.name in (PAPER, *SCALED_FOLDERS)
    ]
    curves = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["run", "env", "model"])
    paper = curves[curves["run"] == PAPER]
    folders = {env: set(curves.loc[curves["env"] == env, "run"]) for env in paper["env"].unique()}
    scaled = {env: next((folder for folder in SCALED_FOLDERS if folder in runs), None) for env, runs in folders.items()}
    if paper.empty or None in scaled.values():
        missing = sorted(env for env, folder in scaled.items() if folder is None)
        raise NoResultsError(
            f"needs the curve tables of both {PAPER} and one of {', '.join(SCALED_FOLDERS)} (results/<run>/<chunk>/)"
            + (f" for {missing}" if missing else "")
        )
    chosen = curves["run"] == curves["env"].map(scaled)
    curves = pd.concat([paper, curves[chosen].assign(run=SCALED)], ignore_index=True)
    return curves[curves["model"].isin(paper["model"])]


def summary(trials: pd.DataFrame) -> pd.DataFrame:
    """Per run and model: mean, std and count over seeds of the trials' MMER, and their mean env steps."""
    grouped = trials.groupby(["run", "env", "model"])
    table = grouped.agg(step=("step", "mean"), mean=("mmer", "mean"), std=("mmer", "std"), seeds=("seed", "nunique"))
    return table.reset_index()


def ranking_table(curves: pd.DataFrame) -> pd.DataFrame:
    """MMER of each run and model at the cpu-10x budget (``at``: equal steps; each trial's first iteration
    that reaches it, the final MMER's rule) and at each run's end."""
    budget = final_mmer(curves[curves["run"] == SCALED])["step"].min()
    runs = curves.groupby("run")
    at_budget = pd.concat([mmer_at(trials, budget).assign(run=run) for run, trials in runs])
    at_end = pd.concat([final_mmer(trials).assign(run=run) for run, trials in runs])
    return pd.concat(
        [summary(at_budget).assign(at="equal steps"), summary(at_end).assign(at="end")], ignore_index=True
    )[["at", "run", "env", "model", "step", "mean", "std", "seeds"]]


def batch_figure(sources: Sequence[Path], out: Path, tables: Path) -> Path:
    """Per env, left: both runs up to the iterations that the equal-steps ranking reads; right: the
    paper-settings run to its end, the cpu-10x curves beside it. Writes the ranking table (TABLE) to ``tables``."""
    curves = load_runs(sources)
    ranking = ranking_table(curves)
    tables.mkdir(parents=True, exist_ok=True)
    ranking.to_csv(tables / TABLE, index=False)
    equal = ranking[ranking["at"] == "equal steps"]
    limit = equal["step"].max()  # the paper run's first iteration at or past the cpu-10x budget
    labelled = curves.assign(run=curves["run"].map(RUNS))
    envs = sorted(curves["env"].unique())
    figure, axes = panels(2 * len(envs), columns=2, width=6.5, height=4.2)
    for index, env in enumerate(envs):
        mine = labelled[labelled["env"] == env]
        views = (
            (f"first {limit:,.0f} env steps", align_steps(mine[mine["step"] <= limit], keys=KEYS)),
            ("whole runs", align_steps(mine, points=96, keys=KEYS)),
        )
        for axis, (title, data) in zip(axes[2 * index : 2 * index + 2], views, strict=True):
            sns.lineplot(
                data=data, x="step", y="mmer", hue="model", style="run", style_order=list(RUNS.values()),
                errorbar="sd", ax=axis,
            )  # fmt: skip
            axis.set(title=f"{env}, {title}", xlabel="env steps", ylabel="MMER")
        axes[2 * index].get_legend().remove()
        sns.move_legend(axes[2 * index + 1], "upper left", bbox_to_anchor=(1, 1), fontsize="small", title=None)
    seeds = ranking.groupby("run")["seeds"].min().to_dict()
    figure.suptitle(
        f"RayFFM and the GRU at the paper's PPO batch and at the cpu-10x preset's: mean ± sd "
        f"({seeds[PAPER]} and {seeds[SCALED]} seeds)"
    )
    return save(figure, out, "batch")
