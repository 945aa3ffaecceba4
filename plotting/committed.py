"""The committed figures and the committed tables under results/ that each is drawn from.

``python -m plotting all --source results/`` reads one results root this way: each figure set takes the
tables its patterns name under the root (the chunks' tables, results/README.md) and draws its figures into
``--out/<folder>``, as ``figures/<folder>/`` holds them in git. Experiments are kept apart: the ten-times-budget
trials share env, model and seed with the ``cpu`` preset's, so they cannot be read as one table.
"""

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class FigureSet:
    """Figures drawn together from one experiment's committed tables."""

    folder: str  # under --out (figures/<folder>/ in git)
    patterns: tuple[str, ...]  # the tables, as globs under the results root
    figures: tuple[str, ...]  # what "all" draws here (plotting.__main__.FIGURES names)

    def tables(self, root: Path) -> list[Path]:
        """The committed tables of this set under ``root``, sorted."""
        return sorted(path for pattern in self.patterns for path in root.glob(pattern))


FIGURE_SETS = (
    FigureSet(
        "cpu",
        (
            "cpu/*/popgym_curves.csv",
            "cpu-ablations/*/popgym_curves.csv",
            "pomdp-*/*/pomdp_curves.csv",
            "throughput_cpu.csv",
            "throughput_ppo_cpu.csv",
        ),
        ("table", "summary", "curves", "ablations", "throughput", "ppo", "pomdp", "interpretability", "gaps"),
    ),
    FigureSet("cpu-10x", ("cpu-10x/*/popgym_curves.csv",), ("curves",)),
    # RayFFM and the GRU on the Easy level of every env family at the cpu-10x budget, one commit (the chunks so far)
    FigureSet("cpu-10x-all", ("cpu-10x-all/*/popgym_curves.csv",), ("by-env", "curves")),
    # the discussion's init study: cpu-10x's RayFFM and GRU on RepeatPreviousEasy, the rest from cpu-10x-init
    FigureSet(
        "cpu-10x-init",
        ("cpu-10x/RepeatPreviousEasy/popgym_curves.csv", "cpu-10x-init/*/popgym_curves.csv"),
        ("init", "timescales"),
    ),
    # RayFFM and the GRU at the paper's PPO batch (paper-settings) against the cpu-10x preset's, same envs (the
    # scaled-down curves of an env from cpu-10x where it has them, else cpu-10x-all: plotting.paper_settings)
    FigureSet(
        "paper-settings",
        (
            "cpu-10x/RepeatPreviousEasy/popgym_curves.csv",
            "cpu-10x-all/*/popgym_curves.csv",
            "paper-settings/*/popgym_curves.csv",
        ),
        ("batch",),
    ),
)


def committed_tables(folder: str, root: Path) -> list[Path]:
    """The committed tables under ``root`` of the figure set drawn into ``folder``."""
    return next(figure_set for figure_set in FIGURE_SETS if figure_set.folder == folder).tables(root)


CHUNK_TABLES = ("*/*/popgym_curves.csv", "*/*/pomdp_curves.csv")  # results/<run>/<chunk>/: what marks a results root


def committed_sets(sources: list[Path]) -> list[tuple[FigureSet, list[Path]]]:
    """The figure sets and their tables when ``sources`` is one results root holding committed chunk tables;
    else [] (the sources are read together, as live results)."""
    if len(sources) != 1 or not any(any(sources[0].glob(pattern)) for pattern in CHUNK_TABLES):
        return []
    found = [(figure_set, figure_set.tables(sources[0])) for figure_set in FIGURE_SETS]
    return [(figure_set, tables) for figure_set, tables in found if tables]
