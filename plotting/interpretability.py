"""Figure 6: FFM's learned decay times-to-1% and oscillation periods over training (logged internals)."""

from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns

from plotting.figure import panels, save
from plotting.load import align_steps
from plotting.source import NoResultsError
from results_schema import FFM

# logged name: (title, axis label)
QUANTITIES = {
    "decay_time": ("decay time to 1%", "time steps until a trace is at 1%"),
    "period": ("oscillation period", "time steps per turn"),
}


def internals(results: pd.DataFrame, model: str = FFM) -> pd.DataFrame:
    """Long table of ``model``'s per-unit internals: env, seed, step, quantity, unit, value."""
    columns = [column for column in results if column.startswith(tuple(f"ffm/{name}/" for name in QUANTITIES))]
    rows = results.loc[results["model"] == model, ["env", "seed", "step", *columns]]
    long = rows.melt(id_vars=["env", "seed", "step"], value_vars=columns, var_name="key")
    long = long.replace([np.inf, -np.inf], np.nan).dropna()  # inf: no decay / no oscillation
    if long.empty:
        raise NoResultsError(f"no FFM internals (ffm/decay_time/.., ffm/period/..) logged for {model}")
    parts = long.pop("key").str.split("/", expand=True)
    return long.assign(quantity=parts[1], unit=parts[2])


def interpretability(results: pd.DataFrame, out: Path, model: str = FFM) -> Path:
    """Per env: each trace's decay time and each frequency's period over training (mean over seeds).

    Infinite values (no decay, no oscillation) are left out.
    """
    long = internals(align_steps(results[results["model"] == model]), model)
    envs = sorted(long["env"].unique())
    figure, axes = panels(2 * len(envs), columns=2, width=6, height=3.4)
    for index, env in enumerate(envs):
        for axis, (quantity, (title, label)) in zip(axes[2 * index : 2 * index + 2], QUANTITIES.items(), strict=True):
            data = long[(long["env"] == env) & (long["quantity"] == quantity)]
            sns.lineplot(
                data=data, x="step", y="value", hue="unit", palette="viridis", errorbar=None, legend=False, ax=axis
            )
            axis.set_yscale("log")
            axis.set(title=f"{env}: {title}", xlabel="training env steps", ylabel=label)
            axis.title.set_fontsize("medium")
    figure.suptitle(
        f"{model}'s learned time scales during training\n"
        "one line per trace (decay) or frequency (period), dark to light, mean over seeds"
    )
    return save(figure, out, "interpretability")
