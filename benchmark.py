"""Wall-clock efficiency of FFM and its reference points -> throughput.csv.

Standalone layer (the foundation issue's performance goals), at the paper's benchmark shapes: input 128,
output 256, m = 32, c = 4, T = 1024, forward + backward, for each batch size:
  FFM              the whole layer
  FFM-linears      its own Linear layers alone (pre: 128 -> 2m + 2*256, mix: 2mc -> 256), same shapes
  FFA              the aggregator alone
  GRU              torch.nn.GRU(128, 256), warmed up (oneDNN's first call is ~10x slower)
  GRUCell-loop     torch.nn.GRUCell(128, 256) stepped T times
and single-step inference latency (T = 1, B = 1) of FFM and nn.GRUCell with the state carried.

    python benchmark.py [--device cpu|cuda|all] [--batch 8 64] [--time 1024] [--samples 20] [--out F]
"""

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from ffm import FFM

INPUT, OUTPUT, MEMORY, CONTEXT = 128, 256, 32, 4
COLUMNS = [
    "model",
    "mode",
    "device",
    "batch",
    "time_steps",
    "median_ms",
    "p10_ms",
    "p90_ms",
    "peak_mem_mb",
    "params",
]


def measure(fn: Callable[[], object], device: torch.device, samples: int, warmup: int) -> dict:
    """Median / p10 / p90 wall-clock of fn in ms (after warm-up), and CUDA peak memory if on CUDA."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    deciles = statistics.quantiles(times, n=10) if len(times) > 1 else times * 9
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else float("nan")
    return {
        "median_ms": statistics.median(times),
        "p10_ms": deciles[0],
        "p90_ms": deciles[-1],
        "peak_mem_mb": peak,
    }


def train_step(module: nn.Module, forward: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """One forward + backward of `forward` (sum of its output as the loss); grads reset each time."""

    def step() -> None:
        module.zero_grad(set_to_none=True)
        forward().sum().backward()

    return step


def standalone_cases(batch: int, steps: int, device: torch.device) -> dict[str, tuple[nn.Module, Callable]]:
    """name -> (module, training-step closure) at one batch size."""
    x = torch.randn(batch, steps, INPUT, device=device)
    ffm = FFM(INPUT, MEMORY, CONTEXT, OUTPUT).to(device)
    linears = nn.ModuleList([nn.Linear(INPUT, ffm.pre.out_features), nn.Linear(ffm.mix.in_features, OUTPUT)])
    linears.to(device)
    mixed = torch.randn(batch, steps, ffm.mix.in_features, device=device)
    u = torch.randn(batch, steps, MEMORY, device=device, requires_grad=True)
    state = ffm.initial_state(batch, device)
    gru = nn.GRU(INPUT, OUTPUT, batch_first=True).to(device)
    cell = nn.GRUCell(INPUT, OUTPUT).to(device)

    def cell_loop() -> torch.Tensor:
        h, outputs = torch.zeros(batch, OUTPUT, device=device), []
        for t in range(steps):
            h = cell(x[:, t], h)
            outputs.append(h)
        return torch.stack(outputs, 1)

    def ffa_states() -> torch.Tensor:
        return torch.view_as_real(ffm.aggregator(u, state))

    return {
        "FFM": (ffm, train_step(ffm, lambda: ffm(x)[0])),
        "FFM-linears": (linears, train_step(linears, lambda: linears[0](x).sum() + linears[1](mixed).sum())),
        "FFA": (ffm.aggregator, train_step(ffm.aggregator, ffa_states)),
        "GRU": (gru, train_step(gru, lambda: gru(x)[0])),
        "GRUCell-loop": (cell, train_step(cell, cell_loop)),
    }


def single_step_cases(device: torch.device) -> dict[str, tuple[nn.Module, Callable]]:
    """name -> (module, closure) for one inference step at B = 1 with the recurrent state carried."""
    ffm = FFM(INPUT, MEMORY, CONTEXT, OUTPUT).to(device)
    cell = nn.GRUCell(INPUT, OUTPUT).to(device)
    x = torch.randn(1, 1, INPUT, device=device)
    carried = {"ffm": ffm.initial_state(1, device), "gru": torch.zeros(1, OUTPUT, device=device)}

    @torch.no_grad()
    def ffm_step() -> None:
        carried["ffm"] = ffm(x, carried["ffm"])[1]

    @torch.no_grad()
    def cell_step() -> None:
        carried["gru"] = cell(x[:, 0], carried["gru"])

    return {"FFM": (ffm, ffm_step), "GRUCell": (cell, cell_step)}


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def run(devices: list[torch.device], batches: list[int], steps: int, samples: int, warmup: int) -> pd.DataFrame:
    rows = []
    jobs = [(d, "train", b) for d in devices for b in batches] + [(d, "inference", 1) for d in devices]
    for device, mode, batch in tqdm(jobs, desc="benchmark"):
        if mode == "train":
            cases, time_steps = standalone_cases(batch, steps, device), steps
        else:
            cases, time_steps = single_step_cases(device), 1
        for name, (module, fn) in cases.items():
            n = max(3, samples // 4) if name == "GRUCell-loop" else samples
            stats = measure(fn, device, n, warmup)
            rows.append({"model": name, "mode": mode, "device": device.type, "batch": batch,
                         "time_steps": time_steps, **stats, "params": parameter_count(module)})  # fmt: skip
    return pd.DataFrame(rows, columns=COLUMNS)


def goals(table: pd.DataFrame) -> pd.DataFrame:
    """The foundation issue's FFM performance goals as measured ratios (lower is better)."""
    ms = table.set_index(["device", "mode", "batch", "model"])["median_ms"]
    rows = []
    for (device, mode, batch), group in ms.groupby(level=[0, 1, 2]):
        t = group.droplevel([0, 1, 2])
        if mode == "train":
            checks = [("FFM / FFM-linears", t["FFM"] / t["FFM-linears"], 2.0),
                      ("FFA / FFM-linears", t["FFA"] / t["FFM-linears"], 0.5),
                      ("FFM / GRU", t["FFM"] / t["GRU"], 1 / 4 if batch <= 8 else 1 / 2.5)]  # fmt: skip
        else:
            checks = [("FFM / GRUCell (T=1)", t["FFM"] / t["GRUCell"], 1.5)]
        for goal, ratio, target in checks:
            rows.append({"device": device, "mode": mode, "batch": batch, "goal": goal, "ratio": ratio,
                         "target": target, "met": bool(ratio <= target)})  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "all"])
    parser.add_argument("--batch", type=int, nargs="+", default=[8, 64])
    parser.add_argument("--time", type=int, default=1024, help="sequence length T for training steps")
    parser.add_argument("--samples", type=int, default=20, help="timed repetitions per case after warm-up")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("throughput.csv"))
    parser.add_argument("--quick", action="store_true", help="tiny shapes and few samples (CI)")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.time, args.samples, args.warmup = [2], 32, 3, 1
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device is visible")
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    devices = devices if args.device == "all" else [torch.device(args.device)]

    table = run(devices, args.batch, args.time, args.samples, args.warmup)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    ratios = goals(table)
    ratios.to_csv(args.out.with_name(args.out.stem + "_goals.csv"), index=False)
    print(table.to_string(index=False, float_format="%.3f"))
    print(ratios.to_string(index=False, float_format="%.3f"))


if __name__ == "__main__":
    main()
