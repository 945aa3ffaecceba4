"""POPGym figures and tables from the tidy table of plotting.load (figures 1-3 and the results table)."""

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns

from plotting.figure import panels, save
from plotting.load import align_steps
from plotting.source import NoResultsError
from results_schema import FFM, FFM_ABLATIONS

CI = ("ci", 95)  # seaborn's bootstrapped 95% confidence interval of the mean


def final_mmer(results: pd.DataFrame) -> pd.DataFrame:
    """Each trial's final MMER: its MMER at its last iteration, the first to reach its env-step budget (MMER
    is a running max, so this is the trial's score; ``mmer_at`` the budget), with its env steps, its training
    wall-clock seconds and their ratio (env steps per second, the trial's throughput)."""
    columns = ["env", "model", "seed", "step", "mmer", "wall_s"]
    final = results[columns].sort_values("step").groupby(["env", "model", "seed"], as_index=False).last()
    return final.assign(steps_per_s=final["step"] / final["wall_s"])


def mmer_at(results: pd.DataFrame, steps: int) -> pd.DataFrame:
    """Each trial's MMER at ``steps`` env steps: at its first iteration that reaches them, as a trial with that
    budget would end (its final MMER). Trials that never reach ``steps`` are left out."""
    reached = results[results["step"] >= steps].sort_values("step")
    return reached.groupby(["env", "model", "seed"], as_index=False)[["step", "mmer"]].first()


def final_mmer_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean (and std over seeds) of each trial's final MMER, per model and env, and the trials' mean env
    steps per second (the throughput that the compute estimates scale from)."""
    grouped = final_mmer(results).groupby(["env", "model"])
    table = grouped["mmer"].agg(["mean", "std", "count"]).join(grouped["steps_per_s"].mean()).reset_index()
    return table.rename(
        columns={"mean": "mmer_mean", "std": "mmer_std", "count": "seeds", "steps_per_s": "steps_per_s_mean"}
    )


def memory_gaps(results: pd.DataFrame, baseline: str = "BasicMLP") -> pd.DataFrame:
    """Final mean MMER of each model minus the memoryless baseline's, per env (rows: models)."""
    wide = final_mmer_table(results).pivot(index="model", columns="env", values="mmer_mean")
    if baseline not in wide.index:
        raise NoResultsError(f"baseline {baseline!r} has no results; models with results: {', '.join(wide.index)}")
    return wide.drop(index=baseline) - wide.loc[baseline]


def write_table(results: pd.DataFrame, out: Path) -> pd.DataFrame:
    """popgym_mmer.csv (env, model, mmer_mean, mmer_std, seeds, steps_per_s_mean) and .md (models x envs),
    popgym_final_mmer.csv (each trial's final step, MMER and wall time) and popgym_curves.csv (the whole
    tidy table, FFM internals included: what every POPGym figure needs, readable back as a --source)."""
    table = final_mmer_table(results)
    wide = table.pivot(index="model", columns="env", values="mmer_mean")
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "popgym_mmer.csv", index=False)
    (out / "popgym_mmer.md").write_text(wide.to_markdown(floatfmt=".3f") + "\n")
    final_mmer(results).to_csv(out / "popgym_final_mmer.csv", index=False)
    # 6 significant digits keep the table small; env steps are counts, exact past 1e6 too
    results.astype({"step": "int64"}).to_csv(out / "popgym_curves.csv", index=False, float_format="%.6g")
    return wide


def learning_curves(results: pd.DataFrame, out: Path) -> Path:
    """Figure 2: MMER over env steps per env, mean and standard deviation over seeds, one line per model."""
    results = align_steps(results)
    envs = sorted(results["env"].unique())
    figure, axes = panels(len(envs))
    for axis, env in zip(axes, envs, strict=True):
        sns.lineplot(data=results[results["env"] == env], x="step", y="mmer", hue="model", errorbar="sd", ax=axis)
        axis.set(title=env, xlabel="env steps", ylabel="MMER")
    figure.suptitle("MMER during training (mean ± sd over seeds)")
    return save(figure, out, "learning_curves")


def relative_mmer(results: pd.DataFrame) -> pd.DataFrame:
    """Per env and other (non-ablation) model: (FFM's mean MMER - the model's) / |the model's|."""
    final = final_mmer(results)
    means = final[~final["model"].isin(FFM_ABLATIONS)].groupby(["env", "model"])["mmer"].mean().unstack("model")
    if FFM not in means or means.columns.size < 2:
        raise NoResultsError(f"needs results of {FFM} and of another (non-ablation) model; models: {', '.join(means)}")
    others = means.drop(columns=FFM)
    relative = others.rsub(means[FFM], axis=0).div(others.abs()).replace([np.inf, -np.inf], np.nan)
    return relative.stack().dropna().rename("relative").reset_index()


def mmer_summary(results: pd.DataFrame, out: Path) -> Path:
    """Figure 1: FFM's MMER relative to each other model per env (symlog), and each model's mean final MMER."""
    relative = relative_mmer(results)
    final = final_mmer(results)
    final = final[~final["model"].isin(FFM_ABLATIONS)]
    envs = sorted(relative["env"].unique())
    order = final.groupby("model")["mmer"].mean().sort_values(ascending=False).index
    figure, (left, right) = panels(2, width=6.5, height=max(3.6, 0.35 * max(len(envs), len(order))))
    left.set_xscale("symlog", linthresh=0.1)
    sns.boxplot(data=relative, x="relative", y="env", order=envs, color="lightgray", fliersize=0, ax=left)
    sns.stripplot(data=relative, x="relative", y="env", order=envs, hue="model", size=4, jitter=False, ax=left)
    left.axvline(0, color="black", linewidth=0.8)
    left.set(title=f"{FFM} relative to each model", xlabel=f"({FFM} - model) / |model|, final MMER", ylabel="")
    sns.move_legend(left, "upper left", bbox_to_anchor=(1, 1), fontsize="small", title="model")
    sns.barplot(data=final, x="mmer", y="model", order=order, errorbar=CI, seed=0, ax=right)
    right.set(title="Mean final MMER, envs x seeds (95% CI)", xlabel="MMER (POPGym: in [-1, 1])", ylabel="")
    return save(figure, out, "mmer_summary")


def ablation_scores(results: pd.DataFrame) -> pd.DataFrame:
    """Final MMER of FFM's and its ablations' trials, on the envs that all of those with results ran."""
    final = final_mmer(results)
    present = [model for model in (FFM, *FFM_ABLATIONS) if model in set(final["model"])]
    if FFM not in present or len(present) < 2:
        raise NoResultsError(f"needs results of {FFM} and of an ablation ({', '.join(FFM_ABLATIONS)})")
    envs = set.intersection(*(set(final.loc[final["model"] == model, "env"]) for model in present))
    if not envs:
        raise NoResultsError(f"{', '.join(present)} share no env")
    return final[final["model"].isin(present) & final["env"].isin(envs)]


def ablations(results: pd.DataFrame, out: Path) -> Path:
    """Figure 3: per env, mean final MMER of FFM and each ablation (on the envs all of them ran), 95% CIs."""
    scores = ablation_scores(results)
    order = [model for model in (FFM, *FFM_ABLATIONS) if model in set(scores["model"])]
    envs = scores["env"].nunique()
    figure, (axis,) = panels(1, width=8, height=0.3 * len(order) * envs + 1.5)
    sns.barplot(data=scores, x="mmer", y="model", hue="env", order=order, errorbar=CI, seed=0, ax=axis)
    axis.set(title="FFM ablations: mean final MMER over seeds (95% CI)", xlabel="MMER", ylabel="")
    sns.move_legend(axis, "upper left", bbox_to_anchor=(1, 1), fontsize="small", title="env")
    return save(figure, out, "ablations")
