"""plotting: one tidy loader over every source format (Tune folders, wandb offline and online), every figure
and table, the numbers behind them checked against hand computations, and clear messages for missing results."""

import json
import math
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import wandb

from plotting.__main__ import FIGURES, main
from plotting.discussion import CLIP, time_scales
from plotting.interpretability import internals
from plotting.load import align_steps, load_popgym, split_difficulty
from plotting.paper_settings import load_runs
from plotting.pomdp import load_pomdp
from plotting.popgym_figures import ablation_scores, relative_mmer
from plotting.source import NoResultsError
from plotting.throughput import load_throughput, model_rows
from plotting.verdict import BEHIND, INCONCLUSIVE, TIED, WON, claim, seeds_spread, verdict
from plotting.wandb_source import BLOCK, log_records, online_runs
from results_schema import PPO_THROUGHPUT_COLUMNS, THROUGHPUT_COLUMNS
from tests.modules import RL_STACK, loaded_packages

REPO = Path(__file__).resolve().parents[1]
# (env, model, seed): mean episode returns per iteration (iteration i at 100 * (i + 1) env steps)
TRIALS = {
    ("RepeatPreviousEasy", "RayFFM", 0): [-0.5, 0.2, 0.1],
    ("RepeatPreviousEasy", "RayFFM", 1): [-0.4, 0.4, 0.3],
    ("RepeatPreviousEasy", "BasicMLP", 0): [-0.5, -0.45, -0.6],
    ("StatelessCartPoleHard", "RayFFM", 0): [0.1, 0.3],
}
MORE_TRIALS = {
    ("RepeatPreviousEasy", "GRU", 0): [math.nan, 0.0, 0.1, 0.05],  # no episode finished in the first iteration
    ("RepeatPreviousEasy", "RayFFMNoDecay", 0): [-0.2, 0.0, -0.1],
    ("StatelessCartPoleHard", "BasicMLP", 0): [0.1, 0.2],
    ("RepeatPreviousEasy", "RayFFM_32_104", 0): [-0.3, 0.1, 0.2],
}
FIGURE_FILES = (
    *("mmer_summary", "learning_curves", "ablations", "throughput", "ppo_cost", "pomdp", "interpretability"),
    *("init", "timescales", "ffm_vs_gru_by_env"),
)


def results(env: str, model: str, returns: list[float]) -> list[dict]:
    """ppo.py's result dicts (nested as in result.json): steps, return, MMER, and FFM's internals."""
    rows, best = [], math.nan
    for i, value in enumerate(returns):
        best = value if math.isnan(best) or value > best else best
        runners = {"episode_return_mean": value}
        if model.startswith("RayFFM"):
            runners |= {f"ffm/decay_time/{trace:02d}": 2.0 ** (trace + i) for trace in range(3)}
            runners |= {f"ffm/period/{unit}": 10.0 * (unit + 1) for unit in range(2)} | {"ffm/input_gate/mean": 0.5}
        step = {"num_env_steps_sampled_lifetime": 100 * (i + 1), "time_total_s": float(i)}
        rows.append(step | {"env_runners": runners, "mmer": best, "config": {"env": env}})
    return rows


def write_trial(root: Path, env: str, model: str, seed: int, returns: list[float]) -> None:
    """A Tune trial folder as ppo.py leaves it: params.json and result.json (JSON lines, nested keys)."""
    trial = root / "experiment" / f"{env}-{model}-{seed}"
    trial.mkdir(parents=True)
    (trial / "params.json").write_text(json.dumps({"env": env, "memory_model": model, "seed": seed}))
    (trial / "result.json").write_text("".join(json.dumps(row) + "\n" for row in results(env, model, returns)))


def flat(row: dict) -> dict:
    """A result dict flattened with "/" as ppo.py's wandb logger logs it (config left out)."""
    return pd.json_normalize(row, sep="/").drop(columns="config/env").iloc[0].to_dict()


def write_offline_runs(root: Path, trials: dict, group: str) -> None:
    """Real wandb offline runs of the trials, as ppo.py's logger writes them; the first row carries a
    histogram larger than wandb's 32 KiB log block, so records span blocks. Returns once the files are whole
    (a read straight after run.finish() missed the last run once, on a loaded machine)."""
    root.mkdir(parents=True, exist_ok=True)
    for (env, model, seed), returns in trials.items():
        config = {"env": env, "memory_model": model, "seed": seed, "lr": 5e-5}
        settings = wandb.Settings(silent=True, console="off", x_disable_stats=True)
        run = wandb.init(mode="offline", dir=root, project="popgym", group=group, config=config, settings=settings)
        for i, row in enumerate(results(env, model, returns)):
            run.log(flat(row) | ({"ffm/decay_time_histogram": list(range(10_000))} if i == 0 else {}))
        run.finish()
    wandb.teardown()  # stops wandb's service process: its .wandb files are whole before they are read


@pytest.fixture
def source(tmp_path: Path) -> Path:
    for (env, model, seed), returns in TRIALS.items():
        write_trial(tmp_path, env, model, seed, returns)
    return tmp_path


@pytest.fixture
def full_source(source: Path) -> Path:
    """Every kind of local result: more ppo.py trials, benchmark.py's throughput.csv, pomdp-baselines runs."""
    for (env, model, seed), returns in MORE_TRIALS.items():
        write_trial(source, env, model, seed, returns)
    throughput = [
        ("RayFFM", "train", "cpu", 8, 1024, 10.0, 9.0, 12.0, 600.0, 1000, "glibc-retain"),
        ("RayFFM", "inference", "cpu", 1, 1, 0.05, 0.04, 0.06, math.nan, 1000, "glibc-retain"),
        ("GRU", "train", "cpu", 8, 1024, 20.0, 18.0, 25.0, 650.0, 2000, "glibc-retain"),
        ("GRU", "inference", "cpu", 1, 1, 0.04, 0.03, 0.05, math.nan, 2000, "glibc-retain"),
        ("GRU", "train", "cuda", 8, 1024, 2.0, 1.8, 2.5, 30.0, 2000, "cuda-caching"),
        ("process-baseline", "train", "cpu", 8, 1024, math.nan, math.nan, math.nan, 500.0, 0, "glibc-retain"),
        ("layer/FFM", "train", "cpu", 8, 1024, 5.0, 4.0, 6.0, math.nan, 140132, "glibc-retain"),
    ]
    pd.DataFrame(throughput, columns=THROUGHPUT_COLUMNS).to_csv(source / "throughput_cpu.csv", index=False)
    pd.DataFrame({"goal": ["FFM / GRU"], "ratio": [0.2]}).to_csv(source / "throughput_cpu_goals.csv", index=False)
    ppo_rows = [
        dict.fromkeys(PPO_THROUGHPUT_COLUMNS, 1)
        | {"label": "paper", "model": model, "env": "RepeatPreviousEasy", "learner": learner, "bptt_cutoff": 1024}
        | {"train_batch": 65536, "epochs": 30, "env_steps_per_iteration": 68544, "sampling_s": 10.0}
        | {"learner_s": seconds, "env_steps_per_s": 68544 / (10 + seconds), "machine": "cpu", "date": "2026-12-02"}
        for model, learner, seconds in (
            ("RayFFM", "trimmed", 80.0),
            ("GRU", "trimmed", 200.0),
            ("GRU", "rllib-padded", 2000.0),
        )
    ]
    pd.DataFrame(ppo_rows, columns=PPO_THROUGHPUT_COLUMNS).to_csv(source / "throughput_ppo_cpu.csv", index=False)
    for algo in ("sac", "td3"):
        for memory in ("gru", "ffm"):
            for seed in (0, 1):
                run = source / "pomdp" / "PendulumV" / f"{algo}-{memory}-seed{seed}"
                run.mkdir(parents=True)
                record = {"task": "PendulumV", "algo": algo, "memory": memory, "seed": seed, "config": {}}
                (run / "run.json").write_text(json.dumps(record))
                final = -100.0 * seed - (50.0 if memory == "gru" else 0.0) - (10.0 if algo == "td3" else 0.0)
                progress = {"env_steps": [1000, 2000], "iteration": [1, 2], "eval_return": [-1000.0, final]}
                progress |= {"wall_s": [100.0 + seed, 200.0 + 10 * seed]}
                pd.DataFrame(progress | {"eval_length": [200, 200]}).to_csv(run / "progress.csv", index=False)
    return source


def test_loader_builds_the_tidy_table(source: Path) -> None:
    table = load_popgym([source])
    assert list(table.columns[:8]) == ["env", "base_env", "difficulty", "model", "seed", "step", "return", "mmer"]
    assert len(table) == 11
    ffm = table[(table["model"] == "RayFFM") & (table["seed"] == 1)]
    assert list(ffm["mmer"]) == [-0.4, 0.4, 0.4] and list(ffm["step"]) == [100, 200, 300]
    assert list(ffm["ffm/decay_time/02"]) == [4.0, 8.0, 16.0] and list(ffm["ffm/period/1"]) == [20.0] * 3
    assert table.loc[table["model"] == "BasicMLP", "ffm/period/0"].isna().all()
    assert split_difficulty("StatelessCartPoleHard") == ("StatelessCartPole", "Hard")


def test_wandb_offline_runs_give_the_same_table(source: Path, tmp_path: Path) -> None:
    offline = tmp_path / "offline"
    write_offline_runs(offline, TRIALS, group="experiment")
    write_offline_runs(offline, {("RepeatPreviousEasy", "GRU", 0): [0.5]}, group="another")
    runs = sorted(offline.rglob("offline-run-*/run-*.wandb"))
    assert len(runs) == 5 and runs[0].stat().st_size > BLOCK
    assert len(list(log_records(runs[0]))) > 5

    key = ["env", "model", "seed", "step"]
    local = load_popgym([source]).sort_values(key, ignore_index=True)
    from_wandb = load_popgym([source], wandb=str(offline), group="experiment").sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(from_wandb, local, check_dtype=False)
    assert set(load_popgym([source], wandb=str(offline))["model"]) == {"RayFFM", "BasicMLP", "GRU"}

    out = tmp_path / "figures"
    main(["table", "--wandb", str(offline), "--group", "experiment", "--out", str(out)])
    table = pd.read_csv(out / "popgym_mmer.csv").set_index(["env", "model"])
    assert table.loc[("RepeatPreviousEasy", "RayFFM"), "mmer_mean"] == pytest.approx((0.2 + 0.4) / 2)


class FakeRun:
    """What online_runs reads of a public-API run: config, summary_metrics and scan_history(keys)."""

    def __init__(self, env: str, model: str, seed: int, returns: list[float]) -> None:
        self.config = {"env": env, "memory_model": model, "seed": seed}
        self.rows = [flat(row) | {"_step": i} for i, row in enumerate(results(env, model, returns))]
        self.summary_metrics = self.rows[-1]

    def scan_history(self, keys: list[str]) -> list[dict]:
        return [{key: row[key] for key in keys} for row in self.rows]


class FakeApi:
    """wandb.Api for a project "me/popgym" holding TRIALS; other projects are not found."""

    calls: list = []

    def __init__(self, timeout: int) -> None:
        pass

    def runs(self, path: str, filters: dict | None = None) -> list[FakeRun]:
        self.calls.append((path, filters))
        if path != "me/popgym":
            raise wandb.errors.CommError(f"project {path} not found")
        return [FakeRun(*trial, returns) for trial, returns in TRIALS.items()]


def test_wandb_online_runs_through_the_public_api(source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wandb, "Api", FakeApi)
    key = ["env", "model", "seed", "step"]
    local = load_popgym([source]).sort_values(key, ignore_index=True)
    online = load_popgym([source], wandb="me/popgym", group="experiment").sort_values(key, ignore_index=True)
    pd.testing.assert_frame_equal(online, local, check_dtype=False)
    assert FakeApi.calls == [("me/popgym", {"group": "experiment"})]
    with pytest.raises(
        NoResultsError, match="wandb project 'nobody/nothing' cannot be read .*: project nobody/nothing not found"
    ):
        list(online_runs("nobody/nothing"))


def test_table_and_curves_are_written(source: Path, tmp_path: Path) -> None:
    out = tmp_path / "figures"
    main(["table", "curves", "--source", str(source), "--out", str(out)])
    table = pd.read_csv(out / "popgym_mmer.csv").set_index(["env", "model"])
    assert table.loc[("RepeatPreviousEasy", "RayFFM"), "mmer_mean"] == pytest.approx((0.2 + 0.4) / 2)
    assert table.loc[("RepeatPreviousEasy", "RayFFM"), "mmer_std"] == pytest.approx(math.sqrt(0.02))
    assert table.loc[("RepeatPreviousEasy", "RayFFM"), "seeds"] == 2
    assert table.loc[("RepeatPreviousEasy", "RayFFM"), "steps_per_s_mean"] == pytest.approx(300 / 2.0)  # 3 iterations
    assert table.loc[("RepeatPreviousEasy", "BasicMLP"), "mmer_mean"] == pytest.approx(-0.45)
    assert table.loc[("StatelessCartPoleHard", "RayFFM"), "mmer_mean"] == pytest.approx(0.3)
    assert "| RayFFM" in (out / "popgym_mmer.md").read_text()
    for suffix in ("png", "pdf"):
        assert (out / f"learning_curves.{suffix}").stat().st_size > 1000


def test_curve_tables_plot_beside_live_trial_folders(source: Path, tmp_path: Path) -> None:
    """A finished chunk's committed popgym_curves.csv and another chunk's live trial folders, read together,
    give the same tidy table as all trial folders at once."""
    chunk = tmp_path / "chunk"
    write_trial(chunk, "RepeatFirstEasy", "GRU", 0, [-0.3, 0.1, 0.4])
    tables = tmp_path / "tables"
    main(["table", "--source", str(chunk), "--out", str(tables)])
    together = load_popgym([tables / "popgym_curves.csv", source])
    write_trial(source, "RepeatFirstEasy", "GRU", 0, [-0.3, 0.1, 0.4])
    expected = load_popgym([source])[together.columns]
    key = ["env", "model", "seed", "step"]
    pd.testing.assert_frame_equal(
        together.sort_values(key).reset_index(drop=True), expected.sort_values(key).reset_index(drop=True)
    )
    with pytest.raises(NoResultsError, match="lacks the columns"):
        load_popgym([tables / "popgym_mmer.csv"])


def test_committed_tables_alone_rebuild_every_table(full_source: Path, tmp_path: Path) -> None:
    """The tables that ``all`` writes (the chunks' committed CSVs) are sources in their own right: read back
    without any run folder they give the same tables again, and a pomdp chunk plots beside live runs."""
    first, again = tmp_path / "first", tmp_path / "again"
    main(["all", "--source", str(full_source), "--out", str(tmp_path / "figures"), "--tables", str(first)])
    tables = [first / "popgym_curves.csv", first / "pomdp_curves.csv"]
    tables += [full_source / "throughput_cpu.csv", full_source / "throughput_ppo_cpu.csv"]
    main(["all", "--source", *map(str, tables), "--out", str(tmp_path / "figures-again"), "--tables", str(again)])
    for name in ("popgym_final_mmer.csv", "popgym_mmer.csv", "pomdp_final_return.csv", "pomdp_curves.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(again / name), pd.read_csv(first / name), check_like=True, check_dtype=False
        )
    for name in FIGURE_FILES:
        assert (tmp_path / "figures-again" / f"{name}.png").stat().st_size > 1000, name

    live = tmp_path / "live"
    shutil.copytree(
        full_source / "pomdp" / "PendulumV" / "sac-ffm-seed0", live / "pomdp" / "PendulumV" / "sac-ffm-seed0"
    )
    chunk = load_pomdp([first / "pomdp_curves.csv"])
    chunk = chunk[~((chunk["algo"] == "sac") & (chunk["memory"] == "ffm") & (chunk["seed"] == 0))]
    chunk.to_csv(tmp_path / "pomdp_curves.csv", index=False)
    together = load_pomdp([tmp_path / "pomdp_curves.csv", live])
    key = ["task", "algo", "memory", "seed", "env_steps"]
    pd.testing.assert_frame_equal(
        together.sort_values(key).reset_index(drop=True),
        load_pomdp([full_source]).sort_values(key).reset_index(drop=True),
    )


def tracked(pattern: str) -> list[str]:
    """The files git tracks under ``pattern`` (relative to the repository)."""
    listed = subprocess.run(["git", "ls-files", pattern], cwd=REPO, capture_output=True, text=True, check=True)
    return listed.stdout.split()


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout (a copied working tree)")
def test_the_committed_results_redraw_every_committed_figure(tmp_path: Path) -> None:
    """``python -m plotting all --source results/`` on a fresh clone: every committed figure comes back, byte
    for byte, from the committed tables alone, and so do the whole-grid tables of results/."""
    out, tables = tmp_path / "figures", tmp_path / "tables"
    run = subprocess.run(
        [sys.executable, "-m", "plotting", "all", "--source", "results", "--out", str(out), "--tables", str(tables)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0 and run.stderr == "", run.stderr
    committed = tracked("figures/*.png")
    assert committed, "no committed figure"
    for figure in committed:
        redrawn = out / Path(figure).relative_to("figures")
        assert redrawn.is_file(), f"{figure} was not drawn"
        assert redrawn.read_bytes() == (REPO / figure).read_bytes(), (
            f"{figure} is not what the committed tables draw: python -m plotting all --source results "
            "--out figures --tables results"
        )
    whole_grid = [table for table in tracked("results") if Path(table).parent == Path("results")]
    for table in (table for table in whole_grid if Path(table).name.startswith(("popgym_", "pomdp_"))):
        assert (tables / Path(table).name).read_text() == (REPO / table).read_text(), f"{table} is stale"


def test_pomdp_runs_of_one_memory_are_drawn(full_source: Path, tmp_path: Path) -> None:
    """A chunk's first finished runs may all be of one memory (GRU only), beside a task with both: the figure
    and tables still come."""
    runs = [full_source / "pomdp" / "PendulumV" / f"td3-gru-seed{seed}" for seed in (0, 1)]
    other_task = tmp_path / "runs" / "pomdp" / "PendulumP"
    for memory in ("gru", "ffm"):
        run = shutil.copytree(full_source / "pomdp" / "PendulumV" / f"sac-{memory}-seed0", other_task / memory)
        record = json.loads((run / "run.json").read_text()) | {"task": "PendulumP"}
        (run / "run.json").write_text(json.dumps(record))
    out = tmp_path / "figures"
    main(["pomdp", "--source", *map(str, runs), str(other_task), "--out", str(out)])
    assert (out / "pomdp.png").stat().st_size > 1000
    final = pd.read_csv(out / "pomdp_final_return.csv")
    assert final.groupby("task")["memory"].unique().map(sorted).to_dict() == {
        "PendulumP": ["ffm", "gru"],
        "PendulumV": ["gru"],
    }


def test_a_csv_source_of_no_known_kind_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["all", "--source", str(tmp_path / "my_runs.csv")])
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and "expected results folders or tables named popgym_*.csv" in error
    assert "got " + str(tmp_path / "my_runs.csv") in error


@pytest.mark.parametrize("figures", [["--help"], ["all"]])
def test_plotting_needs_no_rl_stack(figures: list[str], full_source: Path, tmp_path: Path) -> None:
    """python -m plotting draws every figure from result files without importing ray, torch, popgym or models."""
    out = tmp_path / "figures"
    argv = ["plotting", *figures, "--source", str(full_source), "--out", str(out)]
    run = "runpy.run_module('plotting', run_name='__main__', alter_sys=True)"
    loaded = loaded_packages("import runpy", f"sys.argv = {argv!r}", run)
    assert "plotting" in loaded and not loaded & RL_STACK
    drawn = {path.name for path in out.glob("*.png")}
    assert drawn == (set() if figures == ["--help"] else {f"{name}.png" for name in FIGURE_FILES})


def test_every_figure_is_written(full_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out, tables = tmp_path / "figures", tmp_path / "tables"
    main(["all", "--source", str(full_source), "--out", str(out), "--tables", str(tables)])
    for name in FIGURE_FILES:
        for suffix in ("png", "pdf"):
            assert (out / f"{name}.{suffix}").stat().st_size > 1000, name
    again = tmp_path / "again"  # the same results draw the same figures (committed PNGs change only with results)
    main(
        [
            "summary",
            "curves",
            "ablations",
            "--source",
            str(full_source),
            "--out",
            str(again),
            "--tables",
            str(tmp_path / "t2"),
        ]
    )
    for name in ("mmer_summary", "learning_curves", "ablations"):  # the three figures drawn again
        assert (again / f"{name}.png").read_bytes() == (out / f"{name}.png").read_bytes(), name
    assert sorted(path.name for path in tables.iterdir()) == [
        "pomdp_curves.csv",
        "pomdp_final_return.csv",
        "pomdp_return.csv",
        "pomdp_return.md",
        "popgym_curves.csv",
        "popgym_final_mmer.csv",
        "popgym_mmer.csv",
        "popgym_mmer.md",
    ]
    assert not list(out.glob("*.csv"))
    trials = pd.read_csv(tables / "popgym_final_mmer.csv").set_index(["env", "model", "seed"])
    assert len(trials) == len(TRIALS) + len(MORE_TRIALS)
    final = {"step": 400, "mmer": 0.1, "wall_s": 3.0, "steps_per_s": 400 / 3.0}  # time_total_s of iteration 3
    assert trials.loc[("RepeatPreviousEasy", "GRU", 0)].to_dict() == pytest.approx(final)
    returns = pd.read_csv(tables / "pomdp_final_return.csv").set_index(["task", "algo", "memory", "seed"])
    assert len(returns) == 8 and returns.loc[("PendulumV", "td3", "gru", 1), "eval_return"] == -160.0
    assert (returns["env_steps"] == 2000).all()
    summary = pd.read_csv(tables / "pomdp_return.csv").set_index(["task", "algo", "memory"])
    td3_gru = [-60.0, -160.0]  # the fixture's final returns of seeds 0 and 1
    assert summary.loc[("PendulumV", "td3", "gru")].to_dict() == pytest.approx(
        {
            "return_mean": -110.0,
            "return_std": statistics.stdev(td3_gru),
            "seeds": 2,
            "env_steps": 2000,
            "wall_s_mean": 205.0,
        }
    )
    assert "| PendulumV | td3    | gru      |        -110.0 |" in (tables / "pomdp_return.md").read_text()
    printed = capsys.readouterr()
    assert "Final MMER minus BasicMLP's" in printed.out
    # batch reads the committed tables of two runs (results/<run>/<chunk>/), which live trial folders are not
    assert (
        printed.err == "plotting: batch: needs the curve tables of both paper-settings and one of cpu-10x, cpu-10x-all "
        "(results/<run>/<chunk>/)\n"
    )


def test_sources_are_read_together(tmp_path: Path) -> None:
    """An ablation experiment kept apart from its RayFFM reference (ppo.py presets cpu and cpu-ablations)."""
    main_root, ablation_root = tmp_path / "cpu", tmp_path / "cpu-ablations"
    write_trial(main_root, "RepeatPreviousEasy", "RayFFM", 0, [-0.5, 0.2, 0.1])
    write_trial(ablation_root, "RepeatPreviousEasy", "RayFFMNoDecay", 0, [-0.2, 0.0, -0.1])
    out = tmp_path / "figures"
    main(["table", "ablations", "--source", str(main_root), str(ablation_root), "--out", str(out)])
    table = pd.read_csv(out / "popgym_mmer.csv").set_index("model")["mmer_mean"]
    assert table.to_dict() == pytest.approx({"RayFFM": 0.2, "RayFFMNoDecay": 0.0})
    assert (out / "ablations.png").stat().st_size > 1000
    with pytest.raises(SystemExit):
        main(["table", "--source", str(main_root), str(tmp_path / "missing"), "--out", str(out)])


def test_runs_are_aligned_on_one_step_grid_per_env() -> None:
    """Seeds whose iterations end at different env steps meet on a shared grid, each with its last value."""
    steps, mmer = [100, 200, 300, 110, 190, 320], [0.1, 0.2, 0.3, 1.0, 2.0, 3.0]
    table = pd.DataFrame({"env": "E", "model": "A", "seed": [0, 0, 0, 1, 1, 1], "step": steps, "mmer": mmer})
    aligned = align_steps(table, points=5)  # grid 100, 155, 210, 265, 320
    runs = {seed: run.set_index("step")["mmer"].to_dict() for seed, run in aligned.groupby("seed")}
    # 100 is before seed 1's start, 320 past seed 0's end: only the steps both seeds reach are kept
    assert runs[0] == pytest.approx({155.0: 0.1, 210.0: 0.2, 265.0: 0.2})
    assert runs[1] == pytest.approx({155.0: 1.0, 210.0: 2.0, 265.0: 2.0})
    assert list(aligned.columns) == list(table.columns)
    pomdp = table.rename(columns={"env": "task", "step": "env_steps"}).assign(algo="sac", memory="ffm")
    by_task = align_steps(pomdp, points=5, step="env_steps", keys=("task", "algo", "memory", "seed"))
    assert by_task.groupby("seed")["env_steps"].apply(list).to_dict() == {0: [155, 210, 265], 1: [155, 210, 265]}
    other = table.assign(model="B", seed=2, step=[100, 200, 300, 110, 190, 320])  # a model with one seed
    assert len(align_steps(pd.concat([table, other]), points=5).query("model == 'B'")) == 5


def test_figure_numbers(full_source: Path) -> None:
    table = load_popgym([full_source])
    relative = relative_mmer(table).set_index(["env", "model"])["relative"]  # (FFM - model) / |model|
    assert relative.to_dict() == pytest.approx(
        {
            ("RepeatPreviousEasy", "BasicMLP"): (0.3 + 0.45) / 0.45,
            ("RepeatPreviousEasy", "GRU"): (0.3 - 0.1) / 0.1,
            ("RepeatPreviousEasy", "RayFFM_32_104"): (0.3 - 0.2) / 0.2,
            ("StatelessCartPoleHard", "BasicMLP"): (0.3 - 0.2) / 0.2,
        }
    )
    scores = ablation_scores(table)  # only the env that RayFFM and its ablation share
    assert set(scores["env"]) == {"RepeatPreviousEasy"}
    assert scores.groupby("model")["mmer"].mean().to_dict() == pytest.approx({"RayFFM": 0.3, "RayFFMNoDecay": 0.0})

    long = internals(table)
    assert len(long) == 8 * (3 + 2)  # 8 RayFFM iterations x (3 traces + 2 frequencies)
    last = long[(long["env"] == "StatelessCartPoleHard") & (long["step"] == 200)].set_index(["quantity", "unit"])
    assert last.loc[("decay_time", "02"), "value"] == 2.0**3 and last.loc[("period", "1"), "value"] == 20.0

    scales = time_scales(table).set_index(["model", "env", "seed", "step", "time_scale", "unit"])["value"]
    for model in ("RayFFM", "RayFFM_32_104"):
        for i, step in enumerate((100, 200, 300)):  # the fixture logs decay_time 2 ** (trace + i), period 10 (unit + 1)
            a = math.log(0.01) / 2.0 ** (2 + i)  # trace 02's decay rate, back from its time to 1%
            key = (model, "RepeatPreviousEasy", 0, step)
            assert scales[(*key, "t_alpha", "02")] == pytest.approx(math.log(0.1) / a)  # the authors' t_alpha
            assert scales[(*key, "t_omega", "1")] == 20.0
    far = time_scales(table.assign(**{"ffm/decay_time/00": 1e9}))  # t_alpha 5e8 steps: drawn at the clip
    assert scales.between(0, CLIP).all() and far["value"].max() == CLIP

    rows = model_rows(load_throughput([full_source / "throughput_cpu.csv"])).set_index(["model", "mode", "device"])
    assert len(rows) == 5  # layer/ and process-baseline rows left out
    assert rows.loc[("RayFFM", "train", "cpu"), "model_mem_mb"] == 100.0  # 600 - the bare process's 500
    assert rows.loc[("GRU", "train", "cuda"), "model_mem_mb"] == 30.0  # no baseline on CUDA
    assert rows.loc[("GRU", "train", "cuda"), "setting"] == "cuda, B=8"

    pomdp = load_pomdp([full_source])
    assert len(pomdp) == 16 and list(pomdp.columns[:4]) == ["task", "algo", "memory", "seed"]
    final = pomdp[pomdp["env_steps"] == 2000].groupby(["algo", "memory"])["eval_return"].mean()
    assert final[("td3", "gru")] == (-60.0 - 160.0) / 2 and final[("sac", "ffm")] == -50.0


def test_missing_or_empty_source_is_a_clear_message(tmp_path: Path) -> None:
    for source in (tmp_path / "nowhere", tmp_path):
        result = subprocess.run(
            [sys.executable, "-m", "plotting", "all", "--source", str(source)], cwd=REPO, capture_output=True, text=True
        )
        assert result.returncode == 1 and result.stderr.startswith("plotting: ") and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["pomdp"], "pomdp: no pomdp-baselines runs (run.json and progress.csv) under"),
        (["throughput"], "throughput: no throughput*.csv of benchmark.py found"),
        (["throughput", "--throughput", "missing.csv"], "throughput: throughput table missing.csv does not exist"),
        (["ablations"], "ablations: needs results of RayFFM and of an ablation"),
        (["curves", "--models", "LSTM"], "curves: no results of model LSTM"),
        (["table", "--wandb", "WRONG-FOLDER"], "table: wandb project 'WRONG-FOLDER'"),
    ],
)
def test_a_missing_figure_source_is_one_line_and_status_1(
    source: Path, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, arguments, message
) -> None:
    monkeypatch.setattr(wandb, "Api", FakeApi)
    with pytest.raises(SystemExit) as exit_:
        main([*arguments, "--source", str(source), "--out", str(tmp_path / "figures")])
    error = capsys.readouterr().err
    assert exit_.value.code == 1 and error.startswith(f"plotting: {message}") and error.count("\n") == 1


def test_all_skips_what_has_no_results(source: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    main(["all", "--source", str(source), "--out", str(tmp_path / "figures")])  # no SystemExit: some were made
    skipped = capsys.readouterr().err.splitlines()
    skipped_figures = sorted(line.split(":")[1].strip() for line in skipped)
    assert skipped_figures == ["ablations", "batch", "by-env", "init", "pomdp", "ppo", "throughput"]
    assert set(FIGURES) == {
        "table",
        "summary",
        "curves",
        "ablations",
        "throughput",
        "ppo",
        "pomdp",
        "interpretability",
        "init",
        "timescales",
        "batch",
        "gaps",
        "by-env",
    }


def test_memory_gaps_and_the_required_gap(source: Path, capsys: pytest.CaptureFixture) -> None:
    main(["gaps", "--source", str(source)])
    assert "| RayFFM" in capsys.readouterr().out
    main(["gaps", "--source", str(source), "--require-gap", "0.5"])  # RayFFM: 0.3 - (-0.45) = 0.75 on one env
    with pytest.raises(SystemExit, match="RayFFM beat BasicMLP by less than 1.0 on every env"):
        main(["gaps", "--source", str(source), "--require-gap", "1.0"])
    with pytest.raises(SystemExit):
        main(["gaps", "--source", str(source), "--baseline", "LSTM"])
    assert "plotting: gaps: baseline 'LSTM' has no results" in capsys.readouterr().err


def batch_curves(
    root: Path, run: str, chunk: str, seeds: range, iterations: int, steps: int, env: str = "RepeatPreviousEasy"
) -> Path:
    """A committed curve table results/<run>/<chunk>/popgym_curves.csv: RayFFM's MMER is step / 1e6 (cpu-10x
    runs) or step / 2e6 (paper-settings) plus seed / 100, the GRU's twice that; seed s runs 7 s steps later."""
    rate = 2e6 if run == "paper-settings" else 1e6
    rows = [
        {"env": env, "base_env": env.removesuffix("Easy"), "difficulty": "Easy", "model": model}
        | {"seed": seed, "step": step, "return": 0.0, "mmer": factor * (step / rate + seed / 100), "wall_s": 1.0}
        for model, factor in (("RayFFM", 1), ("GRU", 2))
        for seed in seeds
        for step in (i * steps + 7 * seed for i in range(1, iterations + 1))
    ]
    path = root / run / chunk / "popgym_curves.csv"
    path.parent.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_batch_compares_the_two_runs_at_equal_steps_and_at_the_end(tmp_path: Path) -> None:
    tables = [
        batch_curves(tmp_path, "cpu-10x", "RepeatPreviousEasy", range(3), iterations=150, steps=1638),
        batch_curves(tmp_path, "paper-settings", "RepeatPreviousEasy-seed0", range(1), iterations=38, steps=68544),
        batch_curves(tmp_path, "paper-settings", "RepeatPreviousEasy-seed1", range(1, 2), iterations=38, steps=68544),
    ]
    out = tmp_path / "figures"
    main(["batch", "--source", *map(str, tables), "--out", str(out)])
    assert (out / "batch.png").stat().st_size > 1000
    ranking = pd.read_csv(out / "paper_settings_mmer.csv").set_index(["at", "run", "model"])
    # the budget is 150 x 1,638 steps, seed 0's last (the fewest of any cpu-10x seed): each trial's first
    # iteration that reaches it (the final MMER's rule), the last of every cpu-10x trial, the 4th of a paper one
    scaled_steps = [150 * 1638 + 7 * seed for seed in range(3)]
    paper_steps = [4 * 68544 + 7 * seed for seed in (0, 1)]
    for model, factor in (("RayFFM", 1), ("GRU", 2)):
        scaled = [factor * (step / 1e6 + seed / 100) for seed, step in enumerate(scaled_steps)]
        paper = [factor * (step / 2e6 + seed / 100) for seed, step in enumerate(paper_steps)]
        paper_end = [factor * ((38 * 68544 + 7 * seed) / 2e6 + seed / 100) for seed in (0, 1)]
        for at, run, values in (
            ("equal steps", "cpu-10x", scaled),
            ("equal steps", "paper-settings", paper),
            ("end", "paper-settings", paper_end),
        ):
            row = ranking.loc[(at, run, model)]
            assert row["mean"] == pytest.approx(statistics.mean(values)), (at, run, model)
            assert row["std"] == pytest.approx(statistics.stdev(values)) and row["seeds"] == len(values)
    with pytest.raises(SystemExit):
        main(["batch", "--source", str(tables[0]), "--out", str(out)])


def test_batch_takes_each_envs_scaled_down_curves_from_the_first_run_that_has_them(tmp_path: Path) -> None:
    """RepeatPrevious's from cpu-10x although cpu-10x-all has it too; a second env's from cpu-10x-all; an env of
    the paper run with neither is one clear error."""
    tables = [
        batch_curves(tmp_path, "cpu-10x", "RepeatPreviousEasy", range(3), iterations=150, steps=1638),
        batch_curves(tmp_path, "cpu-10x-all", "RepeatPreviousEasy", range(3), iterations=10, steps=1638),
        batch_curves(
            tmp_path, "cpu-10x-all", "CountRecallEasy", range(3), iterations=150, steps=1640, env="CountRecallEasy"
        ),
        batch_curves(
            tmp_path, "cpu-10x-all", "AutoencodeEasy", range(3), iterations=150, steps=1640, env="AutoencodeEasy"
        ),
        batch_curves(tmp_path, "paper-settings", "RepeatPreviousEasy-seed0", range(1), iterations=38, steps=68544),
        batch_curves(
            tmp_path,
            "paper-settings",
            "CountRecallEasy-seed0",
            range(1),
            iterations=38,
            steps=68544,
            env="CountRecallEasy",
        ),
    ]
    curves = load_runs(tables)
    scaled = curves[curves["run"] == "cpu-10x"].groupby("env")["step"].max()
    assert scaled.to_dict() == {"RepeatPreviousEasy": 150 * 1638 + 14, "CountRecallEasy": 150 * 1640 + 14}
    assert set(curves["run"]) == {"cpu-10x", "paper-settings"}
    out = tmp_path / "figures"
    main(["batch", "--source", *map(str, tables), "--out", str(out)])
    ranking = pd.read_csv(out / "paper_settings_mmer.csv")
    assert sorted(ranking["env"].unique()) == ["CountRecallEasy", "RepeatPreviousEasy"]
    assert len(ranking) == 2 * 2 * 2 * 2  # at, run, env, model
    with pytest.raises(NoResultsError, match=r"cpu-10x, cpu-10x-all .* for \['CountRecallEasy'\]"):
        load_runs([tables[0], *tables[4:]])


@pytest.mark.parametrize(
    ("first", "second", "word"),
    [
        ((0.5, 0.1), (0.45, 0.05), TIED),  # 0.05 apart, spread 0.1 (the larger std)
        ((0.5, 0.1), (0.4, 0.02), TIED),  # exactly the spread: tied
        ((0.5, 0.1), (0.35, 0.02), INCONCLUSIVE),  # 1.5 spreads
        ((0.5, 0.1), (0.3, 0.02), INCONCLUSIVE),  # exactly twice: not beyond it
        ((0.5, 0.1), (0.25, 0.02), WON),
        ((0.25, 0.02), (0.5, 0.1), BEHIND),
        ((1.0, 0.0), (1.0, 0.0), TIED),  # both at the maximum, no spread
        ((1.0, 0.0), (0.9, 0.0), WON),
        ((0.5, math.nan), (0.1, 0.01), INCONCLUSIVE),  # one seed: no spread to read
    ],
)
def test_the_verdict_rule(first: tuple, second: tuple, word: str) -> None:
    assert verdict(*first, *second) == word
    assert seeds_spread(first[1], second[1]) == max(first[1], second[1]) or math.isnan(first[1])


def test_a_claims_verdict_counts_its_comparisons() -> None:
    assert claim([WON, WON]) == WON and claim([BEHIND]) == BEHIND and claim([INCONCLUSIVE] * 2) == INCONCLUSIVE
    assert claim([TIED, TIED, TIED, TIED]) == INCONCLUSIVE  # nothing separated: neither supported nor contradicted
    assert claim([BEHIND, TIED, TIED]) == "tied on 2, behind on 1"
    assert claim([INCONCLUSIVE, WON, WON, WON, INCONCLUSIVE]) == "won on 3, inconclusive on 2"
    with pytest.raises(ValueError, match="expected verdicts among"):
        claim(["better"])
    with pytest.raises(ValueError):
        claim([])


def test_the_rerun_comparison_reads_by_the_rule() -> None:
    """docs/results.md's re-run comparison marks a change "outside" the seeds' spread exactly where the rule does
    not say tied."""
    from plotting import docs

    table = docs.rerun_comparison(REPO / "results")
    for row in table.itertuples():
        word = verdict(row.mmer_mean_after, row.mmer_std_after, row.mmer_mean_before, row.mmer_std_before)
        assert row.within == (word == TIED)
