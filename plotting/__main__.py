"""python -m plotting <figure|all> --source results/ --out figures/"""

import argparse
import sys
from pathlib import Path

from plotting.load import NoResultsError, load_popgym
from plotting.popgym_figures import learning_curves, write_table

FIGURES = ("table", "curves")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("figures", nargs="+", choices=(*FIGURES, "all"), help="what to draw")
    parser.add_argument("--source", type=Path, default=Path("results"), help="results folder of ppo.py")
    parser.add_argument("--out", type=Path, default=Path("figures"), help="output folder")
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


if __name__ == "__main__":
    main()
