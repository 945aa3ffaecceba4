"""What git keeps of results/: the compact tables committed on purpose, never the raw experiment folders.

Experiments too long for one session run in chunks whose tables (results/<run>/<chunk>/popgym_*.csv,
pomdp_*.csv) are committed as each chunk ends; the trial folders beside them must stay out of git.
"""

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

KEPT = [
    "results/popgym_mmer.csv",
    "results/popgym_mmer.md",
    "results/throughput_cpu.csv",
    "results/cpu/RepeatFirstEasy/popgym_curves.csv",
    "results/cpu/RepeatFirstEasy/popgym_final_mmer.csv",
    "results/cpu/RepeatFirstEasy/popgym_mmer.md",
    "results/cpu-10x/NoisyPositionOnlyCartPoleEasy/popgym_mmer.csv",
    "results/pomdp-sac/Pendulum-V/pomdp_curves.csv",
    "results/before-rerun/cpu/RepeatFirstEasy/popgym_mmer.csv",
]
IGNORED = [
    "results/popgym_curves.csv",  # the chunks' curves merged: they are committed already
    "results/pomdp_curves.csv",
    "results/cpu/settings.json",
    "results/cpu/ray.log",
    "results/cpu/RepeatFirstEasy-GRU-0/progress.csv",  # a trial folder of an unchunked run beside the chunks
    "results/cpu/RepeatFirstEasy-GRU-0/result.json",
    "results/cpu-RepeatFirstEasy/RepeatFirstEasy-GRU-0/progress.csv",
    "results/cpu-RepeatFirstEasy/RepeatFirstEasy-GRU-0/checkpoint_000015/module_state.pt",
    "results/pomdp/Pendulum-V/sac-gru-seed0/progress.csv",
    "results/demo/PositionOnlyCartPoleEasy-GRU-0/params.json",
    "results/before-rerun/cpu/RepeatFirstEasy/popgym_curves.csv",  # only the summary of a replaced run
]


def ignored(paths: list[str]) -> set[str]:
    """The paths among ``paths`` that the repository's .gitignore leaves out."""
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=REPO,
        input="\n".join(paths),
        capture_output=True,
        text=True,
    )
    if result.returncode not in (0, 1):  # 1: none of them is ignored
        pytest.fail(f"git check-ignore failed: {result.stderr}")
    return set(result.stdout.split())


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout (a copied working tree)")
def test_chunk_tables_are_kept_and_trial_folders_are_not() -> None:
    assert ignored(KEPT) == set()
    assert ignored(IGNORED) == set(IGNORED)
