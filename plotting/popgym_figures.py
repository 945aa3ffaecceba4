"""POPGym figures and tables from the tidy table of plotting.load."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402


def final_mmer_table(results: pd.DataFrame) -> pd.DataFrame:
    """Mean (and std over seeds) of each trial's final MMER, per model and env."""
    final = results.sort_values("step").groupby(["env", "model", "seed"], as_index=False).last()
    table = final.groupby(["env", "model"])["mmer"].agg(["mean", "std", "count"]).reset_index()
    return table.rename(columns={"mean": "mmer_mean", "std": "mmer_std", "count": "seeds"})


def memory_gaps(results: pd.DataFrame, baseline: str = "BasicMLP") -> pd.DataFrame:
    """Final mean MMER of each model minus the memoryless baseline's, per env (rows: models)."""
    wide = final_mmer_table(results).pivot(index="model", columns="env", values="mmer_mean")
    if baseline not in wide.index:
        raise ValueError(f"baseline {baseline!r} has no results; models with results: {', '.join(wide.index)}")
    return wide.drop(index=baseline) - wide.loc[baseline]


def write_table(results: pd.DataFrame, out: Path) -> pd.DataFrame:
    """results_table.csv and .md: final MMER per model (rows) and env (columns)."""
    table = final_mmer_table(results)
    wide = table.pivot(index="model", columns="env", values="mmer_mean")
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "results_table.csv", index=False)
    (out / "results_table.md").write_text(wide.to_markdown(floatfmt=".3f") + "\n")
    return wide


def learning_curves(results: pd.DataFrame, out: Path) -> Path:
    """MMER over env steps per env, mean and spread over seeds, one line per model."""
    envs = sorted(results["env"].unique())
    columns = min(len(envs), 3)
    rows = -(-len(envs) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.6 * rows), squeeze=False)
    for axis, env in zip(axes.flat, envs, strict=False):
        sns.lineplot(data=results[results["env"] == env], x="step", y="mmer", hue="model", errorbar="sd", ax=axis)
        axis.set(title=env, xlabel="env steps", ylabel="MMER")
    for axis in axes.flat[len(envs) :]:
        axis.remove()
    figure.tight_layout()
    return save(figure, out, "learning_curves")


def save(figure: plt.Figure, out: Path, name: str) -> Path:
    """name.png and name.pdf in out."""
    out.mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "pdf"):
        figure.savefig(out / f"{name}.{suffix}", dpi=150)
    plt.close(figure)
    return out / f"{name}.png"
