"""python -m plotting.docs [--check]: the results tables of the Markdown pages, generated from results/.

A page holds a generated table between two comments, ``<!-- generated: NAME -->`` and ``<!-- end generated
-->``; NAME is one of BLOCKS, each a function of the committed tables under results/ (results/README.md).
Each block is quoted in exactly one page. Rerun after a table under results/ changes; ``--check`` only says
which blocks are stale (the test suite runs it). The prose around a block is written by hand.
"""

import argparse
import math
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from plotting.by_env import (
    FIRST_PAPER_SETTINGS_ENV,
    ffm_and_gru,
    model_means,
    next_paper_settings_env,
    relative_by_env,
)
from plotting.committed import committed_tables
from plotting.discussion import PAPER_NAMES, TIME_SCALES, time_scales
from plotting.load import curve_table
from plotting.paper_settings import PAPER, SCALED, load_runs
from plotting.paper_settings import TABLE as PAPER_SETTINGS_TABLE
from plotting.popgym_figures import final_mmer, mmer_at
from plotting.throughput import above_baseline, load_throughput, model_rows
from plotting.verdict import TIED, claim, counted, seeds_spread, verdict
from results_schema import FFM, FFM_ABLATIONS, LINEAR_ATTENTION, LINEAR_ATTENTION_DOT

CPU_BUDGET = 24_576  # env steps per trial of ppo.py's cpu preset (tests check it against ppo.PRESETS)
PAPER_STEPS = 15_000_000  # env steps per trial in the paper
PAPER_ENVS = 45  # the paper's popgym envs (ppo.env_groups()["ALL"])
PAPER_SEEDS = 3
PAPER_BASELINES = 13  # POPGym's baselines (models/), DiffNC among them
PPO_LABELS = ("paper", "paper-bptt64", "paper-2runners", "cpu")  # benchmark_ppo.py's settings, in table order
BEFORE_RERUN = "before-rerun"  # results/before-rerun/<run>/<env>/popgym_mmer.csv: the runs the re-run replaced
# results/<DOT_RUN>/<env>/: LinearAttentionDot at the cpu preset, beside the cpu chunks' LinearAttention
DOT_RUN = "cpu-linear-attention-dot"
# The models of a run whose re-run trials a later run replaced: the cpu preset's LinearAttention, now the paper's
# denominator (commit 7fcc6e3); the re-run's function is LinearAttentionDot, whose trials repeat its final MMER exactly
REPLACED = {"cpu": (LINEAR_ATTENTION,)}
EVERY_ENV = "cpu-10x-all"  # the figure set of RayFFM and the GRU on the Easy level of every env family
ALL_EASY = 15  # env families, ppo.env_groups()["ALL_EASY"] (tests check it)
NODE_CPUS, NODES = 64, 16  # the example cluster (cluster/aws.yaml): c7i.16xlarge workers
BLOCK = re.compile(r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.DOTALL)


def markdown(table: pd.DataFrame) -> str:
    """A table of strings as GitHub Markdown: a header, its rule, one line per row."""
    lines = [list(table.columns), ["---"] * table.columns.size, *table.astype(str).values.tolist()]
    return "".join(f"| {' | '.join(line)} |\n" for line in lines)


def spread(mean: float, std: float, digits: int) -> str:
    """Mean ± std over seeds; the mean alone, marked, where one seed gives no std."""
    return f"{mean:.{digits}f} (1 seed)" if math.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def bold(text: str) -> str:
    return f"**{text}**"


def mmer_table(root: Path) -> pd.DataFrame:
    return pd.read_csv(root / "popgym_mmer.csv")


def by_model(table: pd.DataFrame, models: list[str], best: Callable[[pd.Series], float]) -> pd.DataFrame:
    """Models x envs of 'mean ± std' final MMER and their mean over envs, the ``best`` of each column bold."""
    table = table[table["model"].isin(models)]
    means = table.pivot(index="model", columns="env", values="mmer_mean").reindex(models)
    cells = table.assign(cell=[spread(m, s, 2) for m, s in zip(table["mmer_mean"], table["mmer_std"], strict=True)])
    cells = cells.pivot(index="model", columns="env", values="cell").reindex(models)
    overall = means.mean(axis=1)
    for env in means:
        cells.loc[means[env] == best(means[env]), env] = cells.loc[means[env] == best(means[env]), env].map(bold)
    cells["mean over envs"] = [bold(f"{v:.3f}") if v == best(overall) else f"{v:.3f}" for v in overall]
    return cells.reset_index()


def popgym_cpu(root: Path) -> str:
    """The cpu preset's final MMER per model and env (the best of each column bold), best mean first."""
    table = mmer_table(root)
    table = table[~table["model"].isin(FFM_ABLATIONS)]
    order = table.groupby("model")["mmer_mean"].mean().sort_values(ascending=False).index.tolist()
    return markdown(by_model(table, order, pd.Series.max))


def linear_attention_table(root: Path) -> pd.DataFrame:
    """The cpu preset's LinearAttention (the chunks' tables) and LinearAttentionDot (results/<DOT_RUN>/) per env:
    mean and std of the final MMER over seeds, mean env steps per second; index (env, model)."""
    paths = [*root.glob("cpu/*/popgym_mmer.csv"), *root.glob(f"{DOT_RUN}/*/popgym_mmer.csv")]
    table = pd.concat(pd.read_csv(path) for path in sorted(paths))
    table = table[table["model"].isin([LINEAR_ATTENTION, LINEAR_ATTENTION_DOT])]
    return table.set_index(["env", "model"]).sort_index()


def linear_attention(root: Path) -> str:
    """LinearAttention with the paper's denominator against popgym 1.0.7's, per env and over the envs: final MMER
    (mean ± std over seeds, the higher bold), the difference and whether it is within the seeds' spread (at most
    the larger std), env steps per second."""
    table = linear_attention_table(root)
    difference, speeds = f"{LINEAR_ATTENTION_DOT} - {LINEAR_ATTENTION}", f"env steps/s ({LINEAR_ATTENTION} / Dot)"
    rows = []
    for env, both in table.groupby(level="env"):
        both = both.droplevel("env")
        paper, dot = both.loc[LINEAR_ATTENTION], both.loc[LINEAR_ATTENTION_DOT]
        cells = {name: spread(row["mmer_mean"], row["mmer_std"], 3) for name, row in both.iterrows()}
        best = both["mmer_mean"].idxmax()
        change = dot["mmer_mean"] - paper["mmer_mean"]
        within = verdict(dot["mmer_mean"], dot["mmer_std"], paper["mmer_mean"], paper["mmer_std"]) == TIED
        rows.append(
            {
                "env": env,
                **{f"{name} final MMER": bold(cells[name]) if name == best else cells[name] for name in cells},
                difference: f"{change:+.3f}" + ("" if within else " (**outside**)"),
                speeds: f"{paper['steps_per_s_mean']:,.0f} / {dot['steps_per_s_mean']:,.0f}",
            }
        )
    means = table["mmer_mean"].groupby(level="model").mean()
    rows.append(
        {
            "env": "mean over envs",
            **{f"{name} final MMER": f"{means[name]:.3f}" for name in (LINEAR_ATTENTION, LINEAR_ATTENTION_DOT)},
            difference: f"{means[LINEAR_ATTENTION_DOT] - means[LINEAR_ATTENTION]:+.3f}",
            speeds: "",
        }
    )
    return markdown(pd.DataFrame(rows))


def ablations(root: Path) -> str:
    """RayFFM and its ablations on the envs the ablations ran (the lowest of each column bold)."""
    table = mmer_table(root)
    envs = table.loc[table["model"].isin(FFM_ABLATIONS), "env"].unique()
    return markdown(by_model(table[table["env"].isin(envs)], [FFM, *FFM_ABLATIONS], pd.Series.min))


def ten_times(root: Path) -> str:
    """FFM vs GRU at ten times the cpu budget, per env: final MMER, MMER at 1x and 2x the cpu budget, wall time
    per trial (range over seeds), env steps per second (mean) and FFM's mean wall time over the GRU's."""
    curves = pd.concat([curve_table(path) for path in sorted(root.glob("cpu-10x/*/popgym_curves.csv"))])
    final = final_mmer(curves)
    early = {steps: mmer_at(curves, steps) for steps in (CPU_BUDGET, 2 * CPU_BUDGET)}
    rows = []
    for env, trials in final.groupby("env"):
        row = {"env": env}
        means = trials.groupby("model")["mmer"].mean()
        for model in ("GRU", FFM):
            mine = trials[trials["model"] == model]
            text = spread(mine["mmer"].mean(), mine["mmer"].std(), 3)
            row[f"{model} final MMER"] = bold(text) if means[model] == means.max() else text
        for model in ("GRU", FFM):
            at = [table.loc[(table["env"] == env) & (table["model"] == model), "mmer"] for table in early.values()]
            row[f"{model} at {CPU_BUDGET:,} / {2 * CPU_BUDGET:,} steps"] = " / ".join(
                spread(a.mean(), a.std(), 2) for a in at
            )
        walls = {model: trials.loc[trials["model"] == model, "wall_s"] for model in ("GRU", FFM)}
        row["wall per trial, GRU / RayFFM"] = " / ".join(f"{w.min():.0f}-{w.max():.0f} s" for w in walls.values())
        speeds = (trials.loc[trials["model"] == model, "steps_per_s"].mean() for model in ("GRU", FFM))
        row["env steps/s, GRU / RayFFM"] = " / ".join(f"{speed:.0f}" for speed in speeds)
        row["RayFFM's wall / GRU's"] = f"{walls[FFM].mean() / walls['GRU'].mean():.2f}x"
        rows.append(row)
    return markdown(pd.DataFrame(rows))


def curve_gap(first: pd.DataFrame, again: pd.DataFrame) -> float:
    """The largest MMER difference between two runs' curves of the same seeds at the same env steps (inf where
    their seeds or iterations differ)."""
    keys = ["seed", "step"]
    paired = first[[*keys, "mmer"]].merge(again[[*keys, "mmer"]], on=keys, how="outer")
    return (paired["mmer_x"] - paired["mmer_y"]).abs().max() if paired.notna().all().all() else math.inf


def repeated(gap: float) -> str:
    """``curve_gap`` in words."""
    if gap < 1e-6:
        return "every seed, to 1e-6"
    return f"no: MMER up to {gap:.3f} apart" if math.isfinite(gap) else "no: at other iterations"


def rerun_pairs(root: Path) -> Iterator[tuple[str, str, pd.DataFrame, pd.DataFrame]]:
    """Each env and model of cpu-10x that cpu-10x-all ran again (same preset, later code), with the curves of
    the first run and of the re-run."""
    first, again = (
        pd.concat(curve_table(path) for path in committed_tables(run, root)) for run in ("cpu-10x", EVERY_ENV)
    )
    for env in sorted(set(first["env"]) & set(again["env"])):
        for model in ("GRU", FFM):
            yield env, model, *(run[(run["env"] == env) & (run["model"] == model)] for run in (first, again))


def ten_times_rerun(root: Path) -> str:
    """The cpu-10x envs run again in cpu-10x-all (``rerun_pairs``), per env and model: each run's final MMER,
    the re-run's difference and verdict against the first, and whether every seed's curve repeated."""
    rows = []
    for env, model, first, again in rerun_pairs(root):
        before, after = (final_mmer(curves)["mmer"] for curves in (first, again))
        rows.append(
            {
                "env": env,
                "model": model,
                "cpu-10x final MMER": spread(before.mean(), before.std(), 3),
                f"{EVERY_ENV} final MMER": spread(after.mean(), after.std(), 3),
                "difference": f"{after.mean() - before.mean():+.3f}",
                "verdict": verdict(after.mean(), after.std(), before.mean(), before.std()),
                "curves repeated": repeated(curve_gap(first, again)),
            }
        )
    return markdown(pd.DataFrame(rows))


def every_env_trials(root: Path) -> pd.DataFrame:
    """The final MMER of each RayFFM and GRU trial of the cpu-10x-all run (``plotting.by_env.ffm_and_gru``)."""
    return ffm_and_gru(pd.concat(curve_table(path) for path in committed_tables(EVERY_ENV, root)))


def paper_settings_envs(root: Path) -> list[str]:
    """The envs run at the paper's PPO settings (results/paper-settings/)."""
    trials = [pd.read_csv(path) for path in sorted(root.glob("paper-settings/*/popgym_final_mmer.csv"))]
    return sorted(pd.concat(trials)["env"].unique())


def every_env(root: Path) -> str:
    """RayFFM against the GRU per env of cpu-10x-all, highest relative score first: both final MMERs, their
    difference and the seeds' spread, FFM's normalized score relative to the GRU's (``plotting by-env``'s
    units), the verdict, and each model's env steps per second (mean over seeds) with FFM's over the GRU's."""
    final = every_env_trials(root)
    table = relative_by_env(final).iloc[::-1]
    speed = final.groupby(["env", "model"])["steps_per_s"].mean().unstack("model").loc[table["env"]]
    rows = {
        "env": table["env"],
        f"{FFM} final MMER": [spread(m, s, 3) for m, s in table[["ffm_mean", "ffm_std"]].values],
        "GRU final MMER": [spread(m, s, 3) for m, s in table[["gru_mean", "gru_std"]].values],
        "difference": (table["ffm_mean"] - table["gru_mean"]).map("{:+.3f}".format),
        "seeds' spread": table[["ffm_std", "gru_std"]].max(axis=1).map("{:.3f}".format),
        "relative to the GRU (normalized, %)": [
            f"{m:+.1f} ± {s:.1f}" for m, s in table[["relative", "relative_std"]].values
        ],
        "verdict": table["verdict"],
        f"env steps/s, {FFM} / GRU": [
            f"{ffm:.0f} / {gru:.0f} ({ffm / gru:.2f}x)" for ffm, gru in speed[[FFM, "GRU"]].values
        ],
    }
    return markdown(pd.DataFrame(rows))


def every_env_summary(root: Path) -> str:
    """cpu-10x-all in a few lines: the envs run, the verdicts' counts, each model's mean normalized final MMER
    over the envs (std over seeds) and the env that the rule picks for the paper's PPO settings besides the
    first (FIRST_PAPER_SETTINGS_ENV), and whether it has run there."""
    final = every_env_trials(root)
    table = relative_by_env(final)
    means = model_means(final).set_index("model")
    env, why = next_paper_settings_env(table, already=(FIRST_PAPER_SETTINGS_ENV,))
    status = "run at them (below)" if env in paper_settings_envs(root) else "not run at them yet"
    lines = {
        "env families": f"{len(table)} of {ALL_EASY}",
        f"{FFM} against the GRU": counted(table["verdict"]),
        **{
            f"{model}'s mean normalized final MMER over the envs (std over seeds)": spread(
                means.loc[model, "mean"], means.loc[model, "std"], 3
            )
            for model in (FFM, "GRU")
        },
        f"the paper's PPO settings' second env, after {FIRST_PAPER_SETTINGS_ENV} (the rule in plotting/by_env.py)": (
            f"{env}: {why}; {status}"
        ),
    }
    return markdown(pd.DataFrame({"what": lines.keys(), EVERY_ENV: lines.values()}))


def init_study(root: Path) -> pd.DataFrame:
    """The curves of the discussion's init study (figure set cpu-10x-init), every iteration."""
    return pd.concat(curve_table(path) for path in committed_tables("cpu-10x-init", root))


def init_mmer(root: Path) -> str:
    """The init study per env and model (the discussion's names, the best final MMER bold): final MMER, MMER
    at 1x, 2x and 5x the cpu budget, wall time per trial (range over seeds) and env steps per second (mean)."""
    curves = init_study(root)
    final = final_mmer(curves)
    steps = (CPU_BUDGET, 2 * CPU_BUDGET, 5 * CPU_BUDGET)
    early = pd.concat(mmer_at(curves, at).assign(at=at) for at in steps).groupby(["env", "model", "at"])["mmer"]
    rows = []
    for env, trials in final.groupby("env"):
        means = trials.groupby("model")["mmer"].mean()
        for model, name in PAPER_NAMES.items():
            mine = trials[trials["model"] == model]
            text = spread(mine["mmer"].mean(), mine["mmer"].std(), 3)
            rows.append(
                {
                    "env": env,
                    "model": name if name == model else f"{name} (`{model}`)",
                    "final MMER": bold(text) if means[model] == means.max() else text,
                    " / ".join(f"{at:,}" for at in steps) + " steps": " / ".join(
                        spread(early.mean()[env, model, at], early.std()[env, model, at], 2) for at in steps
                    ),
                    "wall per trial": f"{mine['wall_s'].min():.0f}-{mine['wall_s'].max():.0f} s",
                    "env steps/s": f"{mine['steps_per_s'].mean():.0f}",
                }
            )
    return markdown(pd.DataFrame(rows))


def learned_time_scales(root: Path) -> pd.DataFrame:
    """Per env, FFM model and time scale: each trace's or frequency's value (clipped as the discussion's) at
    the first iteration and at the last, the mean over seeds."""
    long = time_scales(init_study(root))
    ends = long.groupby(["env", "model", "seed"])["step"]
    long = long.assign(first=long["step"] == ends.transform("min"), last=long["step"] == ends.transform("max"))
    at = {"start": long[long["first"]], "end": long[long["last"]]}
    keys = ["env", "model", "time_scale", "unit"]
    return pd.DataFrame({when: rows.groupby(keys)["value"].mean() for when, rows in at.items()}).reset_index()


def init_time_scales(root: Path) -> str:
    """Each FFM model's time scales at the start and the end of training (mean over seeds): the periods t_omega
    of its frequencies, its slowest trace's t_alpha, and how many of its traces are in each mode's t_alpha."""
    table = learned_time_scales(root)
    rows = []
    for (env, model), mine in table.groupby(["env", "model"]):
        omega = mine[mine["time_scale"] == "t_omega"]
        alpha = mine[mine["time_scale"] == "t_alpha"]
        _, _, _, actor, critic = TIME_SCALES["t_alpha"]
        rows.append(
            {
                "env": env,
                "model": PAPER_NAMES[model],
                "t_omega per frequency, start -> end": ", ".join(
                    f"{start:.0f} -> {end:.0f}" for start, end in zip(omega["start"], omega["end"], strict=True)
                ),
                "slowest t_alpha, start -> end": f"{alpha['start'].max():.0f} -> {alpha['end'].max():.0f}",
                f"traces at t_alpha <= {actor} (start, end)": f"{(alpha['start'] <= actor).sum()}, "
                f"{(alpha['end'] <= actor).sum()}",
                f"traces at t_alpha >= {critic} (start, end)": f"{(alpha['start'] >= critic).sum()}, "
                f"{(alpha['end'] >= critic).sum()}",
            }
        )
    return markdown(pd.DataFrame(rows))


def paper_settings(root: Path) -> str:
    """RayFFM and the GRU at the paper's PPO batch and at the cpu-10x preset's, per env, model and run: MMER at
    equal env steps and at each run's end (``plotting batch``'s table, mean ± std over seeds), wall time per
    trial (range over seeds) and env steps per second (mean)."""
    ranking = pd.read_csv(root / PAPER_SETTINGS_TABLE).set_index(["at", "run", "env", "model"]).sort_index()
    curves = load_runs(committed_tables("paper-settings", root))
    ends = final_mmer(curves[curves["run"] == PAPER])
    columns = {  # the ranking's cells: (at, run) -> column name
        ("equal steps", SCALED): f"{SCALED}, at its budget",
        ("equal steps", PAPER): "paper settings, at equal env steps",
        ("end", PAPER): "paper settings, end",
    }
    rows = []
    for env, model in ranking.loc["end", PAPER].index:
        cells = {key: ranking.loc[(*key, env, model)] for key in columns}
        mine = ends[(ends["env"] == env) & (ends["model"] == model)]
        row = {"env": env, "model": model}
        for key, cell in cells.items():
            row[columns[key]] = spread(cell["mean"], cell["std"], 3)
        row |= {
            "at env steps": " / ".join(f"{cell['step']:,.0f}" for cell in cells.values()),
            "seeds (paper settings)": f"{cells['end', PAPER]['seeds']:.0f}",
            "wall per trial": f"{mine['wall_s'].min():.0f}-{mine['wall_s'].max():.0f} s",
            "env steps/s": f"{mine['steps_per_s'].mean():.0f}",
        }
        rows.append(row)
    return markdown(pd.DataFrame(rows))


def pomdp_return(root: Path) -> str:
    """pomdp-baselines: final return per task and algorithm, GRU vs FFM (the higher mean bold), wall per run."""
    table = pd.read_csv(root / "pomdp_return.csv").set_index(["task", "algo", "memory"])
    rows = []
    for (task, algo), runs in table.groupby(level=["task", "algo"], sort=False):
        runs = runs.droplevel(["task", "algo"])
        cells = {
            memory: spread(runs.loc[memory, "return_mean"], runs.loc[memory, "return_std"], 0) for memory in runs.index
        }
        best = runs["return_mean"].idxmax()
        row = {"task": task, "algorithm": algo.upper(), "env steps": f"{runs['env_steps'].min():,}"}
        row |= {memory.upper(): bold(cells[memory]) if memory == best else cells[memory] for memory in ("gru", "ffm")}
        walls = runs["wall_s_mean"]
        row["wall per run, GRU / FFM"] = f"{walls['gru'] / 60:.0f} / {walls['ffm'] / 60:.0f} min"
        row["FFM's wall / GRU's"] = f"{walls['ffm'] / walls['gru']:.2f}x"
        rows.append(row)
    return markdown(pd.DataFrame(rows).sort_values(["task", "algorithm"], ascending=[False, True]))


def pomdp_runs(root: Path) -> pd.DataFrame:
    curves = pd.concat(pd.read_csv(path) for path in sorted(root.glob("pomdp-*/*/pomdp_curves.csv")))
    return curves.assign(run=curves["task"] + " " + curves["algo"].str.upper() + " " + curves["memory"].str.upper())


def pomdp_evaluations(root: Path) -> str:
    """pomdp-baselines: the mean evaluation return over seeds at every evaluation, per task, algorithm, memory."""
    curves = pomdp_runs(root)
    means = curves.groupby(["env_steps", "run"])["eval_return"].mean().unstack("run")
    means = means[sorted(means.columns, key=lambda run: (run.split()[0][-1] != "V", run))]
    cells = means.map(lambda value: f"{value:,.0f}").reset_index()
    return markdown(
        cells.assign(env_steps=cells["env_steps"].map("{:,}".format)).rename(columns={"env_steps": "env steps"})
    )


def pomdp_seeds(root: Path) -> str:
    """pomdp-baselines: each run's final return, per task, algorithm and memory (one column per seed)."""
    curves = pomdp_runs(root)
    final = curves.sort_values("env_steps").groupby(["run", "seed"])["eval_return"].last().unstack("seed")
    final = final.loc[sorted(final.index, key=lambda run: (run.split()[0][-1] != "V", run))]
    final.columns = [f"seed {seed}" for seed in final.columns]
    return markdown(final.map(lambda value: f"{value:,.0f}").reset_index())


def throughput(root: Path) -> str:
    """benchmark.py on CPU per model: train step, inference latency, peak train memory above the bare
    process, parameters; fastest train step first."""
    rows = model_rows(load_throughput([root / "throughput_cpu.csv"]))
    train = rows[rows["mode"] == "train"].set_index("model")
    inference = rows[rows["mode"] == "inference"].set_index("model")["median_ms"]
    table = pd.DataFrame(
        {
            "train step (ms)": train["median_ms"].map("{:.1f}".format),
            "inference (ms)": inference.reindex(train.index).map("{:.3f}".format),
            "peak train memory above baseline (MB)": train["model_mem_mb"].map("{:.0f}".format),
            "parameters": train["params"].map("{:,}".format),
        }
    )
    return markdown(table.loc[train["median_ms"].sort_values().index].reset_index())


def layer_goals(root: Path) -> str:
    """The FFM layer's goals (throughput_cpu_goals.csv): each ratio from the same run, its target, met or not."""
    goals = pd.read_csv(root / "throughput_cpu_goals.csv")
    table = pd.DataFrame(
        {
            "goal": goals["goal"],
            "batch": goals["batch"],
            "target": goals["target"].map("<= {:.2g}".format),
            "measured": [
                f"{r:.2f}" if met else bold(f"{r:.2f}") for r, met in zip(goals["ratio"], goals["met"], strict=True)
            ],
            "met": goals["met"].map({True: "yes", False: "**no**"}),
        }
    )
    return markdown(table)


def layer_memory_table(root: Path) -> pd.DataFrame:
    """Peak training memory of the FFM layer and nn.GRU alone (benchmark.py's layer/ rows with a peak, CPU)
    above the process baseline per batch, and its growth per batch element and step between the smallest
    and the largest batch (KiB)."""
    rows = above_baseline(load_throughput([root / "throughput_cpu.csv"]))
    rows = rows[rows["model"].str.startswith("layer/") & rows["peak_mem_mb"].notna() & (rows["device"] == "cpu")]
    table = rows.pivot(index="model", columns="batch", values="model_mem_mb")
    steps = rows["time_steps"].iloc[0]
    smallest, largest = table.columns.min(), table.columns.max()
    growth = (table[largest] - table[smallest]) * 1024 / ((largest - smallest) * steps)
    return table.assign(per_element_step_kib=growth, steps=steps)


def layer_memory(root: Path) -> str:
    """layer_memory_table as Markdown."""
    table = layer_memory_table(root)
    batches = [column for column in table.columns if isinstance(column, int | np.integer)]
    cells = {f"B = {b}, T = {table['steps'].iloc[0]:,} (MB)": table[b].map("{:.0f}".format) for b in batches}
    cells["per batch element and step (KiB)"] = table["per_element_step_kib"].map("{:.1f}".format)
    return markdown(pd.DataFrame(cells).rename_axis("layer").reset_index())


def ppo_benchmark(root: Path) -> pd.DataFrame:
    """benchmark_ppo.py's rows (results/throughput_ppo_cpu.csv)."""
    return pd.read_csv(root / "throughput_ppo_cpu.csv")


def ppo_speeds(root: Path) -> pd.Series:
    """Env steps per second of one 1-core PPO trial per model at the paper's settings (benchmark_ppo.py,
    label "paper", ppo.py's learner), averaged over the benchmarked envs: the cost's basis."""
    table = ppo_benchmark(root)
    paper = table[(table["label"] == "paper") & (table["learner"] == "trimmed")]
    return paper.groupby("model")["env_steps_per_s"].mean().sort_values(ascending=False)


def ppo_settings(root: Path) -> str:
    """benchmark_ppo.py's table: per settings, env, model and learner the PPO iteration's cost and both
    halves against their limits without RLlib."""
    table = ppo_benchmark(root)
    labels = list(dict.fromkeys([*PPO_LABELS, *table["label"]]))
    table = table.assign(order=table["label"].map(labels.index), padded=table["learner"] != "trimmed")
    table = table.sort_values(["order", "env", "padded", "env_steps_per_s"], ascending=[True, False, True, False])
    rows = []
    for _, row in table.iterrows():
        runners = f"{row['runners']} runners x " if row["runners"] else ""
        settings = f"`{row['label']}`: BPTT {row['bptt_cutoff']:,}, {runners}{row['envs_per_runner']:,} envs"
        rows.append(
            {
                "settings": settings,
                "env": row["env"],
                "model": row["model"],
                "learner": row["learner"],
                "env steps/s": f"{row['env_steps_per_s']:,.0f}",
                "sampling s": f"{row['sampling_s']:.1f}",
                "learner s": f"{row['learner_s']:.1f}",
                "loss rows per valid step": f"{row['loss_rows_per_valid_step']:.2f}",
                "minibatch update ms (plain torch)": f"{row['update_ms']:,.0f} ({row['plain_update_ms']:,.0f})",
                "sampling env steps/s (limit)": (
                    f"{row['env_steps_per_iteration'] / row['sampling_s']:,.0f} "
                    f"({row['sampling_limit_steps_per_s']:,.0f})"
                ),
            }
        )
    return markdown(pd.DataFrame(rows))


def ppo_overhead(root: Path) -> str:
    """At the paper's settings with ppo.py's learner: what of an iteration is RLlib's own, per model and env.
    Sampling: the env runner's env steps per second against the RLlib-free loop's; learning: RLlib's minibatch
    update against plain torch's, and the learner's seconds outside the minibatch updates (its connector:
    GAE's value pass, padding, batching)."""
    table = ppo_benchmark(root)
    paper = table[(table["label"] == "paper") & (table["learner"] == "trimmed")]
    rows = []
    for _, row in paper.sort_values(["env", "env_steps_per_s"], ascending=False).iterrows():
        runner = row["env_steps_per_iteration"] / row["sampling_s"]
        updates = row["minibatches_per_iteration"] * row["update_ms"] / 1e3
        rows.append(
            {
                "env": row["env"],
                "model": row["model"],
                "env runner / RLlib-free loop (env steps/s)": f"{runner / row['sampling_limit_steps_per_s']:.2f}",
                "RLlib / plain-torch minibatch update": f"{row['update_ms'] / row['plain_update_ms']:.2f}",
                "learner s outside the updates (of all)": f"{row['learner_s'] - updates:.1f} ({row['learner_s']:.1f})",
            }
        )
    return markdown(pd.DataFrame(rows))


def ppo_throughput(root: Path) -> str:
    """Each PPO run's trials per model (results/<run>/<env>/popgym_final_mmer.csv): how many, their mean wall
    time and env steps per second (mean and range over trials), fastest first within a run."""
    tables = [pd.read_csv(path).assign(run=path.parent.parent.name) for path in root.glob("*/*/popgym_final_mmer.csv")]
    trials = pd.concat(tables)
    rows = []
    for (run, model), mine in sorted(
        trials.groupby(["run", "model"]), key=lambda g: (g[0][0], -g[1]["steps_per_s"].mean())
    ):
        speeds = mine["steps_per_s"]
        rows.append(
            {
                "run": f"`{run}`",
                "model": model,
                "trials": len(mine),
                "env steps per trial": f"{mine['step'].min():,.0f}-{mine['step'].max():,.0f}",
                "mean wall per trial": f"{mine['wall_s'].mean():,.0f} s",
                "env steps/s per trial": f"{speeds.mean():,.0f} ({speeds.min():,.0f}-{speeds.max():,.0f})",
            }
        )
    return markdown(pd.DataFrame(rows))


def rerun_comparison(root: Path) -> pd.DataFrame:
    """Each re-run chunk's final MMER and env steps/s per model against the run it replaced (the tables kept in
    results/before-rerun/<run>/<env>/popgym_mmer.csv): run, env, model, both means and stds, both speeds, the
    change of the mean and whether it is within the seeds' spread (at most the larger std). Models whose re-run
    trials were replaced later (REPLACED) are left out."""
    before = [
        (path, path.relative_to(root / BEFORE_RERUN).parts[:2])
        for path in root.glob(f"{BEFORE_RERUN}/*/*/popgym_mmer.csv")
    ]
    tables = []
    for path, (run, env) in sorted(before):
        after = pd.read_csv(root / run / env / "popgym_mmer.csv")
        after = after[~after["model"].isin(REPLACED.get(run, ()))]
        joined = pd.read_csv(path).merge(after, on=["env", "model"], suffixes=("_before", "_after"), validate="1:1")
        tables.append(joined.assign(run=run))
    table = pd.concat(tables, ignore_index=True)
    columns = ["mmer_mean_after", "mmer_std_after", "mmer_mean_before", "mmer_std_before"]
    within = [verdict(*values) == TIED for values in table[columns].itertuples(index=False)]
    return table.assign(change=table["mmer_mean_after"] - table["mmer_mean_before"], within=within)


def rerun(root: Path) -> str:
    """The re-run of 2026-12-02 against the runs it replaced: final MMER before and after (mean ± std over
    seeds), whether the change is within the seeds' spread (at most the larger std), and env steps/s per trial."""
    table = rerun_comparison(root)
    rows = pd.DataFrame(
        {
            "run": table["run"].map("`{}`".format),
            "env": table["env"],
            "model": table["model"],
            "final MMER before": [spread(m, s, 3) for m, s in table[["mmer_mean_before", "mmer_std_before"]].values],
            "after": [spread(m, s, 3) for m, s in table[["mmer_mean_after", "mmer_std_after"]].values],
            "change": [f"{c:+.3f}" + ("" if w else " (**outside**)") for c, w in table[["change", "within"]].values],
            "env steps/s before / after": [
                f"{b:,.0f} / {a:,.0f}" for b, a in table[["steps_per_s_mean_before", "steps_per_s_mean_after"]].values
            ],
        }
    )
    return markdown(rows)


# The README's claims that rest on scores over seeds, each read by plotting.verdict's rule: FFM (or the model the
# claim is about) against each model it is compared with, on each env or task the claim names.
CLAIMS = {
    "popgym": "FFM gets more reward than RNNs on POPGym: `cpu` preset, final MMER, each seed's mean over the 6 envs",
    "every-env": "... and it holds as training goes on, on every env family's Easy level: `cpu-10x-all`, final MMER",
    "paper-settings": "... and at the paper's PPO batch: `paper-settings`, final MMER",
    "pomdp": "... and as the memory of recurrent SAC / TD3: `pomdp-sac`, `pomdp-td3`, final return",
    "init": "FFM-32,104 does better on RepeatPrevious than FFM-1,1024: `cpu-10x-init`, final MMER",
    "ablations": "forgetting is what matters, RayFFM against RayFFMNoDecay: `cpu-ablations`, final MMER",
    "speed": "FFM trains faster: `paper-settings`, env steps per second of each trial",
}


def _compare(claim_name: str, label: str, model: str, other: str, scores: pd.DataFrame, score: str) -> dict:
    """One comparison's row: the two models' mean and std over the rows of ``scores`` (one per seed)."""
    mine, theirs = (scores.loc[scores["model"] == name, score] for name in (model, other))
    row = {"claim": claim_name, "comparison": label, "model": model, "other": other}
    row |= {"mean": mine.mean(), "std": mine.std(), "other_mean": theirs.mean(), "other_std": theirs.std()}
    return row | {"verdict": verdict(row["mean"], row["std"], row["other_mean"], row["other_std"])}


def claim_comparisons(root: Path) -> pd.DataFrame:
    """Every comparison behind the README's claims (CLAIMS): claim, comparison (env, task or model), model,
    other, both models' mean and std over seeds, and the verdict (plotting.verdict.verdict)."""
    rows = []
    trials = pd.read_csv(root / "popgym_final_mmer.csv")
    cpu = trials[~trials["model"].isin(FFM_ABLATIONS)]
    per_seed = cpu.groupby(["model", "seed"], as_index=False)["mmer"].mean()
    others = per_seed.groupby("model")["mmer"].mean().drop(FFM).sort_values(ascending=False).index
    rows += [_compare("popgym", "mean over the 6 envs", FFM, other, per_seed, "mmer") for other in others]
    every = every_env_trials(root)
    rows += [_compare("every-env", env, FFM, "GRU", mine, "mmer") for env, mine in every.groupby("env")]
    curves = load_runs(committed_tables("paper-settings", root))
    paper = final_mmer(curves[curves["run"] == PAPER])
    rows += [_compare("paper-settings", env, FFM, "GRU", mine, "mmer") for env, mine in paper.groupby("env")]
    pomdp = pd.read_csv(root / "pomdp_return.csv")
    for (task, algo), runs in pomdp.groupby(["task", "algo"], sort=False):
        runs = runs.set_index("memory")
        row = {"claim": "pomdp", "comparison": f"{task} {algo.upper()}", "model": "FFM", "other": "GRU"}
        row |= {"mean": runs.loc["ffm", "return_mean"], "std": runs.loc["ffm", "return_std"]}
        row |= {"other_mean": runs.loc["gru", "return_mean"], "other_std": runs.loc["gru", "return_std"]}
        rows.append(row | {"verdict": verdict(row["mean"], row["std"], row["other_mean"], row["other_std"])})
    init = final_mmer(init_study(root))
    rows += [_compare("init", env, "RayFFM_32_104", FFM, mine, "mmer") for env, mine in init.groupby("env")]
    ablations = trials[trials["env"].isin(trials.loc[trials["model"].isin(FFM_ABLATIONS), "env"])]
    rows += [_compare("ablations", env, FFM, "RayFFMNoDecay", mine, "mmer") for env, mine in ablations.groupby("env")]
    rows += [_compare("speed", env, FFM, "GRU", mine, "steps_per_s") for env, mine in paper.groupby("env")]
    return pd.DataFrame(rows)


def claim_verdicts(root: Path) -> dict[str, str]:
    """Each claim of CLAIMS with its verdict from its comparisons (plotting.verdict.claim)."""
    table = claim_comparisons(root)
    return {name: claim(table.loc[table["claim"] == name, "verdict"]) for name in CLAIMS}


def verdicts(root: Path) -> str:
    """claim_comparisons as Markdown, each claim's verdict after its comparisons."""
    table = claim_comparisons(root)
    rows = []
    for name, text in CLAIMS.items():
        mine = table[table["claim"] == name]
        digits = 0 if name in ("pomdp", "speed") else 3
        for row in mine.itertuples():
            gap = seeds_spread(row.std, row.other_std)
            rows.append(
                {
                    "claim": text,
                    "comparison": f"{row.comparison}: {row.model} vs {row.other}",
                    "model": spread(row.mean, row.std, digits),
                    "other": spread(row.other_mean, row.other_std, digits),
                    "difference": f"{row.mean - row.other_mean:+.{digits}f}",
                    "seeds' spread": "none" if math.isnan(gap) else f"{gap:.{digits}f}",
                    "verdict": row.verdict,
                }
            )
            text = ""
        rows.append({"claim": "", "comparison": "the claim", "verdict": bold(claim(mine["verdict"]))})
    return markdown(pd.DataFrame(rows).fillna(""))


def core_hours(root: Path) -> str:
    """Core-hours of one 15M-step trial per model measured in PPO, from its env steps per second."""
    hours = PAPER_STEPS / ppo_speeds(root) / 3600
    table = pd.DataFrame({"core-hours per trial": hours.map("{:.1f}".format)})
    table.loc["mean"] = [f"{hours.mean():.1f}"]
    return markdown(table.rename_axis("model").reset_index())


def grid_cost(root: Path) -> str:
    """The paper's grid in core-hours: 19 models without DiffNC (the ablations at RayFFM's rate, the baselines
    not measured in PPO at the measured mean), DiffNC bounded by the mean rate and its benchmark ratio."""
    hours = PAPER_STEPS / ppo_speeds(root) / 3600
    trials = PAPER_ENVS * PAPER_SEEDS
    unmeasured = PAPER_BASELINES - (hours.index.size - 1) - 1  # baselines not run in PPO, DiffNC apart
    grid = trials * (hours.sum() + len(FFM_ABLATIONS) * hours[FFM] + unmeasured * hours.mean())
    rows = model_rows(load_throughput([root / "throughput_cpu.csv"]))
    train = rows[rows["mode"] == "train"].set_index("model")["median_ms"]
    diffnc = train["DiffNC"] / train[FFM]
    models = hours.index.size + len(FFM_ABLATIONS) + unmeasured
    lines = {
        f"{models} models (no DiffNC) x {PAPER_ENVS} envs x {PAPER_SEEDS} seeds": f"{grid:,.0f} core-hours",
        f"the same in {NODE_CPUS}-vCPU node-hours": f"{grid / NODE_CPUS:,.0f} node-hours",
        f"the same on {NODES} nodes": f"{grid / NODE_CPUS / NODES:.0f} hours",
        f"DiffNC's {trials} trials (its train step {diffnc:.0f}x RayFFM's in benchmark.py)": (
            f"{trials * hours.mean():,.0f} (at the mean rate) to {trials * diffnc * hours[FFM]:,.0f} "
            f"(at {diffnc:.0f}x RayFFM's) core-hours"
        ),
        "the slowest trial (one core each)": (
            f"{hours.idxmax()} {hours.max():.1f} hours, DiffNC up to {diffnc * hours[FFM]:.0f}"
        ),
    }
    return markdown(pd.DataFrame({"the paper's grid": lines.keys(), "at the rates above": lines.values()}))


BLOCKS: dict[str, Callable[[Path], str]] = {
    "popgym-cpu": popgym_cpu,
    "linear-attention": linear_attention,
    "ablations": ablations,
    "ten-times": ten_times,
    "ten-times-rerun": ten_times_rerun,
    "every-env": every_env,
    "every-env-summary": every_env_summary,
    "init-mmer": init_mmer,
    "init-time-scales": init_time_scales,
    "paper-settings": paper_settings,
    "pomdp-return": pomdp_return,
    "pomdp-evaluations": pomdp_evaluations,
    "pomdp-seeds": pomdp_seeds,
    "throughput": throughput,
    "layer-goals": layer_goals,
    "layer-memory": layer_memory,
    "ppo-throughput": ppo_throughput,
    "rerun": rerun,
    "verdicts": verdicts,
    "ppo-settings": ppo_settings,
    "ppo-overhead": ppo_overhead,
    "core-hours": core_hours,
    "grid-cost": grid_cost,
}


def pages(root: Path) -> list[Path]:
    """The Markdown pages that may hold generated blocks: the top level's, docs/ and each folder's README."""
    return sorted({*root.glob("*.md"), *root.glob("docs/*.md"), *root.glob("*/README.md")})


def regenerate(root: Path, results: Path) -> dict[Path, str]:
    """Each page whose blocks changed, with its new text. Every block of BLOCKS must be in exactly one page."""
    found: dict[str, list[Path]] = {name: [] for name in BLOCKS}
    changed = {}
    for page in pages(root):
        text = page.read_text()

        def fill(match: re.Match, page: Path = page) -> str:
            name = match["name"]
            if name not in BLOCKS:
                raise SystemExit(f"{page}: unknown generated block {name!r}; known: {', '.join(BLOCKS)}")
            found[name].append(page)
            return f"{match[1]}{BLOCKS[name](results)}{match[4]}"

        new = BLOCK.sub(fill, text)
        if new != text:
            changed[page] = new
    misplaced = {name: places for name, places in found.items() if len(places) != 1}
    if misplaced:
        where = "; ".join(f"{name} in {', '.join(map(str, places)) or 'no page'}" for name, places in misplaced.items())
        raise SystemExit(f"each generated block belongs in exactly one page: {where}")
    return changed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path("."), help="the repository (its pages)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="the committed tables")
    parser.add_argument("--check", action="store_true", help="only list the pages whose blocks are stale")
    args = parser.parse_args(argv)
    changed = regenerate(args.root, args.results)
    if args.check:
        if changed:
            sys.exit(f"stale generated tables in {', '.join(map(str, changed))}: run python -m plotting.docs")
        return
    for page, text in changed.items():
        page.write_text(text)
        print(f"wrote {page}")


if __name__ == "__main__":
    main()
