"""FFM against the GRU env by env, in the units of the authors' plotting/mmer_summary_by_env.py.

Per env, with MMER normalized to [0, 1] as the authors do (0.5 MMER + 0.5), FFM's score relative to the GRU's
mean in percent, 100 (FFM - mean GRU) / mean GRU, for each of FFM's seeds and their mean; the verdict of FFM
against the GRU on the final MMER by the one rule (``plotting.verdict``); and each model's mean normalized
MMER over the envs, with its spread over seeds (each seed's mean over the envs first).
"""

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter

from plotting.figure import panels, save
from plotting.popgym_figures import final_mmer
from plotting.source import NoResultsError
from plotting.verdict import WORDS, verdict
from results_schema import FFM

BASELINE = "GRU"
SATURATED = 0.95  # final MMER at or above which an env no longer separates two models
FIRST_PAPER_SETTINGS_ENV = "RepeatPreviousEasy"  # run at the paper's settings before the rule: cpu-10x's widest gap
COLORS = {"won": "tab:green", "tied": "tab:gray", "inconclusive": "tab:orange", "behind": "tab:red"}


def normalized(mmer: pd.Series) -> pd.Series:
    """MMER in [-1, 1] as the authors' figure scores it, in [0, 1]."""
    return 0.5 * mmer + 0.5


def ffm_and_gru(results: pd.DataFrame) -> pd.DataFrame:
    """Each trial's final MMER (``plotting.popgym_figures.final_mmer``), FFM's and the GRU's, on the envs both
    ran; one clear error if none."""
    final = final_mmer(results)
    envs = [set(final.loc[final["model"] == model, "env"]) for model in (FFM, BASELINE)]
    both = envs[0] & envs[1]
    if not both:
        raise NoResultsError(f"no env has results of both {FFM} and {BASELINE}")
    return final[final["model"].isin([FFM, BASELINE]) & final["env"].isin(both)]


def relative_by_env(final: pd.DataFrame) -> pd.DataFrame:
    """One row per env of ``ffm_and_gru``'s trials: FFM's and the GRU's final MMER (mean, std over seeds), FFM's
    normalized score relative to the GRU's mean (``relative``, percent; ``relative_std`` over FFM's seeds) and
    the verdict, sorted by ``relative``."""
    stats = final.groupby(["env", "model"])["mmer"].agg(["mean", "std"]).unstack("model")
    seeds = seed_relative(final)
    rows = pd.DataFrame(
        {
            "ffm_mean": stats[("mean", FFM)],
            "ffm_std": stats[("std", FFM)],
            "gru_mean": stats[("mean", BASELINE)],
            "gru_std": stats[("std", BASELINE)],
        }
    )
    rows["relative"] = seeds.groupby("env")["relative"].mean()
    rows["relative_std"] = seeds.groupby("env")["relative"].std()
    rows["verdict"] = [
        verdict(row.ffm_mean, row.ffm_std, row.gru_mean, row.gru_std) for row in rows.itertuples(index=False)
    ]
    return rows.sort_values("relative").rename_axis("env").reset_index()


def seed_relative(final: pd.DataFrame) -> pd.DataFrame:
    """Each of FFM's trials: its normalized final MMER relative to the GRU's mean on its env, in percent."""
    gru = normalized(final[final["model"] == BASELINE].groupby("env")["mmer"].mean())
    ffm = final[final["model"] == FFM]
    return ffm.assign(relative=100 * (normalized(ffm["mmer"]) - ffm["env"].map(gru)) / ffm["env"].map(gru))


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """How many envs got each verdict, in ``plotting.verdict.WORDS``' order."""
    counts = table["verdict"].value_counts()
    return {word: int(counts.get(word, 0)) for word in WORDS}


def next_paper_settings_env(table: pd.DataFrame, already: Iterable[str]) -> tuple[str, str]:
    """The env on which to run the paper's PPO settings next, from ``relative_by_env``'s table, by one rule:
    among the envs not in ``already`` where neither model has saturated (both means below SATURATED), the one
    where FFM leads the GRU by the most beyond the seeds' spread (difference of the means less the larger std);
    if FFM leads beyond the spread nowhere, the one where FFM's mean is closest to or furthest above the
    GRU's. Returns the env and why, in words."""
    open_envs = table[~table["env"].isin(list(already))]
    candidates = open_envs[(open_envs["ffm_mean"] < SATURATED) & (open_envs["gru_mean"] < SATURATED)]
    if candidates.empty:
        raise NoResultsError(f"every env is saturated (final MMER >= {SATURATED}) or already run: {list(table['env'])}")
    difference = candidates["ffm_mean"] - candidates["gru_mean"]
    beyond = difference - candidates[["ffm_std", "gru_std"]].max(axis=1)
    if (beyond > 0).any():
        best = beyond.idxmax()
        return candidates.loc[best, "env"], (
            f"FFM leads the GRU by {difference[best]:+.3f}, {beyond[best]:.3f} beyond the seeds' spread, "
            f"the most of the {len(candidates)} envs where neither is at {SATURATED} MMER"
        )
    return candidates.loc[difference.idxmax(), "env"], (
        f"FFM leads the GRU beyond the seeds' spread on none of the {len(candidates)} envs where neither is at "
        f"{SATURATED} MMER; FFM's mean minus the GRU's is largest here ({difference.max():+.3f})"
    )


def model_means(final: pd.DataFrame) -> pd.DataFrame:
    """Each model's mean normalized final MMER over ``ffm_and_gru``'s envs: the mean and std over seeds of each
    seed's mean over the envs."""
    per_seed = final.assign(score=normalized(final["mmer"])).groupby(["model", "seed"])["score"].mean()
    table = per_seed.groupby("model").agg(["mean", "std", "count"]).rename(columns={"count": "seeds"})
    return table.assign(envs=final["env"].nunique()).reset_index()


def by_env_figure(results: pd.DataFrame, out: Path) -> Path:
    """FFM relative to the GRU per env (symlog %, each seed and the mean with its spread, coloured by verdict),
    and both models' mean normalized MMER over the envs with the spread over seeds."""
    final = ffm_and_gru(results)
    table, seeds, means = relative_by_env(final), seed_relative(final), model_means(final)
    counts = ", ".join(f"{word} {count}" for word, count in verdict_counts(table).items() if count)
    figure, (left, right) = panels(2, width=6.5, height=max(3.6, 0.4 * len(table)))
    left.set_xscale("symlog", linthresh=1)
    left.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    positions = np.arange(len(table))
    left.barh(positions, table["relative"], color=table["verdict"].map(COLORS), alpha=0.6)
    left.errorbar(table["relative"], positions, xerr=table["relative_std"], fmt="none", ecolor="black", capsize=3)
    rows = seeds["env"].map(dict(zip(table["env"], positions, strict=True)))
    left.scatter(seeds["relative"], rows, color="black", s=12, zorder=3, label=f"{FFM}'s seeds")
    left.set_yticks(positions, table["env"].str.removesuffix("Easy"))
    left.axvline(0, color="black", linewidth=0.8)
    left.set(title=f"{FFM} relative to the {BASELINE}: {counts}", xlabel=f"100 ({FFM} - {BASELINE}) / {BASELINE}, %")
    for word, color in COLORS.items():
        left.barh([np.nan], [np.nan], color=color, alpha=0.6, label=word)
    figure.legend(
        *left.get_legend_handles_labels(), loc="outside lower center", ncol=5, fontsize="small", frameon=False
    )
    envs = means["envs"].iloc[0]
    sns.barplot(data=means, x="mean", y="model", hue="model", ax=right, legend=False)
    right.errorbar(means["mean"], np.arange(len(means)), xerr=means["std"], fmt="none", ecolor="black", capsize=4)
    right.set(
        title=f"Mean over {envs} env{'s' if envs > 1 else ''}, std over seeds",
        xlabel="normalized final MMER (0.5 MMER + 0.5)",
        ylabel="",
    )
    return save(figure, out, "ffm_vs_gru_by_env")
