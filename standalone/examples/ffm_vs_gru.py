"""A short FFM-vs-GRU comparison on a memory task, with learning curves as figures.

Task ("repeat the first"): each sequence opens with one of `classes` cue symbols, followed by `length`
steps of noise symbols; at every step the model must output the cue, so it has to remember one symbol
over up to `length` steps. A memoryless model cannot beat 1/classes accuracy.

Both models see the same batches and have the same output width; the script reports accuracy after
training and wall-clock per update, and writes `learning_curves.png/.pdf` and `results.csv` to --out.
"""

import argparse
import time
from pathlib import Path

import matplotlib
import pandas as pd
import seaborn as sns
import torch
from torch import nn
from tqdm import trange

from ffm import DropInFFM

matplotlib.use("Agg")


def batch_of_sequences(batch: int, length: int, classes: int, generator: torch.Generator):
    """One-hot inputs [T, B, classes + 1] (last channel flags the cue step) and targets [T, B]."""
    cue = torch.randint(classes, (batch,), generator=generator)
    symbols = torch.randint(classes, (length, batch), generator=generator)
    symbols[0] = cue
    inputs = nn.functional.one_hot(symbols, classes).float()
    flag = torch.zeros(length, batch, 1)
    flag[0] = 1.0
    return torch.cat([inputs, flag], -1), cue.expand(length, batch)


class SequenceClassifier(nn.Module):
    """Input Linear -> memory (nn.GRU or DropInFFM, same call) -> Linear to class logits."""

    def __init__(self, memory: str, classes: int, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Linear(classes + 1, hidden)
        memories = {"GRU": nn.GRU, "FFM": DropInFFM}
        self.memory = memories[memory](hidden, hidden)
        self.head = nn.Linear(hidden, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        output, _ = self.memory(torch.relu(self.embed(x)))
        return self.head(output)


def train(memory: str, args: argparse.Namespace) -> list[dict]:
    torch.manual_seed(args.seed)
    model = SequenceClassifier(memory, args.classes, args.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    generator = torch.Generator().manual_seed(args.seed)
    rows, seconds = [], 0.0
    for update in trange(1, args.updates + 1, desc=memory):
        x, target = batch_of_sequences(args.batch, args.length, args.classes, generator)
        start = time.perf_counter()
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seconds += time.perf_counter() - start
        accuracy = (logits.argmax(-1) == target).float().mean().item()
        rows.append({"model": memory, "update": update, "loss": loss.item(), "accuracy": accuracy,
                     "seconds": seconds})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=100, help="steps the cue must be remembered")
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("figures/demo"))
    args = parser.parse_args()

    table = pd.DataFrame([row for memory in ("FFM", "GRU") for row in train(memory, args)])
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "results.csv", index=False)
    table["accuracy (running mean of 20)"] = table.groupby("model")["accuracy"].transform(
        lambda a: a.rolling(20, min_periods=1).mean()
    )
    figure, axes = matplotlib.pyplot.subplots(1, 2, figsize=(10, 3.6))
    for axis, x in zip(axes, ["update", "seconds"], strict=True):
        sns.lineplot(table, x=x, y="accuracy (running mean of 20)", hue="model", ax=axis)
        axis.axhline(1 / args.classes, color="grey", linestyle=":", label="chance")
        axis.set_xlabel("updates" if x == "update" else "training wall-clock (s)")
    figure.suptitle(f"Remember a cue for {args.length} steps ({args.classes} classes)")
    figure.tight_layout()
    for suffix in ("png", "pdf"):
        figure.savefig(args.out / f"learning_curves.{suffix}", dpi=120)

    by_model = table.groupby("model")
    summary = pd.DataFrame(
        {
            "final accuracy (last 50 updates)": table.groupby("model").tail(50).groupby("model")["accuracy"].mean(),
            "ms per update": by_model["seconds"].max() / args.updates * 1e3,
        }
    )
    print(summary.to_string(float_format="%.3f"))
    print(f"figures and results.csv in {args.out}/")


if __name__ == "__main__":
    main()
