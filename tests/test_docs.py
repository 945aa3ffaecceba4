"""The Markdown pages: generated tables current, every number quoted in prose the committed tables' number,
every relative link and #anchor resolving (GitHub's heading slugs)."""

import math
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from pandas.api.typing import DataFrameGroupBy

import models
import ppo
from plotting import by_env, docs
from plotting.committed import committed_tables
from plotting.load import curve_table
from plotting.paper_settings import PAPER, SCALED, load_runs
from plotting.popgym_figures import final_mmer, mmer_at
from plotting.throughput import load_throughput, model_rows
from plotting.verdict import BEHIND, INCONCLUSIVE, TIED, WON, counted, seeds_spread, verdict
from results_schema import FFM, FFM_ABLATIONS, LINEAR_ATTENTION, LINEAR_ATTENTION_DOT

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"
GIT = pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout (a copied working tree)")
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}
LEARNED_LITTLE = 0.15  # MMER gained over the first iteration below which a family barely trained either model
STILL_RISING = 0.02  # MMER gained over the last fifth of the budget from which a curve is still rising


def page(name: str) -> str:
    """A page's text with every run of whitespace as one space (prose wraps anywhere)."""
    return " ".join((REPO / name).read_text().split())


def assert_quotes(name: str, *quotes: str) -> None:
    text = page(name)
    stale = [quote for quote in quotes if " ".join(quote.split()) not in text]
    assert not stale, f"{name} no longer matches the committed tables; it should say: {stale}"


def listed(names: list[str]) -> str:
    """Names as prose lists them: "A", "A and B", "A, B and C"."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def test_generated_tables_are_current() -> None:
    stale = docs.regenerate(REPO, RESULTS)
    assert not stale, f"stale generated tables in {', '.join(map(str, stale))}: run python -m plotting.docs"


def test_the_generators_constants_are_the_codes() -> None:
    assert int(ppo.PRESETS["cpu"]["steps"]) == docs.CPU_BUDGET
    assert len(ppo.env_groups()["ALL"]) == docs.PAPER_ENVS
    assert len(ppo.env_groups()["ALL_EASY"]) == docs.ALL_EASY
    assert ppo.PRESETS[docs.EVERY_ENV]["experiment"] == "ALL_EASY"
    assert len(models.BASELINES) == docs.PAPER_BASELINES
    assert len(models.FFM_MODELS) == 1 + len(FFM_ABLATIONS)


def cpu_table() -> pd.DataFrame:
    table = pd.read_csv(RESULTS / "popgym_mmer.csv")
    return table[~table["model"].isin(FFM_ABLATIONS)].pivot(index="model", columns="env", values="mmer_mean")


def ten_times() -> pd.DataFrame:
    return pd.concat(curve_table(path) for path in sorted(RESULTS.glob("cpu-10x/*/popgym_curves.csv")))


def paper_settings_second_env() -> str:
    """The second env run at the paper's PPO settings (the every-family rule's pick), with its 3 seeds."""
    trials = ppo_trials("paper-settings")
    second = trials[trials["env"] != by_env.FIRST_PAPER_SETTINGS_ENV]
    assert second["env"].nunique() == 1 and second["seed"].nunique() == 3
    return second["env"].iloc[0]


def ppo_trials(run: str) -> pd.DataFrame:
    return pd.concat(pd.read_csv(path) for path in sorted(RESULTS.glob(f"{run}/*/popgym_final_mmer.csv")))


def train_and_inference() -> tuple[pd.Series, pd.Series, pd.Series]:
    rows = model_rows(load_throughput([RESULTS / "throughput_cpu.csv"]))
    train = rows[rows["mode"] == "train"].set_index("model")
    return train["median_ms"], rows[rows["mode"] == "inference"].set_index("model")["median_ms"], train["model_mem_mb"]


def test_the_answer_on_the_front_page() -> None:
    table = cpu_table()
    means = table.mean(axis=1).sort_values(ascending=False)
    ranking = [f"{model} {mean:.3f}" for model, mean in means.items()]
    first_envs = (table.idxmax() == FFM).sum()
    mmer = table.loc[[FFM, "GRU"]].map("{:.2f}".format)
    layers = docs.layer_memory_table(RESULTS)  # peak memory above baseline per batch
    pomdp = pd.read_csv(RESULTS / "pomdp_return.csv").set_index(["task", "algo", "memory"])["return_mean"]
    ablations = pd.read_csv(RESULTS / "popgym_mmer.csv").pivot(index="model", columns="env", values="mmer_mean")
    ablations = ablations.loc[[FFM, *FFM_ABLATIONS]].dropna(axis=1)
    train, _, memory = train_and_inference()
    goals = pd.read_csv(RESULTS / "throughput_cpu_goals.csv").set_index(["batch", "goal"])["ratio"]
    benchmarked = pd.read_csv(RESULTS / "throughput_ppo_cpu.csv")
    paper = benchmarked[(benchmarked["label"] == "paper") & (benchmarked["learner"] == "trimmed")]
    # per 15M-step trial at the paper's settings; the ablations at RayFFM's rate, 7 baselines at the mean
    hours = 15e6 / paper.groupby("model")["env_steps_per_s"].mean() / 3600
    rates = paper.pivot(index="env", columns="model", values="env_steps_per_s")
    ppo_ratio = rates[FFM] / rates["GRU"]
    dates = paper[paper["model"].isin([FFM, "GRU"])].groupby("env")["date"].agg(set)
    assert all(len(days) == 1 for days in dates)  # each ratio's two rows from one day
    grid = 45 * 3 * (hours.sum() + len(FFM_ABLATIONS) * hours[FFM] + 7 * hours.mean())
    p = {(t, a): f"{pomdp[t, a, 'ffm']:.0f} vs {pomdp[t, a, 'gru']:.0f}" for t, a, _ in pomdp.index}
    dot = docs.linear_attention_table(RESULTS)["mmer_mean"].xs(LINEAR_ATTENTION_DOT, level="model")
    assert (ablations.idxmin() == "RayFFMNoDecay").all()
    assert sorted(table.columns[table.loc["GRU"] > table.loc[FFM]]) == [
        "BattleshipEasy",
        "RepeatFirstEasy",
        "RepeatPreviousEasy",
    ]
    trained = final_mmer(load_runs(committed_tables("paper-settings", RESULTS)).query("run == @PAPER"))
    trained = trained.groupby(["env", "model"])["steps_per_s"].mean().unstack("model")
    trained_ratio = trained[FFM] / trained["GRU"]
    first, second = by_env.FIRST_PAPER_SETTINGS_ENV, paper_settings_second_env()
    slowest = min(ppo_ratio.min(), trained_ratio.min())  # "1.2x to"
    assert_quotes(
        "README.md",
        f"mean final MMER over 6 envs: **{ranking[0]}**, {', '.join(ranking[1:])}",
        f"FFM is first on {first_envs} envs (PositionOnlyCartPole {mmer.loc[FFM, 'PositionOnlyCartPoleEasy']} vs "
        f"the GRU's {mmer.loc['GRU', 'PositionOnlyCartPoleEasy']})",
        f"RepeatFirst ({mmer.loc['GRU', 'RepeatFirstEasy']} vs {mmer.loc[FFM, 'RepeatFirstEasy']}), RepeatPrevious "
        f"({mmer.loc['GRU', 'RepeatPreviousEasy']} vs {mmer.loc[FFM, 'RepeatPreviousEasy']}) and, barely, Battleship",
        f"Pendulum-V SAC {p['Pendulum-V', 'sac']}, TD3 {p['Pendulum-V', 'td3']}; "
        f"Pendulum-P SAC {p['Pendulum-P', 'sac']}, TD3 {p['Pendulum-P', 'td3']}",
        f"train step {train['GRU'] / train[FFM]:.1f}x faster than the GRU ({train[FFM]:.1f} vs {train['GRU']:.1f} ms)",
        f"the FFM layer alone {1 / goals[8, 'FFM / GRU']:.1f}x faster than `nn.GRU`",
        f"training (the run above) {trained.loc[first, FFM]:.0f} vs {trained.loc[first, 'GRU']:.0f} env steps per "
        f"second on {first}, {trained_ratio[first]:.2f}x the GRU's, {trained.loc[second, FFM]:.0f} vs "
        f"{trained.loc[second, 'GRU']:.0f} on {second}, {trained_ratio[second]:.2f}x",
        f"{ppo_ratio['RepeatPreviousEasy']:.1f}x on RepeatPreviousEasy (51-step episodes, measured "
        f"{dates['RepeatPreviousEasy'].pop()}) to {ppo_ratio['LabyrinthEscapeEasy']:.1f}x on LabyrinthEscapeEasy "
        f"(up to 1,023 steps, {dates['LabyrinthEscapeEasy'].pop()})",
        f"faster by {slowest:.1f}x to {1 / goals[8, 'FFM / GRU']:.1f}x on CPU",
        f"FFM trains {slowest:.1f}x to {1 / goals[8, 'FFM / GRU']:.1f}x faster on CPU",
        f"peak training memory {memory[FFM]:.0f} MB, the GRU {memory['GRU']:.0f} MB",
        "the FFM layer alone {:.0f} MB, `nn.GRU` {:.0f} MB at B = 8, {:.0f} and {:.0f} MB at B = 64".format(
            *layers.loc[["layer/FFM", "layer/GRU"], 8], *layers.loc[["layer/FFM", "layer/GRU"], 64]
        ),
        f"{memory[FFM] / memory['GRU']:.1f}x the GRU's; the layers "
        + "{:.1f}x at B = 8, {:.1f}x at B = 64".format(*(layers.loc["layer/FFM"] / layers.loc["layer/GRU"])[[8, 64]]),
        f"about {round(grid, -3):,.0f} core-hours",
        f"{len(ppo_trials('cpu'))} trials, at a2418b8 (LinearAttention at 7fcc6e3) |",
        f"{len(ppo_trials('cpu-ablations'))} trials, at a2418b8 |",
        f"({docs.CPU_BUDGET / 15e6:.2%} of the paper's 15M)",
        f"with popgym 1.0.7's corrected denominator it scores {dot.mean():.3f}",
    )


def test_the_verdicts_on_the_front_page_follow_the_rule() -> None:
    """Each verdict of the claims table is plotting.verdict's, from the committed tables, and the prose beside it
    names the comparisons that give it."""
    comparisons = docs.claim_comparisons(RESULTS)
    verdicts = docs.claim_verdicts(RESULTS)
    rows = {name: comparisons[comparisons["claim"] == name].set_index("comparison") for name in docs.CLAIMS}
    popgym = rows["popgym"].set_index("other")
    won = popgym.index[popgym["verdict"] == WON].tolist()
    unsure = popgym[popgym["verdict"] == INCONCLUSIVE]
    lead = (unsure["mean"] - unsure["other_mean"]).map("{:.3f}".format)
    spreads = [f"{seeds_spread(row.std, row.other_std):.3f}" for row in unsure.itertuples()]
    assert unsure.index.tolist() == ["GRU", "LSTM"]
    init = rows["init"]["verdict"]
    ablation = rows["ablations"]["verdict"]
    paper = rows["paper-settings"]["verdict"]
    first, second = by_env.FIRST_PAPER_SETTINGS_ENV, paper_settings_second_env()
    every_env = by_env.relative_by_env(docs.every_env_trials(RESULTS))
    assert second == by_env.next_paper_settings_env(every_env, already=(first,))[0]  # the rule's pick
    assert (rows["pomdp"]["verdict"] == TIED).all() and (ablation == INCONCLUSIVE).all()
    assert_quotes(
        "README.md",
        f"| **{verdicts['popgym']}**: ahead of {', '.join(won[:-1])} and {won[-1]} by more than twice the spread; "
        f"of the GRU by {lead['GRU']} and the LSTM by {lead['LSTM']}, more than the seeds' spread "
        f"({spreads[0]} and {spreads[1]}) but less than twice it |",
        f"| **{verdicts['paper-settings']}**: {paper[first]} on {first}, as with the scaled-down batch; "
        f"{paper[second]} on {second}",
        f"| **{verdicts['pomdp']}**: {TIED} on all {len(rows['pomdp'])}, every gap within the seeds' spread |",
        f"| **{verdicts['init']}**: {init['RepeatPreviousEasy']} on Easy (still far {BEHIND} the GRU), "
        f"{init['RepeatPreviousMedium']} on Medium",
        f"| **{verdicts['ablations']}**: the full model ahead of no decay on both envs by more than the seeds' "
        "spread, not twice it |",
        f"| **{verdicts['speed']}** (env steps per second over the seeds of each env",
    )
    easy = comparisons.query("claim == 'init' and comparison == 'RepeatPreviousEasy'").iloc[0]
    gru = final_mmer(docs.init_study(RESULTS)).query("env == 'RepeatPreviousEasy' and model == 'GRU'")["mmer"]
    assert verdict(easy["mean"], easy["std"], gru.mean(), gru.std()) == BEHIND  # "still far behind the GRU"
    # on PositionOnlyCartPole two ablations score above the full model, tied with it, as every other ablation
    # but the one without decay is on both envs
    trials = pd.read_csv(RESULTS / "popgym_final_mmer.csv")
    scores = trials[trials["model"].isin([FFM, *FFM_ABLATIONS])].groupby(["env", "model"])["mmer"].agg(["mean", "std"])
    above = []
    for (env, model), row in scores.drop(index=FFM, level="model").iterrows():
        full = scores.loc[env, FFM]
        word = verdict(row["mean"], row["std"], full["mean"], full["std"])
        assert word == (INCONCLUSIVE if model == "RayFFMNoDecay" else TIED), (env, model)
        if env == "PositionOnlyCartPoleEasy" and row["mean"] > full["mean"] + 0.05:
            above.append(f"{row['mean']:.3f}")
    full = scores.loc["PositionOnlyCartPoleEasy", FFM]["mean"]
    assert_quotes("README.md", f"decay not learned {above[0]}, frequencies not learned {above[1]}, vs {full:.3f}")
    assert_quotes(
        "docs/results.md",
        f"with the decay rates fixed ({above[0]}) and with the frequencies fixed ({above[1]}), against its {full:.3f}",
    )


def test_the_every_env_row_on_the_front_page() -> None:
    """The claims row of cpu-10x-all: the verdicts' counts over all 15 families, each model's mean normalized
    final MMER, and FFM's early lead on NoisyPositionOnlyCartPole read off the same trials, from the committed
    tables."""
    final = docs.every_env_trials(RESULTS)
    table = by_env.relative_by_env(final)
    means = by_env.model_means(final).set_index("model")
    mean = {model: docs.spread(means.loc[model, "mean"], means.loc[model, "std"], 3) for model in (FFM, "GRU")}
    trials_per_env = 2 * 3  # RayFFM and the GRU, 3 seeds
    assert len(table) == docs.ALL_EASY and len(final) == trials_per_env * docs.ALL_EASY
    ahead = (table["ffm_mean"] - table["gru_mean"]) > table[["ffm_std", "gru_std"]].max(axis=1)
    behind = sorted(env.removesuffix("Easy") for env in table.loc[table["verdict"] == BEHIND, "env"])
    assert not ahead.any()
    curves = pd.concat(curve_table(path) for path in committed_tables("cpu-10x-all", RESULTS))
    cartpole = "NoisyPositionOnlyCartPoleEasy"
    early = mmer_at(curves[curves["env"] == cartpole], docs.CPU_BUDGET).groupby("model")["mmer"].mean()
    end = table.set_index("env").loc[cartpole, ["ffm_mean", "gru_mean"]]
    assert (end == 1).all()  # "both end at 1.000"
    claim_verdict = docs.claim_verdicts(RESULTS)["every-env"]
    assert claim_verdict == counted(table["verdict"])
    assert_quotes(
        "README.md", f"leads the GRU beyond the seeds' spread on none and falls behind it on {listed(behind)};"
    )
    assert_quotes(
        "README.md",
        f"averaged over the {len(table)} envs: RayFFM {mean[FFM]}, GRU {mean['GRU']} (std over seeds)",
        f"FFM's lead on NoisyPositionOnlyCartPole at a tenth of the budget ({early[FFM]:.2f} vs {early['GRU']:.2f}, "
        "the same trials) is gone: both end at 1.000",
        f"| **{claim_verdict}** of the {len(table)} families: far {BEHIND} on "
        f"{listed(behind)}, ahead beyond the spread on none | 245,760 env steps, {len(final)} trials, at",
    )
    assert_quotes(
        "docs/results.md",
        f"| `cpu-10x-all` | RayFFM, GRU x {len(table)} envs x 3 seeds = {len(final)} | 245,760 |",
    )


def test_the_every_env_table_gives_each_chunks_throughput() -> None:
    """docs/results.md's every-env rows give each model's env steps per second as each chunk's own table
    (results/cpu-10x-all/ENV/popgym_mmer.csv, written by ``plotting table``) records it."""
    tables = pd.concat(pd.read_csv(path) for path in sorted(RESULTS.glob("cpu-10x-all/*/popgym_mmer.csv")))
    speed = tables.pivot(index="env", columns="model", values="steps_per_s_mean")
    blocks = {block["name"]: block["body"] for block in docs.BLOCK.finditer((REPO / "docs/results.md").read_text())}
    last_cell = {cells[0]: cells[-1] for cells in map(row_cells, blocks["every-env"].strip().splitlines()[2:])}
    expected = {env: f"{ffm:.0f} / {gru:.0f} ({ffm / gru:.2f}x)" for env, (ffm, gru) in speed[[FFM, "GRU"]].iterrows()}
    assert last_cell == expected


def test_the_every_env_reading() -> None:
    """docs/results.md's reading of cpu-10x-all, from the committed tables: where each model leads beyond the
    spread, which ties say little (saturated, barely learned, the widest spread), the means, and the speed."""
    final = docs.every_env_trials(RESULTS)
    table = by_env.relative_by_env(final).set_index("env")
    short = {env: env.removesuffix("Easy") for env in table.index}
    difference = table["ffm_mean"] - table["gru_mean"]
    spread = table[["ffm_std", "gru_std"]].max(axis=1)
    assert not (difference > spread).any()  # "on no family"
    best = difference.idxmax()
    behind = sorted(table.index[table["verdict"] == BEHIND])
    unsure = table.index[(table["verdict"] == INCONCLUSIVE) & (difference < 0)].tolist()
    assert behind and unsure and not (table["verdict"] == WON).any()

    def against(envs: list[str]) -> str:
        return listed(
            [
                f"{short[env]} ({table.loc[env, 'gru_mean']:.3f} against {table.loc[env, 'ffm_mean']:.3f})"
                for env in envs
            ]
        )

    curves = pd.concat(curve_table(path) for path in committed_tables("cpu-10x-all", RESULTS))
    budget = int(ppo.PRESETS["cpu-10x-all"]["steps"])
    first = (
        curves.sort_values("step").groupby(["env", "model", "seed"])["mmer"].first().groupby(["env", "model"]).mean()
    )
    gain = (final.groupby(["env", "model"])["mmer"].mean() - first).unstack("model").max(axis=1)
    little = sorted(short[env] for env in gain.index[gain < LEARNED_LITTLE])
    saturated = table.index[(table[["ffm_mean", "gru_mean"]] >= by_env.SATURATED).all(axis=1)].tolist()
    late = mmer_at(curves, int(0.8 * budget)).groupby(["env", "model"])["mmer"].mean()
    rising = (final.groupby(["env", "model"])["mmer"].mean() - late).unstack("model").min(axis=1)
    rising = [short[env] for env in rising.index[rising >= STILL_RISING]]
    widest = spread.idxmax()
    seeds = final[final["env"] == widest].groupby("model")["mmer"].agg(["min", "max"]).map("{:.2f}".format)
    means = by_env.model_means(final).set_index("model")
    mean = {model: docs.spread(means.loc[model, "mean"], means.loc[model, "std"], 3) for model in (FFM, "GRU")}
    level = verdict(*means.loc[FFM, ["mean", "std"]], *means.loc["GRU", ["mean", "std"]])
    speed = final.groupby(["env", "model"])["steps_per_s"].mean().unstack("model")
    ratio = speed[FFM] / speed["GRU"]
    assert (ratio > 1).all()  # "on every family"
    assert_quotes(
        "docs/results.md",
        f"Its largest lead, on {short[best]} ({difference[best]:+.3f}), is within the spread ({spread[best]:.3f})",
        f"Where either model leads, it is the GRU:** by more than twice the spread on {against(behind)}, and by more "
        f"than the spread on {against(unsure)}",
        f"Both models end at {by_env.SATURATED} MMER or above on {listed(sorted(short[env] for env in saturated))}; "
        f"on {listed(little)} neither gains {LEARNED_LITTLE} MMER over its first iteration; on {short[widest]}, the "
        f"widest spread, the seeds end at {seeds.loc[FFM, 'min']}-{seeds.loc[FFM, 'max']} (FFM) and "
        f"{seeds.loc['GRU', 'min']}-{seeds.loc['GRU', 'max']} (the GRU)",
        f"{NUMBER_WORDS[len(rising)].capitalize()} families are still rising at the end:** over the last fifth "
        f"of the budget both models gain {STILL_RISING} MMER or more on {listed(rising)}",
        f"mean normalized final MMER, RayFFM {mean[FFM]}, the GRU {mean['GRU']} (std over seeds), FFM {level} by "
        "the rule",
        f"{ratio.min():.2f}x to {ratio.max():.2f}x the GRU's env steps per second",
        f"at {budget:,} ({budget / 15e6:.1%} of that) FFM is ahead beyond the spread on none",
    )


def test_the_numbers_in_the_docs_prose() -> None:
    table = cpu_table()
    train, inference, _ = train_and_inference()
    assert_quotes(
        "docs/efficiency.md",
        f"training step takes {train[FFM] / train['GRU']:.2f}x the GRU's ({train['GRU'] / train[FFM]:.1f}x faster) "
        f"and {train[FFM] / train['LSTM']:.2f}x the LSTM's; its single-step latency is "
        f"{inference[FFM] / inference['GRU']:.2f}x the GRU's and {inference[FFM] / inference['LSTM']:.2f}x the LSTM's",
    )
    trials = ppo_trials("cpu").groupby("model")
    wall, speed = trials["wall_s"].mean(), trials["steps_per_s"].mean()
    assert_quotes(
        "docs/efficiency.md",
        f"took {wall[FFM] / wall['GRU']:.2f}x the GRU's mean wall time ({speed[FFM] / speed['GRU']:.1f}x its env steps",
    )
    envs = ("PositionOnlyCartPoleEasy", "NoisyPositionOnlyCartPoleEasy")
    others = {env: table[env].drop(FFM) for env in envs}
    leads = [f"{table.loc[FFM, env] - others[env].max():.2f} ({env[:-4]}, {others[env].idxmax()})" for env in envs]
    assert_quotes("docs/results.md", f"ahead of the next model by {leads[0]} and {leads[1]}")
    flat = [env for env in table if (table[env] - table.loc["BasicMLP", env]).abs().max() < 0.05]
    assert sorted(flat) == ["BattleshipEasy", "CountRecallEasy"]
    below = {env: sorted(table.index[table[env] <= table.loc["BasicMLP", env]].drop("BasicMLP")) for env in table}
    assert below["NoisyPositionOnlyCartPoleEasy"] == [] and below["RepeatFirstEasy"] == ["S4D"]
    assert below["PositionOnlyCartPoleEasy"] == [LINEAR_ATTENTION]
    cartpole = table["PositionOnlyCartPoleEasy"]
    assert_quotes(
        "docs/results.md",
        f"all but LinearAttention on PositionOnlyCartPole ({cartpole[LINEAR_ATTENTION]:.2f} against "
        f"{cartpole['BasicMLP']:.2f})",
    )
    assert table["RepeatFirstEasy"].idxmax() == "GRU" and table["RepeatPreviousEasy"].idxmax() == "S4D"
    ranking = table.mean(axis=1).sort_values().index.tolist()
    assert ranking[:2] == ["BasicMLP", LINEAR_ATTENTION]  # "the weakest memory model here"
    ablations = pd.read_csv(RESULTS / "popgym_mmer.csv").pivot(index="model", columns="env", values="mmer_mean")
    drop = (ablations.loc[FFM] - ablations.loc["RayFFMNoDecay"]).dropna()
    assert_quotes(
        "docs/results.md",
        f"{drop['PositionOnlyCartPoleEasy']:.2f} and {drop['RepeatPreviousEasy']:.2f} below the full model",
    )
    final = final_mmer(ten_times())
    walls = final.groupby(["env", "model"])["wall_s"].mean().unstack("model")
    ratio = walls[FFM] / walls["GRU"]
    ends = final.groupby(["env", "model"])["mmer"].agg(["min", "max"])
    assert_quotes(
        "docs/results.md",
        f"took {ratio.min():.2f}-{ratio.max():.2f}x the GRU's mean wall time on every env",
        f"({ends.loc[('RepeatPreviousEasy', FFM), 'min']:.2f}-{ends.loc[('RepeatPreviousEasy', FFM), 'max']:.2f} "
        "over the seeds)",
        f"FFM ends at {ends.loc[('NoisyPositionOnlyCartPoleEasy', FFM), 'min']:.3f}-"
        f"{ends.loc[('NoisyPositionOnlyCartPoleEasy', FFM), 'max']:.3f}, the GRU at "
        f"{ends.loc[('NoisyPositionOnlyCartPoleEasy', 'GRU'), 'min']:.3f}-"
        f"{ends.loc[('NoisyPositionOnlyCartPoleEasy', 'GRU'), 'max']:.3f}",
    )
    pomdp = pd.read_csv(RESULTS / "pomdp_return.csv").set_index(["task", "algo", "memory"])["wall_s_mean"]
    pomdp_ratio = pomdp.xs("ffm", level="memory") / pomdp.xs("gru", level="memory")
    assert_quotes(
        "docs/pomdp-baselines.md", f"{pomdp_ratio.min():.2f}x to {pomdp_ratio.max():.2f}x the GRU's wall time"
    )


ORDINALS = {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth"}


def test_the_linear_attention_prose() -> None:
    """docs/results.md's and FIDELITY.md's reading of LinearAttention's two denominators in the cpu preset, and
    the re-run's LinearAttention (now LinearAttentionDot) against the run before it."""
    table = docs.linear_attention_table(RESULTS)
    mean, std = (table[column].unstack("model") for column in ("mmer_mean", "mmer_std"))
    paper, dot = LINEAR_ATTENTION, LINEAR_ATTENTION_DOT
    change = mean[dot] - mean[paper]
    words = {
        env: verdict(mean.loc[env, dot], std.loc[env, dot], mean.loc[env, paper], std.loc[env, paper])
        for env in mean.index
    }
    outside = sorted(env for env, word in words.items() if word != TIED)
    assert outside == ["PositionOnlyCartPoleEasy", "RepeatFirstEasy"]
    assert (change[["BattleshipEasy", "CountRecallEasy"]].abs() < 0.01).all()
    cells = {
        (env, model): f"{mean.loc[env, model]:.3f} ± {std.loc[env, model]:.3f}"
        for env in outside
        for model in (paper, dot)
    }
    others = cpu_table().drop(index=paper).mean(axis=1)
    rank = {model: 1 + (others > mean[model].mean()).sum() for model in (paper, dot)}
    assert_quotes(
        "docs/results.md",
        f"The correction scores higher on {(change > 0).sum()} of the 6 envs",
        f"on RepeatFirst ({cells['RepeatFirstEasy', dot]} against {cells['RepeatFirstEasy', paper]}) and "
        f"PositionOnlyCartPole ({cells['PositionOnlyCartPoleEasy', dot]} against "
        f"{cells['PositionOnlyCartPoleEasy', paper]})",
        f"moves LinearAttention from {ORDINALS[rank[paper]]} of the six models to {ORDINALS[rank[dot]]}** "
        f"({mean[paper].mean():.3f} to {mean[dot].mean():.3f}; RayFFM stays first at {others[FFM]:.3f})",
    )
    assert others.idxmax() == FFM and others[FFM] > mean[dot].mean()
    per_env = ", ".join(f"{env} {mean.loc[env, paper]:.2f} vs {mean.loc[env, dot]:.2f}" for env in mean.index)
    assert_quotes(
        "FIDELITY.md",
        f"LinearAttention vs LinearAttentionDot: {per_env}; mean over the 6 envs {mean[paper].mean():.3f} vs "
        f"{mean[dot].mean():.3f}",
    )
    # the re-run's LinearAttention computed phi(q) . z: against the run before the re-run, within the seeds' spread
    before = pd.concat(pd.read_csv(path) for path in RESULTS.glob("before-rerun/cpu/*/popgym_mmer.csv"))
    before = before[before["model"] == paper].set_index("env")
    moved = [
        verdict(mean.loc[env, dot], std.loc[env, dot], *before.loc[env, ["mmer_mean", "mmer_std"]])
        for env in mean.index
    ]
    assert len(before) == 6 and set(moved) == {TIED}
    assert_quotes("docs/results.md", "against the runs before the re-run its six means moved by no more than")


def test_the_layer_goals_prose() -> None:
    """The goals the prose says are missed are the table's; its ratios, times and matmul counts are the run's
    and the benchmarked shapes' (B = 64, T = 1,024, input 128, output 256, m = 32, c = 4)."""
    import benchmark
    from tests.test_benchmark import layer_matmul_flops

    table = pd.read_csv(RESULTS / "throughput_cpu_goals.csv")
    goals = table.set_index(["batch", "goal"])["ratio"]
    missed = table[~table["met"]]
    assert set(zip(missed["batch"], missed["goal"], strict=True)) == {(1, "FFM / GRUCell (T=1)")}
    ms = pd.read_csv(RESULTS / "throughput_cpu.csv").query("mode == 'train'").set_index(["model", "batch"])["median_ms"]
    rows = 64 * 1024
    ffm_flops = layer_matmul_flops(rows)
    gates = 3 * benchmark.OUTPUT
    gru_flops = 2 * rows * gates * (2 * (benchmark.INPUT + benchmark.OUTPUT) + benchmark.OUTPUT)
    assert_quotes(
        "docs/efficiency.md",
        f"{NUMBER_WORDS[len(missed)].capitalize()} goal is missed in this run",
        f"Single step, 1.5x GRUCell ({goals[1, 'FFM / GRUCell (T=1)']:.2f})",
        f"At B = 8 they take {ms['layer/FFM-linears', 8]:.0f} ms, and the rest of the layer",
        f"{goals[8, 'FFM / FFM-linears'] - 1:.2f}x as long again",
        f"2.5x faster than the GRU at B = 64 ({goals[64, 'FFM / GRU']:.2f}, target 0.4) is met in this run",
        f"five matmuls are {ffm_flops / 1e9:.0f} GFLOP, {ffm_flops / gru_flops:.2f}x the GRU's {gru_flops / 1e9:.0f}",
        f"its Linear layers alone take {ms['layer/FFM-linears', 64] / ms['layer/GRU', 64]:.2f}x the GRU here",
    )
    plain = ms.xs("layer/FFM-plain") / ms.xs("layer/FFM")
    assert_quotes(
        "docs/efficiency.md",
        f"the plain path took {plain[8]:.2f}x the blockwise path's time at B = 8 and {plain[64]:.2f}x at B = 64",
        f"it measured {goals[8, 'FFA / FFM-linears']:.2f}x the Linear layers at B = 8",
    )


def test_the_ten_times_trials_pass_through_the_cpu_trials() -> None:
    """One final-MMER rule: a ten-times-budget trial read at the cpu budget is the cpu trial of its seed."""
    at_budget = mmer_at(ten_times(), docs.CPU_BUDGET).set_index(["env", "model", "seed"])
    cpu = ppo_trials("cpu").set_index(["env", "model", "seed"]).loc[at_budget.index]
    pd.testing.assert_series_equal(at_budget["mmer"], cpu["mmer"], check_exact=False, rtol=1e-5)
    assert (at_budget["step"] == cpu["step"]).all()


def test_fidelity_quotes_its_tables() -> None:
    runs = pd.read_csv(RESULTS / "fidelity_rayffm_final_mmer.csv").groupby(["run", "env"])["final_mmer"]
    cells = {
        key: f"{mean:.3f} ± {std:.3f}"
        for key, mean, std in zip(runs.mean().index, runs.mean(), runs.std(), strict=True)
    }
    cpu = pd.read_csv(RESULTS / "popgym_mmer.csv").set_index(["model", "env"])
    envs = ("RepeatFirstEasy", "RepeatPreviousEasy")
    gru_cells = [f"{cpu.loc[('GRU', env), 'mmer_mean']:.2f} ± {cpu.loc[('GRU', env), 'mmer_std']:.2f}" for env in envs]
    rerun = [f"{cpu.loc[(FFM, env), 'mmer_mean']:.3f} ± {cpu.loc[(FFM, env), 'mmer_std']:.3f}" for env in envs]
    quotes = [
        f"| {cells[run, 'RepeatFirstEasy']} | {cells[run, 'RepeatPreviousEasy']} |" for run, _ in runs.mean().index[::2]
    ]
    assert_quotes(
        "FIDELITY.md",
        *quotes,
        f"the re-run of 2026-12-02 (`results/popgym_mmer.csv`) | {rerun[0]} | {rerun[1]} |",
        f"in the same run (`results/popgym_mmer.csv`) | {gru_cells[0]} | {gru_cells[1]} |",
    )


def test_the_ppo_settings_prose() -> None:
    """The iterations per trial of the cpu presets, and the budget table's trials per run."""
    runs = {run: ppo_trials(run) for run in ("cpu", "cpu-ablations", "cpu-10x", "cpu-10x-init", "paper-settings")}
    cpu = pd.concat(curve_table(path) for path in sorted(RESULTS.glob("cpu*/*/popgym_curves.csv")))
    cpu = cpu[cpu["step"].groupby([cpu["env"], cpu["model"], cpu["seed"]]).transform("max") < 30_000]
    iterations = cpu.groupby(["env", "model", "seed"])["step"].count()
    assert_quotes(
        "docs/popgym-experiments.md",
        f"whole episodes, so {iterations.min()} to {iterations.max()} iterations per trial",
    )
    dot = ppo_trials(docs.DOT_RUN)
    linear = runs["cpu"][runs["cpu"]["model"] == LINEAR_ATTENTION]
    assert_quotes(
        "docs/results.md",
        *(f"= {len(trials)} |" for trials in runs.values()),
        f"LinearAttentionDot (`{docs.DOT_RUN}`) | 2 models x 6 envs x 3 seeds = {len(dot) + len(linear)} |",
    )


# links and anchors

FENCE = re.compile(r"^(```|~~~).*?^\1", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation other than '-' and '_' dropped,
    spaces as '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor in a page; a repeated one gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for heading in HEADING.findall(FENCE.sub("", markdown)):
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def test_slugs_follow_github() -> None:
    assert slug("GPU check (make gpu-check)") == "gpu-check-make-gpu-check"
    assert slug("What changed for fidelity (issue 15)") == "what-changed-for-fidelity-issue-15"
    assert slug("The score: final MMER") == "the-score-final-mmer"
    assert slug("`plotting/` reference") == "plotting-reference"
    assert anchors("# A\n## A\n```\n# B\n```\n") == {"a", "a-1"}


def links(markdown: str) -> list[str]:
    """The targets of the inline links and images of a page, outside code."""
    return LINK.findall(CODE_SPAN.sub("", FENCE.sub("", markdown)))


@GIT
def test_every_relative_link_and_anchor_resolves() -> None:
    pages = subprocess.run(["git", "ls-files", "*.md"], cwd=REPO, capture_output=True, text=True, check=True)
    broken = []
    for name in pages.stdout.split():
        source = REPO / name
        for target in links(source.read_text()):
            if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            path, _, anchor = target.partition("#")
            resolved = (source.parent / path).resolve() if path else source
            if not resolved.exists():
                broken.append(f"{name}: {target} (no {path})")
            elif anchor and (resolved.suffix != ".md" or anchor not in anchors(resolved.read_text())):
                broken.append(f"{name}: {target} (no heading #{anchor} in {resolved.relative_to(REPO)})")
    assert not broken, "\n".join(broken)


def test_the_ppo_throughput_prose() -> None:
    table = pd.read_csv(RESULTS / "throughput_ppo_cpu.csv").set_index(["label", "model", "env", "learner"])
    padded, trimmed = (
        table.loc["paper", FFM, "RepeatPreviousEasy", learner] for learner in ("rllib-padded", "trimmed")
    )
    bptt64 = table.loc["paper-bptt64", FFM, "RepeatPreviousEasy", "trimmed"]
    ours = table.xs("trimmed", level="learner")
    update = ours["update_ms"] / ours["plain_update_ms"]
    sampling = ours["sampling_limit_steps_per_s"] / (ours["env_steps_per_iteration"] / ours["sampling_s"])
    assert_quotes(
        "docs/efficiency.md",
        f"Its minibatch update takes {update.min():.2f}x to {update.max():.2f}x a plain-torch one",
        f"{sampling.min():.1f} to {sampling.max():.1f} times slower than the RLlib-free loop",
        f"over {padded['loss_rows_per_valid_step']:.1f} rows per valid env step",
        f"ppo.py's over {trimmed['loss_rows_per_valid_step']:.2f}",
        f"{trimmed['env_steps_per_s'] / padded['env_steps_per_s']:.0f}x faster for it "
        f"({padded['env_steps_per_s']:,.0f} to {trimmed['env_steps_per_s']:,.0f} env steps per second)",
        f"it runs {bptt64['env_steps_per_s'] / trimmed['env_steps_per_s']:.2f}x as fast as at BPTT 1,024",
    )


def test_what_ffm_learns_prose() -> None:
    """docs/results.md's reading of the interpretability figure, from the cpu run's logged internals."""
    curves = pd.concat(curve_table(path) for path in sorted(RESULTS.glob("cpu/*/popgym_curves.csv")))
    ffm = curves[curves["model"] == FFM].sort_values("step")
    decay = sorted(column for column in ffm if column.startswith("ffm/decay_time/"))
    period = sorted(column for column in ffm if column.startswith("ffm/period/"))[1:]  # the three rotating ones
    ceiling = math.log(0.01) / -1e-8  # the decay time at the floor a = -1e-8
    runs = ffm.groupby(["env", "seed"])
    final = runs.last()
    at_ceiling = final[decay] >= 0.999 * ceiling
    reached = ffm[ffm[decay[-1]] >= 0.999 * ceiling].groupby(["env", "seed"])["step"].min()
    settled = final.loc[~at_ceiling[decay[-1]], decay[-1]]
    elsewhere = final.drop(index="RepeatFirstEasy", level="env")
    next_slowest = elsewhere.loc[~at_ceiling.drop(index="RepeatFirstEasy", level="env")[decay[-2]], decay[-2]]
    longest = final[period].max(axis=1)
    stuck = longest[longest > 512].sort_values()  # still above half the initial 1,024
    shortened = final.loc[longest <= 512, period]
    repeat_first = at_ceiling.loc["RepeatFirstEasy"].sum(axis=1)
    lone = final.loc["RepeatFirstEasy"].loc[repeat_first == 1, decay[-2]]  # the next slowest where one trace stops
    assert set(reached.index.get_level_values("env")) == set(curves["env"])  # "on every env"
    assert_quotes(
        "docs/results.md",
        f"within the first {round(reached.min(), -2):,.0f}-{round(reached.max(), -2):,.0f} env steps",
        f"in {len(reached)} of the {len(final)} runs, on every env; the other {NUMBER_WORDS[len(settled)]} "
        f"(one seed of each CartPole) settle at {round(settled.min(), -1):.0f}-{round(settled.max(), -1):.0f} steps",
        f"{NUMBER_WORDS[repeat_first.min()]} to {NUMBER_WORDS[repeat_first.max()]} traces do so, and where only one "
        f"does, the next slowest lengthens to {' and '.join(f'{value:,.0f}' for value in lone)} steps",
        f"Elsewhere the next slowest trace moves from {ffm[decay[-2]].iloc[0]:.0f} to "
        f"{next_slowest.min():.0f}-{next_slowest.max():.0f} steps",
        f"the fastest stay at {final[decay[0]].min():.1f}-{final[decay[0]].max():.1f} steps",
        f"to {shortened.min().min():.0f}-{shortened.max().max():.0f} in {len(shortened)} of the {len(final)} runs "
        f"({' and '.join(f'{value:.0f}' for value in stuck)} in the other {NUMBER_WORDS[len(stuck)]})",
    )
    assert all(final.index.get_level_values("env")[~at_ceiling[decay[-1]]].str.contains("CartPole"))


def test_the_ten_times_prose() -> None:
    """docs/results.md's reading of the ten-times-budget curves: when each model's trials reach 0.9 MMER."""
    curves = ten_times()
    first = curves[curves["mmer"] >= 0.9].groupby(["env", "model", "seed"])["step"].min() / 1000
    reach = first.groupby(["env", "model"]).agg(["min", "max"]).map("{:.0f}".format)
    above = curves[(curves["env"] == "RepeatFirstEasy") & (curves["mmer"] >= 0.98)]
    all_above = above.groupby(["model", "seed"])["step"].min().max() / 1000
    final = final_mmer(curves).groupby(["env", "model"])["mmer"].agg(["min", "max"]).map("{:.2f}".format)

    def span(env: str, model: str) -> str:
        return f"{reach.loc[(env, model), 'min']}-{reach.loc[(env, model), 'max']}k"

    assert_quotes(
        "docs/results.md",
        f"The GRU reaches 0.9 MMER at {span('RepeatFirstEasy', 'GRU')} steps, FFM at "
        f"{span('RepeatFirstEasy', FFM)}; every trial of both is above 0.98 by {all_above:.0f}k",
        f"passes 0.9 at {span('RepeatPreviousEasy', 'GRU')} steps and stays at "
        f"{final.loc[('RepeatPreviousEasy', 'GRU'), 'min']}-{final.loc[('RepeatPreviousEasy', 'GRU'), 'max']}",
        f"FFM reaches 0.9 at {span('NoisyPositionOnlyCartPoleEasy', FFM)} steps, the GRU at "
        f"{span('NoisyPositionOnlyCartPoleEasy', 'GRU')}",
    )


def test_curve_gap_pairs_seeds_and_steps() -> None:
    curve = pd.DataFrame({"seed": [0, 0, 1], "step": [10, 20, 10], "mmer": [0.1, 0.2, 0.3]})
    assert docs.curve_gap(curve, curve) == 0 and docs.repeated(0) == "every seed, to 1e-6"
    assert docs.curve_gap(curve, curve.assign(mmer=[0.1, 0.25, 0.3])) == pytest.approx(0.05)
    assert math.isinf(docs.curve_gap(curve, curve.assign(step=[10, 30, 10])))  # another iteration
    assert math.isinf(docs.curve_gap(curve, curve.iloc[:2]))  # a seed missing
    assert docs.repeated(math.inf) == "no: at other iterations"


def test_the_ten_times_rerun_prose() -> None:
    """docs/results.md on the cpu-10x envs re-run in cpu-10x-all: the GRU's curves repeat, FFM's move, by as
    much as the text says."""
    pairs = list(docs.rerun_pairs(RESULTS))
    assert pairs
    moved = []
    for env, model, first, again in pairs:
        gap = docs.curve_gap(first, again)
        assert (gap < 1e-6) == (model == "GRU"), (env, model, gap)
        moved.append(abs(final_mmer(again)["mmer"].mean() - final_mmer(first)["mmer"].mean()))
    assert_quotes(
        "docs/results.md", f"FFM's do not, and its final MMER moves by up to {max(moved):.3f} (mean over seeds"
    )


def test_the_rerun_prose() -> None:
    """The re-run of 2026-12-02 against the runs it replaced (results/before-rerun/): how many means moved
    within the seeds' spread, which did not, and the change in env steps per second."""
    table = docs.rerun_comparison(RESULTS)
    within = table["within"].astype(bool)
    fewer = 1 - table["steps_per_s_mean_after"] / table["steps_per_s_mean_before"]
    by_run = fewer.groupby(table["run"]).agg(["min", "max"])
    assert_quotes(
        "docs/results.md",
        f"{within.sum()} of the {len(table)} means (run, env and model) moved by no more than",
        *(f"`{run}` {low:.0%} to {high:.0%}" for run, (low, high) in by_run.iterrows()),
    )


def test_the_init_studys_time_scales_start_at_the_models_initialisation() -> None:
    """The init-time-scales block's first-iteration values are each model's initial t_omega = 2 pi / |w| and
    slowest t_alpha = ln(0.1) / a (clipped at 400), moved by one PPO update at most by 3%."""
    from tests.batches import build_module

    start = docs.learned_time_scales(RESULTS).set_index(["env", "model", "time_scale"])["start"]
    for env, model in {key[:2] for key in start.index}:
        aggregator = build_module(model, "discrete", max_seq_len=8).network.core.ffm.aggregator
        periods = (2 * math.pi / aggregator.w.detach().double().abs()).clamp(max=400).tolist()
        slowest = min(math.log(0.1) / aggregator.a.detach().double().max().item(), 400)
        assert start[env, model, "t_omega"].tolist() == pytest.approx(periods, rel=0.03), (env, model)
        assert start[env, model, "t_alpha"].max() == pytest.approx(slowest, rel=0.03), (env, model)


def test_the_init_study_prose() -> None:
    """docs/results.md's and the README's reading of the init study, from its tables."""
    curves = docs.init_study(RESULTS)
    final = final_mmer(curves).groupby(["env", "model"])["mmer"]
    mean, std = final.mean(), final.std()
    text = {key: f"{mean[key]:.3f} ± {std[key]:.3f}" for key in mean.index}
    easy, medium = "RepeatPreviousEasy", "RepeatPreviousMedium"
    order = ("RayFFM_32_104", FFM, "GRU")
    assert_quotes("docs/results.md", *text.values())
    assert_quotes(
        "README.md", *(f"{env[6:]} {' vs '.join(f'{mean[env, m]:.3f}' for m in order)}" for env in (easy, medium))
    )
    checkpoints = {at: mmer_at(curves, at).groupby(["env", "model"])["mmer"].mean() for at in (24_576, 49_152, 122_880)}
    assert all(at[easy, "RayFFM_32_104"] > at[easy, FFM] for at in checkpoints.values())  # "ahead at every checkpoint"
    late = checkpoints[122_880]
    assert_quotes(
        "docs/results.md", f"{late[easy, 'RayFFM_32_104']:.2f} against {late[easy, FFM]:.2f} at 122,880 steps"
    )
    start = checkpoints[24_576][medium]
    assert_quotes("docs/results.md", f"{start.max():.2f} to {start.min():.2f} at 24,576 steps")
    for first in order:  # "gaps of less than two seeds' standard deviations": tied or inconclusive by the rule
        for second in order:
            word = verdict(mean[medium, first], std[medium, first], mean[medium, second], std[medium, second])
            assert word in (TIED, INCONCLUSIVE), (first, second)

    scales = docs.learned_time_scales(RESULTS).set_index(["env", "model", "time_scale"])
    for env in (easy, medium):
        ffm = scales.loc[(env, FFM, "t_omega")]
        rotating = ffm[ffm["start"] > 1]["end"]  # RayFFM's first frequency does not rotate at whole steps
        assert rotating.min() > 1.25 * 64  # "none goes to the actor mode's 64"
        informed = scales.loc[(env, "RayFFM_32_104", "t_omega")]
        assert ((informed["end"] / informed["start"] - 1).abs() <= 0.25).all()  # "within 25%"
        assert_quotes(
            "docs/results.md",
            f"{rotating.min():.0f}-{rotating.max():.0f} on {env}",
            f"{informed['end'].min():.0f}-{informed['end'].max():.0f} on {env}",
        )
        for model in order[:2]:
            alpha = scales.loc[(env, model, "t_alpha")]
            assert 28 <= (alpha["end"] <= 32).sum() <= 30, (env, model)
        assert scales.loc[(env, FFM, "t_alpha"), ["start", "end"]].max().tolist() == [400, 400]  # "starts and stays"
    informed = scales.loc[(medium, "RayFFM_32_104", "t_alpha")]
    assert round(informed["start"].max()) == 52 and informed["end"].max() == 400  # "from 52 steps" to the clip


def test_the_second_paper_settings_env_on_the_front_page() -> None:
    """The README's paper-settings row on the second env (the every-family rule's pick): its final MMERs, env
    steps and the trials of both envs; docs/results.md's budget row, from the committed tables."""
    second = paper_settings_second_env()
    trials = ppo_trials("paper-settings")
    mine = trials[trials["env"] == second]
    final = mine.groupby("model")["mmer"].mean()
    assert mine["step"].nunique() == 1 and len(mine) == 2 * 3
    assert_quotes(
        "README.md",
        f"(3 seeds), {second} {final[FFM]:.3f} vs {final['GRU']:.3f} (3 seeds)",
        f"{mine['step'].iloc[0]:,.0f} on {second}, {len(trials)} trials, at",
    )
    assert_quotes(
        "docs/results.md",
        f"| `paper-settings` | RayFFM, GRU x 2 envs ({by_env.FIRST_PAPER_SETTINGS_ENV}: 3 seeds; {second}: 3 seeds) "
        f"= {len(trials)} |",
    )


def first_at(trials: pd.DataFrame, model: str, level: float) -> pd.Series:
    """Per seed, the env steps at which a model's curve first reaches ``level``."""
    mine = trials[(trials["model"] == model) & (trials["mmer"] >= level)]
    return mine.groupby("seed")["step"].min()


def span(steps: pd.Series) -> str:
    """Env steps over seeds as prose gives them: one number, or the smallest and largest."""
    return f"{steps.min():,.0f}" if steps.min() == steps.max() else f"{steps.min():,.0f}-{steps.max():,.0f}"


def paper_settings_runs(env: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, DataFrameGroupBy]]:
    """One env's curves at the paper's PPO settings and scaled down, and each run's final MMERs by model."""
    curves = load_runs(committed_tables("paper-settings", RESULTS)).query("env == @env")
    paper, scaled = (curves[curves["run"] == run] for run in (PAPER, SCALED))
    ends = {run: final_mmer(trials).groupby("model") for run, trials in ((PAPER, paper), (SCALED, scaled))}
    return paper, scaled, ends


def iterations_quote(batch: int, scaled: pd.DataFrame) -> str:
    """The prose's comparison of a paper-settings iteration (``batch`` env steps) with the scaled-down run's."""
    steps = scaled.sort_values("step").groupby(["model", "seed"])["step"].diff().dropna()
    assert steps.nunique() == 1 and batch % steps.iloc[0] == 0
    return (
        f"one PPO iteration per {batch:,} env steps, where `cpu-10x` makes {batch // steps.iloc[0]:.0f} of "
        f"{steps.iloc[0]:,.0f} env steps each on this env"
    )


def cost_quote(paper_ends: DataFrameGroupBy) -> str:
    """The prose's cost of a RayFFM trial at the paper's settings against the GRU's."""
    speed, walls = paper_ends["steps_per_s"].mean(), paper_ends["wall_s"].mean()
    return (
        f"{walls[FFM] / walls['GRU']:.2f}x the GRU's wall time ({speed[FFM]:.0f} against {speed['GRU']:.0f} env steps"
    )


def test_the_paper_settings_prose() -> None:
    """docs/results.md's and the README's reading of the paper-settings run against cpu-10x on its first env,
    RepeatPreviousEasy, from their tables."""
    env = by_env.FIRST_PAPER_SETTINGS_ENV
    paper, scaled, ends = paper_settings_runs(env)
    final = ends[PAPER]["mmer"].mean()
    seeds = sorted(paper["seed"].unique())
    assert_quotes("README.md", f"RayFFM vs GRU: {env} {final[FFM]:.3f} vs {final['GRU']:.3f} ({len(seeds)} seeds)")
    steps = ends[PAPER]["step"].max()
    assert steps.nunique() == 1
    assert_quotes("README.md", f"{steps.iloc[0]:,.0f} env steps per trial (18% of the paper's 15M) on {env}")
    iterations = paper.groupby(["model", "seed"])["step"].agg(["count", "min"])
    assert iterations["count"].nunique() == 1 and iterations["min"].nunique() == 1
    (count,), (batch,) = iterations["count"].unique(), iterations["min"].unique()  # whole episodes: > 65,536 each
    assert steps.iloc[0] == count * batch
    budget = int(ppo.PRESETS["paper-settings"]["steps"])
    assert budget == 40 * 65_536 and (count - 1) * batch < budget <= count * batch  # the first iteration past it
    ending = f"whole episodes make each iteration {batch:,} env steps, so the trials end after {count} iterations, at"
    assert_quotes("docs/results.md", f"a budget of {budget:,} env steps per trial (40 x 65,536; {ending}")
    assert_quotes("docs/results.md", f"at {steps.iloc[0]:,.0f}): `python ppo.py --preset paper-settings --seeds S")
    assert_quotes(
        "docs/popgym-experiments.md",
        f"a budget of {budget:,} env steps (40 x 65,536; whole episodes make {count} iterations of {batch:,}, ending "
        f"at {steps.iloc[0]:,.0f})",
    )
    assert_quotes("docs/results.md", iterations_quote(batch, scaled))
    assert_quotes("docs/results.md", f"The GRU ends at {final['GRU']:.3f}, RayFFM at {final[FFM]:.3f}")
    assert (final["GRU"] > final[FFM]) == (ends[SCALED]["mmer"].mean()["GRU"] > ends[SCALED]["mmer"].mean()[FFM])
    ffm_curve = paper[paper["model"] == FFM].groupby("step")["mmer"].mean()
    last = ffm_curve.index.max()
    gains = [ffm_curve[last - 10 * k * batch] - ffm_curve[last - 10 * (k + 1) * batch] for k in (0, 1)]
    assert_quotes("docs/results.md", f"(+{gains[0]:.2f} over its last 10 batches, +{gains[1]:.2f} over the 10 before)")

    budget = final_mmer(scaled)["step"].min()
    equal = mmer_at(paper, budget)
    assert (equal["step"] == 4 * batch).all()
    spans = equal.groupby("model")["mmer"].agg(["min", "max"])
    assert spans.loc["GRU", "min"] < spans.loc[FFM, "max"] and spans.loc[FFM, "min"] < spans.loc["GRU", "max"]
    first = paper[paper["step"] == paper["step"].min()]["mmer"].mean()
    assert_quotes(
        "docs/results.md",
        f"after 4 batches both have just left their first batch's {first:.2f} "
        f"({equal['mmer'].min():.2f} to {equal['mmer'].max():.2f} over trials)",
    )

    gru, gru_scaled = first_at(paper, "GRU", 0.9), first_at(scaled, "GRU", 0.9)
    scaled_ffm = ends[SCALED]["mmer"].mean()[FFM]
    ffm = first_at(paper, FFM, round(scaled_ffm, 2))
    scaled_span = f"{gru_scaled.min() / 1e3:.0f}-{gru_scaled.max() / 1e3:.0f}k"
    assert_quotes(
        "docs/results.md",
        f"passes 0.9 at {span(gru)} env steps (`cpu-10x`: {scaled_span})",
        f"final {scaled_ffm:.2f} at {span(ffm)}",
    )
    assert_quotes("docs/results.md", cost_quote(ends[PAPER]))


def test_the_second_paper_settings_env_prose() -> None:
    """docs/results.md's reading of the paper-settings run on its second env, from the tables: the ranking at
    the end against the scaled-down run's, at equal env steps, how many env steps each model needs for the
    scaled-down run's final score, and the cost."""
    paper, scaled, ends = paper_settings_runs(paper_settings_second_env())
    said = {}
    for run, end in ends.items():
        mean, std = end["mmer"].mean(), end["mmer"].std()
        said[run] = verdict(mean[FFM], std[FFM], mean["GRU"], std["GRU"])
        assert_quotes(
            "docs/results.md",
            f"RayFFM {mean[FFM]:.3f} ± {std[FFM]:.3f}, the GRU {mean['GRU']:.3f} ± {std['GRU']:.3f} ({said[run]})",
        )
    assert_quotes("docs/results.md", f"At the end: {said[PAPER]}, where the scaled-down batch was {said[SCALED]}")

    batch = paper["step"].min()
    scaled_final = ends[SCALED]["mmer"].mean()
    equal = mmer_at(paper, final_mmer(scaled)["step"].min())
    assert equal["step"].nunique() == 1
    at_equal = equal.groupby("model")["mmer"].mean()
    assert_quotes(
        "docs/results.md",
        f"after {equal['step'].iloc[0] // batch:.0f} batches RayFFM is at {at_equal[FFM]:.3f}, the GRU at "
        f"{at_equal['GRU']:.3f}, where `cpu-10x` has ended at {scaled_final[FFM]:.2f} and {scaled_final['GRU']:.2f}",
        iterations_quote(batch, scaled),
    )
    needs = {model: first_at(paper, model, round(scaled_final[model], 2)) for model in (FFM, "GRU")}
    assert all(len(steps) == 3 for steps in needs.values())  # every seed gets there
    assert_quotes(
        "docs/results.md",
        f"the GRU reaches `cpu-10x`'s final {scaled_final['GRU']:.2f} at {span(needs['GRU'])} env steps, RayFFM its "
        f"{scaled_final[FFM]:.2f} at {span(needs[FFM])}",
    )
    assert_quotes("docs/results.md", cost_quote(ends[PAPER]))


# provenance: the commit of each committed result, recorded once (results/README.md's commit column)

HEX = re.compile(r"\b[0-9a-f]{7,40}\b")
# what pages call every POPGym run at once, in words instead of a run's name
POPGYM_RUNS = re.compile(r"\bPOPGym runs\b")
POPGYM_KEYS = ("cpu", "cpu-ablations", "cpu-10x", "cpu-10x-init", "paper-settings", "cpu-linear-attention-dot")
# the code a result depends on: a run made before its last change is not "at the current code"
CODE = ("standalone/ffm", "models", "ppo.py")


def git(*args: str, stdin: str | None = None) -> str:
    return subprocess.run(["git", *args], cwd=REPO, input=stdin, capture_output=True, text=True, check=True).stdout


def commits(tokens: set[str]) -> dict[str, str]:
    """The tokens that name a commit of this repository, each with its full hash."""
    ordered = sorted(tokens)
    answers = git("cat-file", "--batch-check", stdin="".join(f"{token}^{{commit}}\n" for token in ordered))
    return {
        token: line.split()[0]
        for token, line in zip(ordered, answers.splitlines(), strict=True)
        if line.split()[1:2] == ["commit"]
    }


def row_cells(row: str) -> list[str]:
    """A Markdown table row's cells, stripped."""
    return [cell.strip() for cell in row.strip("|").split("|")]


def recorded_commits() -> dict[str, set[str]]:
    """results/README.md's table: each result (a run folder's or a file's name, the first part of each path in the
    row's first column; <...> stands for each such folder under results/) -> the full hashes in its commit column."""
    rows = [line for line in (RESULTS / "README.md").read_text().splitlines() if line.startswith("| `")]
    found: dict[str, set[str]] = {}
    for row in rows:
        cells = row_cells(row)
        hashes = set(commits(set(HEX.findall(cells[-1]))).values())
        assert hashes, f"results/README.md: no commit in the commit column of {cells[0]}"
        for path in re.findall(r"`([^`]+)`", cells[0]):
            first = path.split("/")[0]
            names = [match.name for match in RESULTS.glob(re.sub(r"<[^>]*>", "*", first))] if "<" in first else [first]
            for name in names if not path.startswith(".") else []:
                found.setdefault(name, set()).update(hashes)
    return found


def mention(key: str) -> re.Pattern:
    """A page's mention of a result by name: `key`, `results/key`, or a path under it, in backticks."""
    return re.compile(rf"`(?:results/)?{re.escape(key)}(?:/[^`]*)?`")


def units(markdown: str) -> list[str]:
    """A page's sentences and table rows, outside code blocks, each on one line."""
    found = []
    for block in re.split(r"\n\s*\n", FENCE.sub("", markdown)):
        lines = block.splitlines()
        prose = " ".join(line for line in lines if not line.startswith("|"))
        found += re.split(r"(?<=[.;])\s+(?=[A-Z(`*\[])", " ".join(prose.split()))
        found += [line for line in lines if line.startswith("|")]
    return [unit for unit in found if unit]


def tracked_pages() -> list[str]:
    return git("ls-files", "*.md").split()


@GIT
def test_the_provenance_helpers_read_pages_as_written() -> None:
    assert mention("cpu").search("the `cpu` preset") and mention("cpu").search("`results/cpu/ENV/`")
    assert not mention("cpu").search("`cpu-10x`") and mention("pomdp-sac").search("`pomdp-sac/Pendulum-V`")
    assert {"pomdp-sac", "pomdp-td3", "cpu-10x"} <= set(recorded_commits())
    assert units("A `cpu` run. B at a2418b8.\n\n| a | b |\n```\nC.\n```\n") == [
        "A `cpu` run.",
        "B at a2418b8.",
        "| a | b |",
    ]


@GIT
def test_every_page_names_a_results_commit_as_results_readme_records_it() -> None:
    """Where a sentence or table row names a committed result (`cpu`, `results/throughput_cpu.csv`, ..., or "the
    POPGym runs") and a commit at which some committed result was made, the commit is one recorded for a result
    it names: one record per result, every page reading from it."""
    recorded = recorded_commits()
    results_commits = set().union(*recorded.values())
    pages = {name: units((REPO / name).read_text()) for name in tracked_pages()}
    named = commits({token for found in pages.values() for unit in found for token in HEX.findall(unit)})
    wrong = []
    for name, found in pages.items():
        for unit in found:
            keys = [key for key in recorded if mention(key).search(unit)]
            keys += list(POPGYM_KEYS) if POPGYM_RUNS.search(unit) else []
            hashes = {token: named[token] for token in HEX.findall(unit) if named.get(token) in results_commits}
            allowed = set().union(*(recorded[key] for key in keys)) if keys else set()
            wrong += [f"{name}: {token} beside {', '.join(keys)}: {unit[:160]}" for token, full in hashes.items()
                      if keys and full not in allowed]  # fmt: skip
    assert not wrong, "pages name a commit that results/README.md does not record for the result:\n" + "\n".join(wrong)


# each row of the README's claims table (by the start of its claim cell) -> the results its runs made
CLAIM_ROW_RESULTS = {
    "FFM gets more reward than RNNs on POPGym": ("cpu",),
    "... and it holds as training goes on": ("cpu-10x-all",),
    "... and at the paper's PPO batch": ("paper-settings",),
    "... and as the memory of recurrent SAC / TD3": ("pomdp-sac", "pomdp-td3"),
    "the discussion: FFM initialised": ("cpu-10x-init",),
    "forgetting (decay) is what matters": ("cpu-ablations",),
    "FFM trains two orders of magnitude faster": ("paper-settings", "throughput_cpu.csv", "throughput_ppo_cpu.csv"),
    "FFM needs less memory": ("throughput_cpu.csv",),
}


@GIT
def test_each_claims_row_names_the_commits_of_its_runs() -> None:
    """Every row of the README's claims table names, in its last cell, at least one commit, and only commits that
    results/README.md records for the results behind the row."""
    recorded = recorded_commits()
    table = (REPO / "README.md").read_text().split("| the paper's claim |", 1)[1].split("\n\n", 1)[0]
    rows = [row for row in table.splitlines()[2:] if row.startswith("|")]
    assert len(rows) == len(CLAIM_ROW_RESULTS)
    for row in rows:
        cells = row_cells(row)
        keys = [results for start, results in CLAIM_ROW_RESULTS.items() if cells[0].startswith(start)]
        assert len(keys) == 1, f"README claims row with no entry in CLAIM_ROW_RESULTS: {cells[0][:80]}"
        named = commits(set(HEX.findall(cells[-1])))
        allowed = set().union(*(recorded[key] for key in keys[0]))
        assert named, f"README claims row names no commit in its last cell: {cells[0][:80]}"
        assert set(named.values()) <= allowed, (cells[0][:80], sorted(named), sorted(full[:7] for full in allowed))


@GIT
def test_no_page_calls_an_older_run_current() -> None:
    """ "current code" only for results made at or after the last change to the ffm package, models/ or ppo.py;
    a sentence that says it and names no result speaks of them all."""
    last = git("log", "-1", "--format=%H", "--", *CODE).strip()
    recorded = recorded_commits()

    def current(key: str) -> bool:
        ancestor = [
            subprocess.run(["git", "merge-base", "--is-ancestor", last, full], cwd=REPO).returncode == 0
            for full in recorded[key]
        ]
        return all(ancestor)

    stale = []
    for name in tracked_pages():
        for unit in units((REPO / name).read_text()):
            if re.search(r"\bcurrent code\b", unit, re.IGNORECASE):
                keys = [key for key in recorded if mention(key).search(unit)] or list(recorded)
                stale += [f"{name}: {unit[:160]}" for key in keys[:1] if not all(current(key) for key in keys)]
    assert not stale, f"pages call runs made before {last[:7]} (the code's last change) current:\n" + "\n".join(stale)


TRACKER = re.compile(
    r"\b(?:issues?|PR|pull request|ticket)\s*#?\d+|\bissue's\b|\b(?:the|this|that)\s+(?:[\w-]+\s+)?issue\b",
    re.IGNORECASE,
)


@GIT
def test_no_page_refers_to_a_tracker_the_reader_does_not_have() -> None:
    """Every tracked Markdown page says what was done and why, not which issue of a tracker asked for it."""
    found = [
        f"{name}: {match.group(0)!r} in {unit[:120]}"
        for name in tracked_pages()
        for unit in units((REPO / name).read_text())
        for match in TRACKER.finditer(unit)
    ]
    assert (
        TRACKER.search("before issue 15") and TRACKER.search("the fidelity issue's own") and TRACKER.search("#30 PR 2")
    )
    assert not found, "pages refer to an issue tracker:\n" + "\n".join(found)
