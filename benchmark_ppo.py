"""PPO's cost per memory model as ppo.py runs it, and both of its halves against their limits without RLlib.

For each model x env, PPO (ppo.build_config, the settings of ppo.py's flags and POPGYM_* variables, default
the paper's) runs ``--warmup`` untimed and ``--iterations`` timed iterations in this process. Per iteration:
  sampling_s       RLlib's sampling of the train batch (synchronous_parallel_sample, every env runner)
  learner_s        the learner's update: the learner connector (GAE, padding) and every minibatch update;
                   with ``--epochs-timed E`` below the settings' 30 epochs, only E epochs run and the
                   minibatch updates are scaled to all epochs (their cost is the same every epoch)
  env_steps_per_s  env steps of the iteration / (sampling_s + learner_s + the rest of the iteration)
  loss_rows_per_valid_step  rows [B, T] the PPO loss saw per valid env step (1: no padding)
with as many torch threads as a ppo.py trial gets (its CPUs: 1 with --workers 0); and the limits, timed
in this process without RLlib, on the same shapes:
  sampling_limit_steps_per_s  popgym's envs (as ppo.make_env) stepped in a Python loop with the model's
                   single-step forward and action sampling, as many envs as an env runner holds
  update_ms / plain_update_ms  RLlib's mean minibatch update against a plain-torch one on a minibatch of
                   the mean shape [B, T]: the module's forward, a PPO-sized loss (clipped surrogate, clipped
                   value error, KL), backward, Adam
``--padded`` times RLlib's own PPO learner (every sequence padded to max_seq_len) instead of ppo.py's
trimmed one. Rows are written to ``--out`` as each model x env finishes, replacing rows of the same label,
model, env and learner.

    python benchmark_ppo.py --label paper --models RayFFM,GRU --experiment RepeatPreviousEasy \\
        --workers 0 --envs-per-worker 64 --epochs-timed 1
    python benchmark_ppo.py --label cpu --preset cpu --models RayFFM,GRU --experiment RepeatPreviousEasy
"""

import argparse
import datetime
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import tree
from ray.rllib.algorithms.ppo import PPO
from ray.rllib.algorithms.ppo import ppo as rllib_ppo
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.tune.registry import register_env
from tqdm import tqdm

import ppo
from models.learner import TrimmedPPOTorchLearner
from models.rllib import module_spec
from results_schema import PPO_THROUGHPUT_COLUMNS, PPO_THROUGHPUT_KEY, STEP

REPO = Path(__file__).resolve().parent


class MinibatchTimer(PPOTorchLearner):
    """PPO's learner, counting and timing the minibatch updates it is handed (as RLlib's loss sees them)."""

    def build(self, **kwargs) -> None:
        super().build(**kwargs)
        self.reset_counts()

    def reset_counts(self) -> None:
        self.counts = dict.fromkeys(("minibatches", "sequences", "rows", "valid_steps", "seconds"), 0.0)

    def _update(self, batch: dict, **kwargs):
        for module_batch in batch.values():
            mask = module_batch[Columns.LOSS_MASK]
            self.counts["minibatches"] += 1
            self.counts["sequences"] += mask.shape[0] if mask.dim() == 2 else 1
            self.counts["rows"] += mask.numel()
            self.counts["valid_steps"] += int(mask.sum())
        start = time.perf_counter()
        result = super()._update(batch, **kwargs)
        self.counts["seconds"] += time.perf_counter() - start
        return result


class TrimmedMinibatchTimer(TrimmedPPOTorchLearner, MinibatchTimer):
    """ppo.py's learner (each minibatch trimmed to its longest sequence), counting what the loss sees."""


class Stopwatch:
    """A callable wrapped to add up the wall time of its calls."""

    def __init__(self, function) -> None:
        self.function, self.seconds = function, 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.function(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def time_ppo(settings: ppo.Settings, model: str, env: str, warmup: int, iterations: int, epochs_timed: int,
             padded: bool) -> dict:  # fmt: skip
    """Per-iteration costs of ``iterations`` PPO iterations of ``model`` on ``env``, after ``warmup`` ones."""
    register_env(env, lambda config: ppo.make_env(env))
    config = ppo.build_config(settings).environment(env).debugging(seed=0)
    epochs = config.num_epochs
    timed_epochs = min(epochs_timed or epochs, epochs)
    learner_class = MinibatchTimer if padded else TrimmedMinibatchTimer
    config = config.learners(learner_class=learner_class).training(num_epochs=timed_epochs)
    # the torch threads of a ppo.py trial (ppo.TorchThreads): the CPUs Tune gives the trial process
    torch.set_num_threads(int(PPO.default_resource_request(config).bundles[0]["CPU"]))
    sampling = rllib_ppo.synchronous_parallel_sample = Stopwatch(rllib_ppo.synchronous_parallel_sample)
    try:
        algorithm = config.rl_module(rl_module_spec=module_spec(model)).build_algo()
        try:
            steps_before = 0
            for _ in range(warmup):
                steps_before = algorithm.train()[STEP]
            learner = algorithm.learner_group._learner
            learning = algorithm.learner_group.update = Stopwatch(algorithm.learner_group.update)
            learner.reset_counts()
            sampling.seconds, start = 0.0, time.perf_counter()
            for _ in range(iterations):
                result = algorithm.train()
            total = time.perf_counter() - start
            steps = result[STEP] - steps_before
        finally:
            algorithm.stop()
    finally:
        rllib_ppo.synchronous_parallel_sample = sampling.function
    counts = learner.counts
    scale = epochs / timed_epochs  # the minibatch updates of every epoch cost the same
    update_s = counts["seconds"] * scale
    learner_s = learning.seconds - counts["seconds"] + update_s
    rest_s = total - sampling.seconds - learning.seconds  # weight sync, metrics, callbacks
    return {
        "epochs": epochs,
        "epochs_timed": timed_epochs,
        "env_steps_per_iteration": steps / iterations,
        "sampling_s": sampling.seconds / iterations,
        "learner_s": learner_s / iterations,
        "other_s": rest_s / iterations,
        "env_steps_per_s": steps / (sampling.seconds + learner_s + rest_s),
        "minibatches_per_iteration": counts["minibatches"] * scale / iterations,
        "minibatch_sequences": counts["sequences"] / counts["minibatches"],
        "minibatch_time_steps": counts["rows"] / counts["sequences"],
        "loss_rows_per_valid_step": counts["rows"] / counts["valid_steps"],
        "update_ms": counts["seconds"] / counts["minibatches"] * 1e3,
    }


def build_module(model: str, env: str):
    """The model's RLModule for the env's spaces, as ppo.py builds it (untrained, seeded)."""
    torch.manual_seed(0)
    spec = module_spec(model)
    probe = ppo.make_env(env)
    spec.observation_space, spec.action_space = probe.observation_space, probe.action_space
    return spec.build()


def stack(observations: Sequence, *shape: int) -> object:
    """N observations -> tensors [*shape, ...] with N = prod(shape) (tuples stay tuples)."""
    return tree.map_structure(
        lambda *parts: torch.as_tensor(np.stack(parts)).reshape(*shape, *np.shape(parts[0])), *observations
    )


def sampling_limit(model: str, env: str, num_envs: int, steps: int) -> float:
    """Env steps/s of ``num_envs`` popgym envs stepped in a loop with the model's single-step forward and
    action sampling (the state carried, reset with its env): an env runner's work without RLlib."""
    module = build_module(model, env)
    envs = [ppo.make_env(env) for _ in range(num_envs)]
    observations = [environment.reset(seed=seed)[0] for seed, environment in enumerate(envs)]
    initial = module.network.initial_state()
    state = module.network.batched_initial_state(num_envs)
    done, start = 0, time.perf_counter()
    with torch.no_grad():
        while done < steps:
            inputs = stack(observations, num_envs, 1) if module.is_stateful() else stack(observations, num_envs)
            batch = {Columns.OBS: inputs} | ({Columns.STATE_IN: state} if state else {})
            output = module.forward_exploration(batch)
            logits = output[Columns.ACTION_DIST_INPUTS].reshape(num_envs, -1)
            actions = module.action_dist_cls.from_logits(logits).sample().numpy()
            state = output.get(Columns.STATE_OUT, {})
            for index, environment in enumerate(envs):
                observations[index], _, terminated, truncated, _ = environment.step(actions[index])
                if terminated or truncated:
                    observations[index] = environment.reset()[0]
                    for key, value in initial.items():
                        state[key][index] = value
            done += num_envs
    return done / (time.perf_counter() - start)


def plain_update_ms(model: str, env: str, sequences: int, time_steps: int, samples: int = 5) -> float:
    """Median ms of a plain-torch PPO minibatch update on [sequences, time_steps] env steps: the module's
    forward, a PPO-sized loss (clipped surrogate, clipped value error, KL to the behaviour policy), backward
    and an Adam step."""
    module = build_module(model, env)
    space = module.observation_space
    space.seed(0)
    drawn = [space.sample() for _ in range(sequences * time_steps)]
    observations = stack(drawn, sequences, time_steps) if module.is_stateful() else stack(drawn, len(drawn))
    state = module.network.batched_initial_state(sequences)
    batch = {Columns.OBS: observations} | ({Columns.STATE_IN: state} if state else {})
    with torch.no_grad():
        behaviour = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]
    old = module.action_dist_cls.from_logits(behaviour)
    actions, advantages = old.sample(), torch.randn(behaviour.shape[:-1])
    old_logp, targets = old.logp(actions), torch.randn(behaviour.shape[:-1])
    optimizer = torch.optim.Adam(module.parameters(), lr=5e-5)

    def update() -> None:
        output = module.forward_train(batch)
        current = module.action_dist_cls.from_logits(output[Columns.ACTION_DIST_INPUTS])
        ratio = torch.exp(current.logp(actions) - old_logp)
        surrogate = torch.min(ratio * advantages, ratio.clamp(0.7, 1.3) * advantages)
        values = module.compute_values(batch, embeddings=output[Columns.EMBEDDINGS])
        value_error = (values - targets).square().clamp(max=10.0)
        loss = -surrogate.mean() + value_error.mean() + 0.2 * old.kl(current).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    update()
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        update()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def cpu_name() -> str:
    """The CPU's model name (Linux), else the architecture."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.machine()


def commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


def save(rows: list[dict], out: Path) -> pd.DataFrame:
    """Rows replace those of the same key in ``out`` (written at once: nothing is lost on a later failure)."""
    table = pd.DataFrame(rows, columns=PPO_THROUGHPUT_COLUMNS)
    if out.exists():
        kept = pd.read_csv(out)
        kept = kept[~kept.set_index(PPO_THROUGHPUT_KEY).index.isin(table.set_index(PPO_THROUGHPUT_KEY).index)]
        table = pd.concat([kept, table], ignore_index=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False, float_format="%.6g")
    return table


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", required=True, help="the settings' name in the table (e.g. paper, cpu)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed PPO iterations first")
    parser.add_argument("--iterations", type=int, default=1, help="timed PPO iterations")
    parser.add_argument("--epochs-timed", type=int, default=0, help="run this many epochs, scale to all (0: all)")
    parser.add_argument("--padded", action="store_true", help="RLlib's PPO learner (padding to max_seq_len)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "throughput_ppo_cpu.csv")
    args, ppo_argv = parser.parse_known_args(argv)
    settings = ppo.parse_settings(ppo_argv)
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    ppo.hide_rllib_notices()
    rows = []
    cases = [(model, env) for env in settings.envs for model in settings.models]
    for model, env in tqdm(cases, desc="PPO throughput"):
        measured = time_ppo(settings, model, env, args.warmup, args.iterations, args.epochs_timed, args.padded)
        envs_per_runner = settings.envs_per_worker
        sampling_limit_steps = max(measured["env_steps_per_iteration"] // max(settings.workers, 1), 4096)
        row = {
            "label": args.label,
            "model": model,
            "env": env,
            "learner": "rllib-padded" if args.padded else "trimmed",
            "bptt_cutoff": settings.bptt_cutoff,
            "runners": settings.workers,
            "envs_per_runner": envs_per_runner,
            "train_batch": settings.train_batch_size,
            "minibatch": settings.minibatch_size,
            **measured,
            "sampling_limit_steps_per_s": sampling_limit(model, env, envs_per_runner, sampling_limit_steps),
            "plain_update_ms": plain_update_ms(
                model, env, round(measured["minibatch_sequences"]), round(measured["minibatch_time_steps"])
            ),
            "torch_threads": torch.get_num_threads(),
            "cpus": os.cpu_count(),
            "machine": cpu_name(),
            "date": datetime.date.today().isoformat(),
            "commit": commit(),
        }
        rows.append(row)
        table = save(rows, args.out)
        tqdm.write(pd.DataFrame([row]).drop(columns=["date", "commit", "machine"]).to_string(index=False))
    print(f"wrote {args.out} ({len(table)} rows)")


if __name__ == "__main__":
    main()
