"""PPO's cost per model at the paper's settings (benchmark_ppo.py's throughput_ppo*.csv): the seconds an
iteration spends sampling and learning per 1,000 env steps, ppo.py's learner beside RLlib's padded one."""

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import seaborn as sns

from plotting.figure import panels, save
from plotting.source import NoResultsError
from results_schema import PPO_THROUGHPUT_COLUMNS

PREFIX = "throughput_ppo"
LEARNERS = {"trimmed": "ppo.py", "rllib-padded": "RLlib's padded"}


def ppo_files(sources: Sequence[Path]) -> list[Path]:
    """benchmark_ppo.py's tables among and under the ``sources``."""
    found = (path for source in sources for path in ([source] if source.is_file() else source.rglob(f"{PREFIX}*.csv")))
    return sorted(path for path in found if path.name.startswith(PREFIX) and path.suffix == ".csv")


def load_ppo_throughput(paths: list[Path]) -> pd.DataFrame:
    if not paths:
        raise NoResultsError(f"no {PREFIX}*.csv of benchmark_ppo.py found")
    tables = [pd.read_csv(path) for path in paths]
    for path, table in zip(paths, tables, strict=True):
        missing = set(PPO_THROUGHPUT_COLUMNS) - set(table.columns)
        if missing:
            raise NoResultsError(f"{path} is no benchmark_ppo.py table: no column {', '.join(sorted(missing))}")
    return pd.concat(tables, ignore_index=True)


def ppo_cost_figure(table: pd.DataFrame, out: Path, label: str = "paper") -> Path:
    """One panel per env: sampling and learner seconds per 1,000 env steps per model (log scale), each
    model's bars for ppo.py's learner and, where measured, RLlib's padded one."""
    rows = table[table["label"] == label]
    if rows.empty:
        raise NoResultsError(f"no benchmark_ppo.py rows of the settings {label!r}")
    per_step = 1e3 / rows["env_steps_per_iteration"]
    long = pd.concat(
        rows.assign(part=part, seconds=rows[column] * per_step)
        for part, column in (("sampling", "sampling_s"), ("learner", "learner_s"))
    )
    long["bar"] = long["model"] + " (" + long["learner"].map(LEARNERS) + ")"
    long["what"] = long["part"] + ", " + long["learner"].map(LEARNERS)
    order = list(rows.sort_values("env_steps_per_s", ascending=False).drop_duplicates("model")["model"])
    envs = list(dict.fromkeys(rows["env"]))
    every = [f"{part}, {name}" for name in LEARNERS.values() for part in ("sampling", "learner")]
    palette = dict(zip(every, sns.color_palette(n_colors=len(every)), strict=True))  # the same colours in every panel
    hues = [hue for hue in every if hue in set(long["what"])]
    figure, axes = panels(len(envs), columns=2, width=6.5, height=0.45 * len(order) + 2)
    first = rows.iloc[0]
    for axis, env in zip(axes, envs, strict=True):
        sns.barplot(
            data=long[long["env"] == env],
            x="seconds",
            y="model",
            hue="what",
            hue_order=hues,
            palette=palette,
            order=order,
            errorbar=None,
            ax=axis,
        )
        axis.set_xscale("log")
        axis.set(title=env, xlabel="seconds per 1,000 env steps (log)", ylabel="")
        axis.legend(fontsize="small", title=None)
    figure.suptitle(
        f"PPO at BPTT {first['bptt_cutoff']:,}, batch {first['train_batch']:,}, {first['epochs']} epochs, "
        f"{first['torch_threads']} thread(s) per trial"
    )
    return save(figure, out, "ppo_cost")
