"""benchmark.py --quick runs end to end and writes a well-formed throughput.csv for every requested model."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from results_schema import PROCESS_BASELINE, THROUGHPUT_COLUMNS

REPO = Path(__file__).resolve().parents[1]


def test_quick_run_writes_every_requested_model(tmp_path: Path) -> None:
    out = tmp_path / "throughput.csv"
    models = ["RayFFM", "GRU", "BasicMLP"]
    command = [sys.executable, "benchmark.py", "--quick", "--models", ",".join(models), "--out", str(out)]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "WARNING" not in result.stderr and "Warning" not in result.stderr  # progress bars only
    table = pd.read_csv(out)
    assert list(table.columns) == THROUGHPUT_COLUMNS
    assert set(table["allocator"]) == {"default"}  # glibc as users run it; --allocator retain is the option
    for model in models:
        rows = table[table["model"] == model].set_index("mode")
        assert set(rows.index) == {"train", "inference"}
        assert (rows[["median_ms", "p10_ms", "p90_ms"]] > 0).all().all()
        assert (rows["p10_ms"] <= rows["median_ms"]).all() and (rows["median_ms"] <= rows["p90_ms"]).all()
        assert rows.loc["train", "peak_mem_mb"] > 100  # a fresh process with torch: hundreds of MB
        assert (rows.loc["train", "batch"], rows.loc["train", "time_steps"]) == (2, 16)
        assert rows.loc["inference", "batch"] == 1 and rows.loc["inference", "time_steps"] == 1
    params = table.drop_duplicates("model").set_index("model")["params"]
    assert params["GRU"] > params["RayFFM"] > params["BasicMLP"] > 0
    assert {f"layer/{name}" for name in ("FFM", "FFM-linears", "FFA", "GRU", "GRUCell-loop", "GRUCell")} <= set(
        table["model"]
    )
    assert table.loc[table["model"] == PROCESS_BASELINE, "peak_mem_mb"].item() > 100
    layers = table[(table["mode"] == "train") & table["model"].isin(["layer/FFM", "layer/GRU"])]
    assert len(layers) == 2 and (layers["peak_mem_mb"] > 100).all()  # fresh processes, as the models
    goals = pd.read_csv(tmp_path / "throughput_goals.csv")
    assert set(goals["goal"]) == {"FFM / FFM-linears", "FFA / FFM-linears", "FFM / GRU", "FFM / GRUCell (T=1)"}


def test_cases_are_timed_round_robin() -> None:
    """One call of each case per round after every warm-up; a case with fewer samples takes every k-th
    round, so both see the same stretch of the machine's time."""
    import benchmark

    calls: list[str] = []
    cases = {name: (lambda name=name: calls.append(name), samples) for name, samples in (("a", 4), ("b", 2))}
    stats = benchmark.measure(cases, torch.device("cpu"), warmup=1)
    assert calls == ["a", "b", "a", "b", "a", "a", "b", "a"]
    for name in cases:
        assert 0 <= stats[name]["p10_ms"] <= stats[name]["median_ms"] <= stats[name]["p90_ms"]


def layer_matmul_flops(rows: int) -> int:
    """FLOPs of the FFM layer's five matmuls over `rows` batch x steps at the benchmarked shapes: the input
    projection (pre: 128 -> 2m + 2 out) forward and its weight gradient; the mix (2mc -> out) forward, its
    input gradient (FFA's states need it) and its weight gradient."""
    import benchmark

    pre = benchmark.INPUT * (2 * benchmark.MEMORY + 2 * benchmark.OUTPUT)  # [W1; W2; W5; W4]
    mix = 2 * benchmark.MEMORY * benchmark.CONTEXT * benchmark.OUTPUT
    return 2 * rows * (2 * pre + 3 * mix)


def test_the_linears_reference_runs_the_layers_matmuls() -> None:
    """layer/FFM-linears is the arithmetic the layer cannot avoid: its five matmuls."""
    import benchmark

    batch, steps = 2, 16
    _, step = benchmark.standalone_cases(batch, steps, torch.device("cpu"))["layer/FFM-linears"]
    with FlopCounterMode(display=False) as counter:
        step()
    assert counter.get_total_flops() == layer_matmul_flops(batch * steps)


def test_unknown_model_is_one_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "benchmark.py", "--models", "RayFFM,Transformer"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 2 and "unknown model 'Transformer'; valid models: RayFFM" in result.stderr


STEADY_STATE_PAGE_FAULTS = """
import resource, sys, torch
import benchmark
retained = sys.argv[1] == "retain" and benchmark.retain_freed_memory()

def step():  # three 64 MB temporaries, freed at the end like a training step's activations
    x = torch.ones(2**24)
    (x * 2 + x).sum()

for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(8):
    step()
print(retained, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) // 8)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt and Linux page-fault counts")
def test_retained_memory_is_reused_without_page_faults() -> None:
    """--allocator retain: repeated steps reuse freed 64 MB blocks instead of faulting in 3 x 16,384
    fresh pages per step as glibc does by default (now and then a block lands elsewhere: a tenth is allowed)."""
    faults = {}
    for allocator in ("retain", "default"):
        command = [sys.executable, "-c", STEADY_STATE_PAGE_FAULTS, allocator]
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
        retained, faults[allocator] = result.stdout.split()
        assert retained == str(allocator == "retain")
    assert int(faults["default"]) > 3 * 16_000
    assert int(faults["retain"]) < int(faults["default"]) / 10


@pytest.mark.parametrize("steps", [64, 1024, 4096])
def test_the_ffm_layers_plain_training_step_launches_at_most_200_ops(steps: int) -> None:
    """The path CUDA takes (``FFM(blockwise=False)`` on CPU): a training step's ops that launch work are at
    most 200, the same at B = 8 and 64 and at every T here (the authors' FFM: 106). The count sees per-step
    work: a GRUCell stepped over 64 steps launches more than 200."""
    import benchmark
    from ffm import FFM

    def training_step_ops(batch: int) -> int:
        layer = FFM(128, 32, 4, 256, blockwise=False)
        x = torch.randn(batch, steps, 128)
        resets = torch.zeros(batch, steps, dtype=torch.bool)
        resets[:, 10::300] = True
        return len(benchmark.launched_ops(benchmark.train_step(layer, lambda: layer(x, None, resets)[0])))

    counts = {batch: training_step_ops(batch) for batch in (8, 64)}
    assert counts[8] == counts[64] <= 200, counts
    cell, x = torch.nn.GRUCell(128, 256), torch.randn(8, 64, 128)
    loop = benchmark.train_step(cell, lambda: torch.stack([cell(x[:, t]) for t in range(64)], 1))
    assert len(benchmark.launched_ops(loop)) > 200


def test_the_equations_in_the_authors_form_are_the_layers() -> None:
    """benchmark.EquationsFFM, the GPU comparison's reference (gamma^t times a cumulative sum of gamma^-t u),
    computes the ffm layer's outputs with its weights, and its gradients."""
    import benchmark
    from ffm import FFM

    ffm = FFM(16, 8, 4, 12)
    equations = benchmark.EquationsFFM(ffm)
    x = torch.randn(3, 100, 16)
    ours, theirs = ffm(x)[0], equations(x)
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)
    for a, b in zip(
        torch.autograd.grad(ours.square().sum(), list(ffm.parameters())),
        torch.autograd.grad(theirs.square().sum(), list(ffm.parameters())),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
