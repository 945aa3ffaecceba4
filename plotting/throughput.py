"""Figure 4: train time, inference latency, peak memory and parameters per model, from benchmark.py's CSVs."""

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import seaborn as sns

from plotting.figure import panels, save
from plotting.load import is_table
from plotting.source import NoResultsError
from results_schema import PROCESS_BASELINE, THROUGHPUT_COLUMNS

TIMES = ["p10_ms", "median_ms", "p90_ms"]


def throughput_files(sources: Sequence[Path]) -> list[Path]:
    """benchmark.py's tables among and under the ``sources``: throughput*.csv, without the *_goals.csv ratio tables
    and benchmark_ppo.py's throughput_ppo*.csv."""
    found = (path for source in sources for path in ([source] if source.is_file() else source.rglob("throughput*.csv")))
    found = (path for path in found if is_table(path, "throughput"))
    return sorted(
        path for path in found if not path.stem.endswith("_goals") and not path.stem.startswith("throughput_ppo")
    )


def load_throughput(paths: list[Path]) -> pd.DataFrame:
    """benchmark.py's rows of the memory models (FFM-layer reference rows and the process baseline kept)."""
    if not paths:
        raise NoResultsError("no throughput*.csv of benchmark.py found (give --throughput FILE)")
    tables = []
    for path in paths:
        if not path.is_file() or path.stat().st_size == 0:
            raise NoResultsError(f"throughput table {path} does not exist or is empty")
        table = pd.read_csv(path)
        missing = set(THROUGHPUT_COLUMNS) - set(table.columns)
        if missing:
            raise NoResultsError(f"{path} is no benchmark.py table: no column {', '.join(sorted(missing))}")
        tables.append(table)
    table = pd.concat(tables, ignore_index=True)
    if table.empty:
        raise NoResultsError(f"no rows in {', '.join(map(str, paths))}")
    return table


def above_baseline(table: pd.DataFrame) -> pd.DataFrame:
    """Every row but the baseline's, with ``setting`` (device and batch) and ``model_mem_mb``, its peak memory
    above the process baseline.

    On CPU benchmark.py measures a fresh process's peak RSS; the ``process-baseline`` row (same device and
    batch) is subtracted where present. CUDA peaks are the model's allocations already.
    """
    baseline = table.loc[table["model"] == PROCESS_BASELINE, ["device", "batch", "peak_mem_mb"]]
    baseline = baseline.drop_duplicates(["device", "batch"]).rename(columns={"peak_mem_mb": "baseline_mb"})
    rows = table[table["model"] != PROCESS_BASELINE].merge(baseline, on=["device", "batch"], how="left")
    return rows.assign(
        setting=rows["device"] + ", B=" + rows["batch"].astype(str),
        model_mem_mb=rows["peak_mem_mb"] - rows["baseline_mb"].fillna(0),
    )


def model_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The memory models' rows (no layer/ reference points), as ``above_baseline`` gives them."""
    rows = above_baseline(table)
    return rows[~rows["model"].str.startswith("layer/")].reset_index(drop=True)


def timings(rows: pd.DataFrame, axis, order: list[str], title: str, log: bool) -> None:
    """Median time per model and setting, the bar's whisker spanning p10-p90.

    Each row's p10, median and p90 are melted into three values: their median is the median and their
    full range (percentile interval 100) the p10-p90 range.
    """
    long = rows.melt(id_vars=["model", "setting"], value_vars=TIMES, value_name="ms")
    sns.barplot(
        data=long, x="ms", y="model", hue="setting", order=order, estimator="median", errorbar=("pi", 100), ax=axis
    )
    if log:
        axis.set_xscale("log")
    axis.set(title=title, xlabel="ms (median, whiskers p10-p90)", ylabel="")


def throughput_figure(table: pd.DataFrame, out: Path) -> Path:
    """Four panels: train step time (log), single-step inference latency, peak train memory, parameters."""
    rows = model_rows(table)
    if rows.empty:
        raise NoResultsError("the throughput tables hold no memory-model rows")
    train, inference = rows[rows["mode"] == "train"], rows[rows["mode"] == "inference"]
    order = list(rows.groupby("model")["median_ms"].median().sort_values().index)
    figure, (train_axis, inference_axis, memory_axis, params_axis) = panels(
        4, columns=2, width=7, height=0.32 * len(order) + 2
    )
    steps = ", ".join(f"T={steps}" for steps in sorted(train["time_steps"].unique()))
    timings(train, train_axis, order, f"Training step ({steps}: forward, backward, Adam)", log=True)
    timings(inference, inference_axis, order, "Inference latency (one step, B=1)", log=False)
    sns.barplot(data=train, x="model_mem_mb", y="model", hue="setting", order=order, errorbar=None, ax=memory_axis)
    memory_axis.set(title="Peak memory of a training step", xlabel="MB (CPU: above the bare process)", ylabel="")
    parameters = rows.drop_duplicates("model")
    sns.barplot(data=parameters, x="params", y="model", order=order, errorbar=None, color="gray", ax=params_axis)
    params_axis.set(title="Parameters (memory core and heads)", xlabel="parameters", ylabel="")
    return save(figure, out, "throughput")
