"""Shared figure plumbing: a non-interactive backend, one style, grids of panels, PNG + PDF output."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import seaborn as sns  # noqa: E402

sns.set_theme(style="whitegrid", context="notebook")


def panels(count: int, columns: int = 3, width: float = 5, height: float = 3.6) -> tuple[plt.Figure, list[plt.Axes]]:
    """A figure with ``count`` axes on a grid of at most ``columns`` columns (unused cells removed)."""
    columns = max(1, min(count, columns))
    rows = -(-count // columns)
    size = (width * columns, height * rows)
    figure, axes = plt.subplots(rows, columns, figsize=size, squeeze=False, layout="constrained")
    for axis in axes.flat[count:]:
        axis.remove()
    return figure, list(axes.flat[:count])


def save(figure: plt.Figure, out: Path, name: str) -> Path:
    """name.png (100 dpi: small enough to commit) and name.pdf in out; returns the PNG's path."""
    out.mkdir(parents=True, exist_ok=True)
    for suffix in ("png", "pdf"):
        figure.savefig(out / f"{name}.{suffix}", dpi=100)
    plt.close(figure)
    return out / f"{name}.png"
