"""One prepared check for a lent GPU machine: the torch-only tests, the benchmark, one summary table.

The GPU machine has torch, numpy, pandas, pytest and tqdm but none of ray, popgym, gymnasium, wandb or
pybullet, and nothing gets installed there: this script needs only the repository copy (it puts
standalone/ on the path for ``ffm``) and runs in about 8 minutes on one H100.

    python scripts/gpu_check.py                                   # on the GPU machine: make gpu-check
    python scripts/gpu_check.py --device cpu --quick --out DIR    # CPU mode (tests/test_gpu_check.py)

1. tests: every test file that needs only torch (FFM_TORCH_ONLY=1 leaves out the ones that need the RL
   stack, see tests/conftest.py), the CUDA ones included: the ``device`` fixture of standalone/tests runs
   FFM's checks (single steps == one parallel pass, resets, T = 100,000 against a float64 loop,
   torch.compile) on CUDA as well, and on --device cuda no test may be skipped for want of a GPU.
   --quick only collects them (CPU mode: every torch-only file imports without the RL stack).
2. benchmark: benchmark.py's table on the device (the same code path as the CPU table) and its goal
   ratios, the paper's GPU claims among them (FFM >= 100x the GRUCell loop, >= 10x cuDNN GRU at B = 8);
   and a GPU user's comparison (``benchmark.layer_comparison``): training steps of the ffm layer (the path
   CUDA takes), the same equations in the authors' form and cuDNN nn.GRU at B = 8 and 64, T = 1,024, in
   float32 and under float16 autocast, with each step's launching ops.
3. summary: one table, printed and written.

Everything lands under --out: tests.csv, throughput_gpu.csv, throughput_gpu_goals.csv and
throughput_gpu_comparison.csv (throughput_cpu*.csv in CPU mode), summary.md.
"""

import argparse
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "standalone")]

import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import benchmark  # noqa: E402
from models import BASELINES  # noqa: E402

CUDA_SKIP = "needs a CUDA device"
QUICK_MODELS = ["RayFFM", "GRU"]


class TestOutcomes:
    """A pytest plugin that keeps every test's outcome (and the collected ids, for --collect-only)."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.collected: list[str] = []

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = [item.nodeid for item in session.items]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when == "call" or report.outcome != "passed":
            reason = report.longrepr[2] if report.skipped and isinstance(report.longrepr, tuple) else ""
            row = {"test": report.nodeid, "phase": report.when, "outcome": report.outcome, "reason": reason}
            self.rows.append(row | {"seconds": round(report.duration, 3)})


def run_tests(quick: bool) -> tuple[int, pd.DataFrame]:
    """pytest's exit code and one row per test (per collected test with --quick)."""
    os.environ["FFM_TORCH_ONLY"] = "1"
    outcomes = TestOutcomes()
    arguments = [
        "-q",
        "-p",
        "no:cacheprovider",
        "--rootdir",
        str(REPO),
        str(REPO / "standalone/tests"),
        str(REPO / "tests"),
    ]
    code = pytest.main(arguments + (["--collect-only"] if quick else []), plugins=[outcomes])
    if quick:
        return int(code), pd.DataFrame({"test": outcomes.collected, "outcome": "collected"})
    return int(code), pd.DataFrame(outcomes.rows, columns=["test", "phase", "outcome", "reason", "seconds"])


def run_benchmark(device: torch.device, quick: bool) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """benchmark.py's table and goal ratios on one device (B = 8 models; layer rows at B = 8 and 64), and
    the layer comparison at the layer batches."""
    models = QUICK_MODELS if quick else ["RayFFM"] + [model.name for model in BASELINES]
    steps, samples, warmup, batches = (16, 2, 1, [2]) if quick else (1024, 10, 3, [8, 64])
    table = benchmark.run([device], models, batches[:1], batches, steps, samples, warmup, "default")
    comparison = benchmark.layer_comparison(device, batches, steps, samples, warmup)
    return table, benchmark.goals(table), comparison


def summary(
    device: torch.device,
    tests: pd.DataFrame,
    code: int,
    table: pd.DataFrame,
    goals: pd.DataFrame,
    comparison: pd.DataFrame,
) -> str:
    """The one table: test counts, the CUDA tests, the paper's speed comparison, every goal and the layer
    comparison."""
    counts = tests["outcome"].value_counts()
    cuda_tests = tests[tests["test"].str.contains(r"cuda", case=False)]
    cuda_skips = int((tests["reason"].fillna("").str.contains(CUDA_SKIP)).sum()) if "reason" in tests else 0
    rows = [("tests", ", ".join(f"{count} {outcome}" for outcome, count in counts.items()) + f" (pytest exit {code})")]
    ran = "collected" if "reason" not in tests else "run"
    rows.append(("CUDA tests", f"{len(cuda_tests)} {ran}, {cuda_skips} skipped for want of a GPU"))
    train = table[(table["mode"] == "train") & table["model"].str.startswith("layer/")]
    for batch, group in train.groupby("batch"):
        ms = group.set_index("model")["median_ms"]
        rows.append(
            (
                f"layer train step, B = {batch}",
                f"FFM {ms['layer/FFM']:.2f} ms; GRUCell loop {ms['layer/GRUCell-loop']:.1f} ms "
                f"({ms['layer/GRUCell-loop'] / ms['layer/FFM']:.0f}x FFM); nn.GRU {ms['layer/GRU']:.2f} ms "
                f"({ms['layer/GRU'] / ms['layer/FFM']:.1f}x FFM); FFM's own Linears {ms['layer/FFM-linears']:.2f} ms",
            )
        )
    for goal in goals.itertuples():
        verdict = "met" if goal.met else "MISSED"
        rows.append(
            (f"goal {goal.goal}, B = {goal.batch}", f"{goal.ratio:.3f} (target <= {goal.target:.3g}): {verdict}")
        )
    for (batch, precision), group in comparison.groupby(["batch", "precision"], sort=False):
        cells = [f"{row.layer} {row.median_ms:.2f} ms ({row.launched_ops} ops)" for row in group.itertuples()]
        rows.append((f"training step, B = {batch}, {precision}", "; ".join(cells)))
    header = f"GPU check on {device_name(device)}, torch {torch.__version__}"
    lines = [f"## {header}", "", "| check | result |", "|---|---|"] + [f"| {key} | {value} |" for key, value in rows]
    return "\n".join(lines) + "\n"


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({os.cpu_count()} cores)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--quick", action="store_true", help="collect the tests only, tiny benchmark (CPU mode)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu-check")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible (CPU mode: --device cpu --quick)")
    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    code, tests = run_tests(args.quick)
    tests.to_csv(args.out / "tests.csv", index=False)
    table, goals, comparison = run_benchmark(device, args.quick)
    name = "throughput_gpu" if device.type == "cuda" else "throughput_cpu"
    table.to_csv(args.out / f"{name}.csv", index=False)
    goals.to_csv(args.out / f"{name}_goals.csv", index=False)
    comparison.to_csv(args.out / f"{name}_comparison.csv", index=False)
    report = summary(device, tests, code, table, goals, comparison)
    report += f"\n{time.perf_counter() - started:.0f} s in all\n"
    (args.out / "summary.md").write_text(report)
    print(report)
    cuda_skipped = "reason" in tests and tests["reason"].fillna("").str.contains(CUDA_SKIP).any()
    return 1 if code != 0 or (device.type == "cuda" and cuda_skipped) else 0


if __name__ == "__main__":
    sys.exit(main())
