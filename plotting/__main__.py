"""python -m plotting <figure...|all> --source results/ --out figures/

Figures (PNG and PDF in --out) and tables:
  table             popgym_mmer.csv / .md: mean final MMER per model and env; popgym_final_mmer.csv per trial;
                    popgym_curves.csv: every iteration (FFM's internals too), readable back as a --source
  summary           figure 1: FFM's MMER relative to every other model per env, mean MMER per model
  by-env            FFM against the GRU per env in the authors' units (normalized MMER, % of the GRU's), the
                    verdict per env by the one rule (plotting.verdict) and their counts, both models' mean
                    normalized MMER over the envs with the spread over seeds
  curves            figure 2: MMER learning curves per env (without the ablations unless --models names them)
  ablations         figure 3: mean MMER of RayFFM and each ablation
  throughput        figure 4: train time, inference latency, peak memory, parameters (benchmark.py's CSV)
  pomdp             figure 5: pomdp-baselines' evaluation returns, GRU vs FFM, SAC and TD3 (+ pomdp_return.csv / .md:
                    mean and std over seeds; pomdp_final_return.csv per run; pomdp_curves.csv: every evaluation,
                    readable back as a --source)
  ppo               PPO's cost per model at the paper's settings: sampling and learner seconds per 1,000 env steps
                    (benchmark_ppo.py's throughput_ppo*.csv under --source)
  interpretability  figure 6: RayFFM's decay times and oscillation periods over training
  init              the discussion: MMER of FFM-32,104 (RayFFM_32_104), FFM-1,1024 (RayFFM) and the GRU per env
  timescales        the discussion: FFM's learned t_alpha and t_omega over training, with the actor and critic modes
  batch             RayFFM and the GRU at the paper's PPO batch against the cpu-10x preset's, at equal env steps and
                    to the end (+ paper_settings_mmer.csv: MMER of each at both); committed tables only
  gaps              each model's final MMER minus the memoryless baseline's (printed; --require-gap checks it)
POPGym results come from ppo.py's trial folders under --source (and curve tables given there), or from wandb
with --wandb. One --source folder holding the committed tables (results/ of this repository) is read by figure
set (plotting/committed.py): each set's figures go to --out/<set>/, as figures/<set>/ in git, and its tables
to --tables (default: the set's --out folder). With "all", figures whose results are missing are skipped (and
named); the exit status is 1 only if none was made.
"""

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from plotting.by_env import by_env_figure
from plotting.committed import committed_sets
from plotting.discussion import init_curves, time_scales_figure
from plotting.interpretability import interpretability
from plotting.load import TABLE_PREFIXES, is_table, load_popgym
from plotting.paper_settings import TABLE as BATCH_TABLE
from plotting.paper_settings import batch_figure
from plotting.pomdp import load_pomdp, pomdp_figure, write_tables
from plotting.popgym_figures import ablations, learning_curves, memory_gaps, mmer_summary, write_table
from plotting.ppo_cost import load_ppo_throughput, ppo_cost_figure, ppo_files
from plotting.source import NoResultsError
from plotting.throughput import load_throughput, throughput_figure, throughput_files
from results_schema import FFM_ABLATIONS


class RequirementFailed(RuntimeError):
    """A check asked for on the command line (--require-gap) does not hold."""


def table(results: pd.DataFrame, args: argparse.Namespace) -> str:
    wide = write_table(results, args.tables)
    return f"Final MMER (mean over seeds):\n{wide.to_markdown(floatfmt='.3f')}\nwrote {args.tables / 'popgym_mmer.csv'}"


def curves(results: pd.DataFrame, args: argparse.Namespace) -> str:
    shown = results if args.models else results[~results["model"].isin(FFM_ABLATIONS)]
    if shown.empty:
        raise NoResultsError("only ablations have results (name them with --models)")
    return wrote(learning_curves(shown, args.out))


def gaps(results: pd.DataFrame, args: argparse.Namespace) -> str:
    differences = memory_gaps(results, args.baseline)
    print(f"Final MMER minus {args.baseline}'s:\n{differences.to_markdown(floatfmt='+.3f')}")
    short = (
        differences.index[differences.max(axis=1) < args.require_gap].tolist() if args.require_gap is not None else []
    )
    if short:
        raise RequirementFailed(f"{', '.join(short)} beat {args.baseline} by less than {args.require_gap} on every env")
    return ""


def throughput(args: argparse.Namespace) -> str:
    return wrote(throughput_figure(load_throughput(args.throughput or throughput_files(args.source)), args.out))


def ppo(args: argparse.Namespace) -> str:
    return wrote(ppo_cost_figure(load_ppo_throughput(ppo_files(args.source)), args.out))


def pomdp(args: argparse.Namespace) -> str:
    table = load_pomdp(args.source)
    return wrote(pomdp_figure(table, args.out)) + f"; wrote {', '.join(map(str, write_tables(table, args.tables)))}"


def batch(args: argparse.Namespace) -> str:
    return wrote(batch_figure(args.source, args.out, args.tables)) + f"; wrote {args.tables / BATCH_TABLE}"


def wrote(path: Path) -> str:
    return f"wrote {path} (and .pdf)"


POPGYM: dict[str, Callable[[pd.DataFrame, argparse.Namespace], str]] = {
    "table": table,
    "summary": lambda results, args: wrote(mmer_summary(results, args.out)),
    "by-env": lambda results, args: wrote(by_env_figure(results, args.out)),
    "curves": curves,
    "ablations": lambda results, args: wrote(ablations(results, args.out)),
    "interpretability": lambda results, args: wrote(interpretability(results, args.out)),
    "init": lambda results, args: wrote(init_curves(results, args.out)),
    "timescales": lambda results, args: wrote(time_scales_figure(results, args.out)),
    "gaps": gaps,
}
OTHERS: dict[str, Callable[[argparse.Namespace], str]] = {
    "throughput": throughput,
    "ppo": ppo,
    "pomdp": pomdp,
    "batch": batch,
}
FIGURES = (
    *("table", "summary", "curves", "ablations", "throughput", "ppo", "pomdp", "interpretability", "init"),
    *("timescales", "batch", "gaps", "by-env"),
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figures", nargs="+", choices=(*FIGURES, "all"), help="what to draw")
    parser.add_argument(
        "--source",
        type=Path,
        nargs="+",
        default=[Path("results")],
        help="local results, read together: roots (ppo.py experiments, pomdp/, throughput*.csv) and tables "
        "(popgym_curves.csv, pomdp_curves.csv, throughput*.csv)",
    )
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder")
    parser.add_argument("--tables", type=Path, help="folder for the CSV/Markdown tables (default: --out)")
    parser.add_argument(
        "--wandb",
        metavar="PROJECT|FOLDER",
        help="POPGym results from wandb instead: an offline folder (holding wandb/offline-run-*), or a project "
        "[entity/]project read online through wandb's public API",
    )
    parser.add_argument("--group", help="with --wandb: only the runs of this experiment (ppo.py --name)")
    parser.add_argument("--throughput", type=Path, nargs="+", help="benchmark.py CSVs (default: under --source)")
    parser.add_argument("--models", help="comma list: only these models in the POPGym figures")
    parser.add_argument("--envs", help="comma list: only these envs in the POPGym figures")
    parser.add_argument("--baseline", default="BasicMLP", help="memoryless model the gaps are measured from")
    parser.add_argument(
        "--require-gap",
        type=float,
        default=None,
        help="gaps: fail unless every model beats the baseline by at least this much on some env",
    )
    args = parser.parse_args(argv)
    unknown = [
        str(source) for source in args.source if source.suffix == ".csv" and not is_table(source, TABLE_PREFIXES)
    ]
    if unknown:
        parser.error(
            f"--source: expected results folders or tables named {', '.join(p + '*.csv' for p in TABLE_PREFIXES)}; "
            f"got {', '.join(unknown)}"
        )
    return args


def popgym_results(args: argparse.Namespace) -> pd.DataFrame:
    """The tidy table of the chosen source, restricted to --models and --envs."""
    results = load_popgym(args.source, args.wandb, args.group)
    for column, chosen in (("model", args.models), ("env", args.envs)):
        if chosen:
            names = [name.strip() for name in chosen.split(",") if name.strip()]
            results = results[results[column].isin(names)]
            if results.empty:
                raise NoResultsError(f"no results of {column} {', '.join(names)}")
    return results


def draw(name: str, results: pd.DataFrame | NoResultsError, args: argparse.Namespace) -> str:
    """Make one figure or table; its report ('' if it printed its own)."""
    if name in OTHERS:
        return OTHERS[name](args)
    if isinstance(results, NoResultsError):
        raise results
    return POPGYM[name](results, args)


def drawn(args: argparse.Namespace, chosen: list[str]) -> tuple[int, dict[str, list[str]], str]:
    """Make the chosen figures and tables: how many were made, the figures each missing-results message
    stopped, and a failed requirement ('' if none)."""
    results: pd.DataFrame | NoResultsError = NoResultsError("no POPGym figure chosen")
    if any(name in POPGYM for name in chosen):
        try:
            results = popgym_results(args)
        except NoResultsError as error:
            results = error
    problems: dict[str, list[str]] = {}  # message -> the figures it stopped
    made, failed = 0, ""
    for name in chosen:
        try:
            report = draw(name, results, args)
        except NoResultsError as error:
            problems.setdefault(str(error), []).append(name)
            continue
        except RequirementFailed as error:
            report, failed = "", str(error)
        made += 1
        if report:
            print(report)
    return made, problems, failed


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    wanted = set(FIGURES) if "all" in args.figures else set(args.figures)
    sets = committed_sets(args.source) if args.wandb is None else []
    if sets:  # one results root holding the committed tables: each figure set into its own folder
        runs = []
        for figure_set, tables in sets:
            out = args.out / figure_set.folder
            print(f"{figure_set.folder}: {len(tables)} committed tables under {args.source[0]} -> {out}")
            chosen = [name for name in figure_set.figures if name in wanted]
            runs.append((vars(args) | {"source": tables, "out": out, "tables": args.tables or out}, chosen))
    else:
        runs = [(vars(args) | {"tables": args.tables or args.out}, [name for name in FIGURES if name in wanted])]
    made, problems, failed = 0, {}, ""
    for settings, chosen in runs:
        run_made, run_problems, run_failed = drawn(argparse.Namespace(**settings), chosen)
        made, failed = made + run_made, failed or run_failed
        for message, names in run_problems.items():
            problems.setdefault(message, []).extend(names)
    for message, names in problems.items():
        print(f"plotting: {', '.join(names)}: {message}", file=sys.stderr)
    if failed:
        sys.exit(f"plotting: {failed}")
    if problems and (made == 0 or "all" not in args.figures):
        sys.exit(1)


if __name__ == "__main__":
    main()
