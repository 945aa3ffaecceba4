"""Re-run one committed POPGym trial and compare its learning curve with the committed one.

    python scripts/reproduce.py --run cpu --env RepeatFirstEasy --model RayFFM --seed 0          # at its commit
    python scripts/reproduce.py --run cpu --env RepeatFirstEasy --model RayFFM --seed 0 --head   # at HEAD
    make reproduce RUN=cpu ENV=RepeatFirstEasy MODEL=RayFFM SEED=0 [HEAD=1]

By default the trial runs at the commit that results/README.md records for its table (the commit column), in a
temporary git worktree of that commit (its own `ffm` package first on the path), with the run's preset
(``ppo.py --preset RUN``, or the preset's settings as flags where that commit's ppo.py predates it), and must
repeat the committed curve: every iteration's env steps, and its MMER to the 6 significant digits the curve table
keeps ("identical"), or the report names the first iteration that differs.
With ``--head`` it runs at this checkout instead, where the code may have changed since: its final MMER is then
compared with the committed seeds' spread (``plotting.verdict``'s: the std over the committed seeds). The
trial's own folder is left under --out (default: a temporary folder) for a look at it.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from plotting.load import load_popgym  # noqa: E402
from plotting.popgym_figures import final_mmer  # noqa: E402

RESULTS = REPO / "results"
HASH = re.compile(r"\b[0-9a-f]{7,40}\b")
CURVE_DIGITS = 1e-5  # popgym_curves.csv keeps 6 significant digits: a repeated curve agrees to this relative error


def committed_curves(run: str, root: Path = RESULTS) -> pd.DataFrame:
    """Every committed iteration of a run, from results/<run>/<chunk>/popgym_curves.csv."""
    tables = sorted((root / run).glob("*/popgym_curves.csv"))
    if not tables:
        raise SystemExit(f"--run: expected a run with committed chunk tables under {root}, got {run!r}")
    return load_popgym(tables)


def trial_curve(curves: pd.DataFrame, env: str, model: str, seed: int) -> pd.DataFrame:
    """One trial's curve (step, mmer per iteration) from a run's curves; empty if the run has no such trial."""
    trial = curves[(curves["env"] == env) & (curves["model"] == model) & (curves["seed"] == seed)]
    return trial[["step", "mmer"]].sort_values("step").reset_index(drop=True)


def committed_curve(curves: pd.DataFrame, run: str, env: str, model: str, seed: int) -> pd.DataFrame:
    """The committed curve of one trial of a run's curves; one clear error naming the run's trials if it has
    no such trial."""
    trial = trial_curve(curves, env, model, seed)
    if trial.empty:
        have = curves[["env", "model", "seed"]].drop_duplicates().astype(str).agg("-".join, axis=1)
        raise SystemExit(f"no committed trial {env}-{model}-{seed} in run {run}; it has: {', '.join(sorted(have))}")
    return trial


def committed_seeds(curves: pd.DataFrame, env: str, model: str) -> pd.Series:
    """The final MMER of every seed of the model on the env in a run's curves."""
    final = final_mmer(curves)
    return final[(final["env"] == env) & (final["model"] == model)].set_index("seed")["mmer"]


def chunk_matches(template: str, env: str, seed: int) -> bool:
    """Whether a results/README.md chunk folder (``<env>``, ``RepeatPreviousEasy-seed<S>``: each ``<...>`` any
    text) can hold the trial: its folder is the env or ``ENV-seedS``."""
    pattern = "".join(".+" if part.startswith("<") else re.escape(part) for part in re.split(r"(<[^>]*>)", template))
    return any(re.fullmatch(pattern, folder) for folder in (env, f"{env}-seed{seed}"))


def recorded_commit(run: str, env: str, model: str, seed: int, readme: Path = RESULTS / "README.md") -> str:
    """The commit results/README.md's commit column records for the trial: the row of the run's chunks that
    can hold it (first cell `run/<...>/`, ``chunk_matches``), and in its cell the one commit, or the part of
    it that names the env, the seed ("seed S") or the model, else its first part (the run's own commit)."""
    for line in readme.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        chunks = re.findall(rf"`{re.escape(run)}/([^`]*<[^`]*>)/`", cells[0]) if len(cells) > 1 else []
        if not any(chunk_matches(chunk, env, seed) for chunk in chunks):
            continue
        parts = [part for part in re.split(r"[;,]", cells[-1]) if HASH.search(part)]
        named = [part for part in parts if re.search(rf"\b({re.escape(env)}|seed {seed}|{re.escape(model)})\b", part)]
        return HASH.search((named or parts)[0]).group()
    raise SystemExit(
        f"results/README.md records no commit for {env}-{model}-{seed} of run {run!r} (a row whose first cell is "
        f"`{run}/<...>/`, its chunk folder {env} or {env}-seed{seed})"
    )


def checkout_environ(checkout: Path) -> dict[str, str]:
    """This environment with the checkout's own ffm package and modules first on the path."""
    return os.environ | {"PYTHONPATH": os.pathsep.join([str(checkout / "standalone"), str(checkout)])}


def preset_of(run: str) -> str:
    """The ppo.py preset a run was made with: the run's own name, or the longest preset its name starts with
    (cpu-linear-attention-dot: cpu, with --models LinearAttentionDot)."""
    from ppo import PRESETS

    named = [preset for preset in PRESETS if run == preset or run.startswith(f"{preset}-")]
    if not named:
        raise SystemExit(f"--run: expected a run made with a ppo.py preset ({', '.join(PRESETS)}), got {run!r}")
    return max(named, key=len)


def preset_arguments(checkout: Path, preset: str, environ: Mapping[str, str]) -> list[str]:
    """``--preset PRESET`` where the checkout's ppo.py has the preset; where it was added later (cpu-10x-all,
    whose runs are recorded at 7122e63, before it existed), this checkout's preset as flags that ppo.py takes."""
    known = [sys.executable, "-c", "import sys, ppo; sys.exit(sys.argv[1] not in ppo.PRESETS)", preset]
    if subprocess.run(known, cwd=checkout, env=environ).returncode == 0:
        return ["--preset", preset]
    from ppo import PRESETS

    chosen_per_trial = ("models", "experiment", "samples", "name")
    return [f"--{flag}={value}" for flag, value in PRESETS[preset].items() if flag not in chosen_per_trial]


def run_trial(checkout: Path, run: str, env: str, model: str, seed: int, out: Path) -> pd.DataFrame:
    """One trial with ppo.py of ``checkout`` (its ffm first on the path) and the run's preset; its curve."""
    ppo = (checkout / "ppo.py").read_text()
    choose = ["--seeds", str(seed)] if "POPGYM_SEEDS" in ppo else []  # older ppo.py: seeds 0..samples-1 all run
    environ = checkout_environ(checkout)
    command = [sys.executable, "ppo.py", *preset_arguments(checkout, preset_of(run), environ)]
    command += ["--experiment", env, "--models", model, "--samples", str(seed + 1), *choose]
    command += ["--storage", str(out), "--name", "reproduce"]
    subprocess.run(command, cwd=checkout, env=environ, check=True)
    return trial_curve(load_popgym([out / "reproduce"]), env, model, seed)


def compare(committed: pd.DataFrame, rerun: pd.DataFrame) -> str:
    """ "identical" when the re-run has the committed iterations, env steps and MMER (to the curve table's
    precision); else where they first differ."""
    for i, (old, new) in enumerate(zip(committed.itertuples(), rerun.itertuples(), strict=False)):
        if old.step != new.step or abs(old.mmer - new.mmer) > CURVE_DIGITS * max(1.0, abs(old.mmer)):
            return (
                f"differs from iteration {i + 1}: committed {old.step:,.0f} env steps, MMER {old.mmer:.6g}; "
                f"re-run {new.step:,.0f} env steps, MMER {new.mmer:.6g}"
            )
    if len(committed) != len(rerun):
        return f"differs in length: {len(committed)} committed iterations, {len(rerun)} re-run"
    return f"identical: {len(committed)} iterations, final MMER {committed['mmer'].iloc[-1]:.6g}"


def within_spread(final: float, seeds: pd.Series, seed: int) -> str:
    """The re-run's final MMER against the committed trial's and the committed seeds' spread (their std)."""
    spread, old = seeds.std(), seeds[seed]
    word = "within" if abs(final - old) <= spread else "outside"
    return (
        f"final MMER {final:.4f} against the committed {old:.4f}: {word} the seeds' spread "
        f"({spread:.4f}, the std of the {len(seeds)} committed seeds)"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="a run with committed chunk tables: results/RUN/")
    parser.add_argument("--env", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--head", action="store_true", help="run at this checkout, not at the recorded commit")
    parser.add_argument("--out", type=Path, help="where the trial's folder goes (default: a temporary folder)")
    args = parser.parse_args(argv)
    curves = committed_curves(args.run)
    committed = committed_curve(curves, args.run, args.env, args.model, args.seed)
    out = args.out or Path(tempfile.mkdtemp(prefix="reproduce-"))
    if args.head:
        rerun = run_trial(REPO, args.run, args.env, args.model, args.seed, out)
        seeds = committed_seeds(curves, args.env, args.model)
        print(f"{args.env}-{args.model}-{args.seed} at HEAD: {within_spread(rerun['mmer'].iloc[-1], seeds, args.seed)}")
        return
    commit = recorded_commit(args.run, args.env, args.model, args.seed)
    worktree = Path(tempfile.mkdtemp(prefix=f"reproduce-{commit}-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(worktree), commit], cwd=REPO, check=True)
    try:
        rerun = run_trial(worktree, args.run, args.env, args.model, args.seed, out)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(worktree)], cwd=REPO, check=True)
    print(f"{args.env}-{args.model}-{args.seed} at {commit}: {compare(committed, rerun)} (trial folder: {out})")


if __name__ == "__main__":
    main()
