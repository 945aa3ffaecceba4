"""scripts/gpu_check.py, the prepared GPU-machine run, in CPU mode on a Python without the RL stack (as there)."""

import subprocess
import sys
from pathlib import Path

import pandas as pd

from tests.conftest import NEEDS_RL_STACK

REPO = Path(__file__).resolve().parents[1]
# the GPU machine has torch, pandas and pytest but none of these: importing one of them must fail
WITHOUT_RL_STACK = """
import sys
for name in ("ray", "popgym", "gymnasium", "wandb", "pybullet", "pybullet_envs", "tree"):
    sys.modules[name] = None  # import raises ModuleNotFoundError, importlib.util.find_spec returns None
"""


def run_without_rl_stack(code: str, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", WITHOUT_RL_STACK + code, *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=900)


def test_cpu_mode_collects_the_torch_only_tests_and_benchmarks(tmp_path: Path) -> None:
    script = "import runpy, sys; sys.argv[0] = 'scripts/gpu_check.py'; runpy.run_path(sys.argv[0], run_name='__main__')"
    result = run_without_rl_stack(script, "--device", "cpu", "--quick", "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    tests = pd.read_csv(tmp_path / "tests.csv")
    files = set(tests["test"].str.split("::").str[0].map(lambda path: Path(path).name))
    assert files.isdisjoint(NEEDS_RL_STACK)
    assert {"test_scan.py", "test_ffm.py", "test_attention.py", "test_benchmark.py", "test_gpu_check.py"} <= files
    assert tests["test"].str.contains(r"test_hundred_thousand_steps_values_and_gradients\[cpu-").any()
    table = pd.read_csv(tmp_path / "throughput_cpu.csv")
    assert {"RayFFM", "GRU", "layer/FFM", "layer/GRU", "layer/GRUCell-loop"} <= set(table["model"])
    assert (table.dropna(subset=["median_ms"])["median_ms"] > 0).all()
    goals = pd.read_csv(tmp_path / "throughput_cpu_goals.csv")
    assert {"FFM / FFM-linears", "FFM / GRU", "FFM / GRUCell (T=1)"} <= set(goals["goal"])
    comparison = pd.read_csv(tmp_path / "throughput_cpu_comparison.csv")
    assert set(comparison["layer"]) == {"FFM", "FFM-equations", "GRU"}
    assert set(comparison["precision"]) == {"float32", "autocast-bfloat16"}
    assert (comparison["median_ms"] > 0).all() and (comparison["launched_ops"] > 0).all()
    summary = (tmp_path / "summary.md").read_text()
    assert summary.startswith("## GPU check on CPU") and f"{len(tests)} collected" in summary
    assert "| layer train step, B = 2 | FFM" in summary and "| goal FFM / GRU, B = 2 |" in summary
    assert "| training step, B = 2, autocast-bfloat16 | FFM " in summary


def test_rl_stack_list_is_exactly_the_files_that_need_it() -> None:
    """tests/conftest.py leaves NEEDS_RL_STACK out on the GPU machine: each of them must need the stack
    (or it would be skipped there for nothing) and every other file must import without it."""
    code = """
import importlib, pathlib
sys.path[:0] = [".", "standalone", "standalone/tests", "pomdp-baselines"]
for path in sorted(pathlib.Path("tests").glob("test_*.py")):
    try:
        importlib.import_module(f"tests.{path.stem}")
    except ModuleNotFoundError as error:
        print("NEEDS", path.name, error.name)
"""
    result = run_without_rl_stack(code)
    assert result.returncode == 0, result.stderr[-3000:]
    needing = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("NEEDS ")}
    assert needing == NEEDS_RL_STACK
