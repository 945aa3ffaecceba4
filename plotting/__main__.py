"""python -m plotting <figure|all> --source results/ --out figures/"""

import argparse
import sys
from pathlib import Path

from plotting.load import NoResultsError, load_popgym
from plotting.popgym_figures import learning_curves, memory_gaps, write_table

FIGURES = ("table", "curves", "gaps")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figures", nargs="+", choices=(*FIGURES, "all"), help="what to draw")
    parser.add_argument("--source", type=Path, default=Path("results"), help="results folder of ppo.py")
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder")
    parser.add_argument("--baseline", default="BasicMLP", help="memoryless model the gaps are measured from")
    parser.add_argument(
        "--require-gap",
        type=float,
        default=None,
        help="gaps: fail unless every model beats the baseline by at least this much on some env",
    )
    args = parser.parse_args(argv)
    chosen = FIGURES if "all" in args.figures else args.figures
    try:
        results = load_popgym(args.source)
    except NoResultsError as error:
        sys.exit(f"plotting: {error}")
    if "table" in chosen:
        table = write_table(results, args.out)
        print(f"Final MMER (mean over seeds), from {args.source}:\n{table.to_markdown(floatfmt='.3f')}")
    if "curves" in chosen:
        print(f"wrote {learning_curves(results, args.out)} (and .pdf)")
    if "gaps" in chosen:
        gaps = memory_gaps(results, args.baseline)
        print(f"Final MMER minus {args.baseline}'s:\n{gaps.to_markdown(floatfmt='+.3f')}")
        if args.require_gap is not None:
            short = gaps.index[gaps.max(axis=1) < args.require_gap].tolist()
            if short:
                sys.exit(
                    f"plotting: {', '.join(short)} beat {args.baseline} by less than {args.require_gap} on every env"
                )


if __name__ == "__main__":
    main()
