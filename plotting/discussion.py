"""The paper's discussion of RepeatPrevious (the authors' plotting/discussion.py): what an initialisation at
the env's time scales does to FFM (``init``), and the time scales FFM learns (``timescales``).

The authors' time scales of a trace, from their logged a and w:
    t_alpha = ln(0.1) / a        steps until the trace has decayed to 10%, clipped to [0, 400]
    t_omega = 2 pi / |w|         steps per turn of the oscillation (the period), clipped to [0, 400]
with the "actor mode" at t_alpha 32, t_omega 64 and the "critic mode" at t_alpha >= 104, t_omega 104.
We log decay_time = ln(0.01) / a, so t_alpha = decay_time * ln(0.1) / ln(0.01) = decay_time / 2.
"""

import math
from pathlib import Path

import pandas as pd
import seaborn as sns

from plotting.figure import panels, save
from plotting.interpretability import internals
from plotting.load import align_steps
from plotting.source import NoResultsError
from results_schema import FFM

INFORMED = "RayFFM_32_104"  # FFM initialised at RepeatPrevious's time scales (models.DISCUSSION_MODELS)
PAPER_NAMES = {INFORMED: "FFM-32,104", FFM: "FFM-1,1024", "GRU": "GRU"}  # the discussion's names, its order
CLIP = 400  # the authors' clip of both time scales, in steps
# time scale: (logged internal, factor from it, axis label, actor mode, critic mode)
TIME_SCALES = {
    "t_alpha": ("decay_time", math.log(0.1) / math.log(0.01), r"$t_\alpha$ (steps to 10%)", 32, 104),
    "t_omega": ("period", 1.0, r"$t_\omega$ (steps per turn)", 64, 104),
}


def init_curves(results: pd.DataFrame, out: Path) -> Path:
    """MMER over env steps of FFM-32,104, FFM-1,1024 and the GRU per env (mean ± sd over seeds)."""
    if INFORMED not in set(results["model"]):
        raise NoResultsError(f"needs results of {INFORMED} (the cpu-10x-init preset)")
    shown = results[results["model"].isin(PAPER_NAMES)]
    shown = align_steps(shown[shown["env"].isin(shown.loc[shown["model"] == INFORMED, "env"])])
    shown = shown.assign(model=shown["model"].map(PAPER_NAMES))
    order = [name for name in PAPER_NAMES.values() if name in set(shown["model"])]
    envs = sorted(shown["env"].unique())
    figure, axes = panels(len(envs), columns=2, width=6, height=4)
    for axis, env in zip(axes, envs, strict=True):
        data = shown[shown["env"] == env]
        sns.lineplot(data=data, x="step", y="mmer", hue="model", hue_order=order, errorbar="sd", ax=axis)
        seeds = data.groupby("model")["seed"].nunique().min()
        axis.set(title=f"{env} ({seeds} seeds)", xlabel="env steps", ylabel="MMER")
        axis.legend(loc="lower right", title=None)
    figure.suptitle(
        "FFM initialised at RepeatPrevious's time scales (FFM-32,104),\nRayFFM (FFM-1,1024) and the GRU: mean ± sd",
        fontsize="medium",
    )
    return save(figure, out, "init")


def time_scales(results: pd.DataFrame) -> pd.DataFrame:
    """Long table of each FFM model's traces' t_alpha and frequencies' t_omega, clipped to [0, CLIP]:
    env, model, seed, step, time_scale, unit, value."""
    tables = []
    for model in (FFM, INFORMED):
        if model not in set(results["model"]):
            continue
        long = internals(results, model)
        for name, (quantity, factor, *_) in TIME_SCALES.items():
            rows = long[long["quantity"] == quantity]
            tables.append(rows.assign(model=model, time_scale=name, value=(rows["value"] * factor).clip(0, CLIP)))
    if not tables:
        raise NoResultsError(f"no FFM internals logged for {FFM} or {INFORMED}")
    return pd.concat(tables, ignore_index=True).drop(columns="quantity")


def time_scales_figure(results: pd.DataFrame, out: Path) -> Path:
    """Per env and FFM model: t_alpha of each trace and t_omega of each frequency over training, one line per
    trace and seed, with the discussion's actor and critic modes."""
    long = time_scales(results)
    rows = list(long[["env", "model"]].drop_duplicates().sort_values(["env", "model"]).itertuples(index=False))
    figure, axes = panels(2 * len(rows), columns=2, width=6, height=3.6)
    for index, (env, model) in enumerate(rows):
        for axis, (name, (_, _, label, actor, critic)) in zip(
            axes[2 * index : 2 * index + 2], TIME_SCALES.items(), strict=True
        ):
            data = long[(long["env"] == env) & (long["model"] == model) & (long["time_scale"] == name)]
            sns.lineplot(
                data=data, x="step", y="value", hue="unit", units="seed", estimator=None, palette="viridis",
                legend=False, linewidth=0.8, ax=axis,
            )  # fmt: skip
            axis.axhline(actor, color="tab:purple", linewidth=2, label=f"paper's actor mode ({actor})")
            axis.axhline(critic, color="tab:red", linewidth=2, label=f"paper's critic mode ({critic})")
            axis.set_ylim(0, CLIP * 1.03)
            axis.set(title=f"{env}, {PAPER_NAMES[model]}", xlabel="env steps", ylabel=label)
            axis.legend(loc="upper right", fontsize="small")
    figure.suptitle(
        f"FFM's learned time scales, clipped at {CLIP} as the paper's: one line per trace or frequency and seed "
        f"({long['seed'].nunique()} seeds)\nmodes from the paper's RepeatPreviousMedium run"
    )
    return save(figure, out, "timescales")
