"""Recurrent SAC or TD3 with a GRU or FFM memory on an occluded task: pomdp-baselines' method on today's stack.

    cd pomdp-baselines && python main.py --cfg configs/pomdp/hopper/p/ffm.yml --algo sac --seed 0 --cuda 0

Loop (pomdp-baselines' learner): ``warmup_steps`` random-action steps and one update per warm-up step, then per
iteration one episode with the exploring policy and as many updates as it had steps, until ``env_steps`` env
steps (warm-up included); ``eval_episodes`` deterministic episodes every ``eval_every`` env steps and at the end.
The run writes to ``<results>/pomdp/<task>/<algo>-<memory>-seed<N>/``: run.json (task, algo, memory, seed,
config), progress.csv (one row per evaluation, appended as it comes) and checkpoint.pt (every
``checkpoint_every`` evaluations); running the same command again resumes from the checkpoint.
"""

import argparse
import csv
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
import yaml
from tqdm import tqdm

from algorithms import ALGORITHMS, RecurrentAgent, make_agent
from buffer import EpisodicBuffer
from config import Config, as_dict, load_config
from envs import make_env

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = "checkpoint.pt"
# act(obs, prev_action, prev_reward, memory state) -> (action, memory state)
Policy = Callable[[np.ndarray, np.ndarray, float, Any], tuple[np.ndarray, Any]]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cfg", required=True, help="YAML config, e.g. configs/pomdp/hopper/p/ffm.yml")
    parser.add_argument("--algo", choices=sorted(ALGORITHMS), default="sac")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cuda", type=int, default=0, help="GPU index; -1 (or no GPU visible): CPU")
    parser.add_argument("--results", type=Path, default=REPO / "results", help="results root (default: %(default)s)")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config settings, values in YAML (e.g. --set env_steps=20000 warmup_steps=1000)",
    )
    parser.add_argument("--wandb-project", default="pomdp-baselines", help="wandb project (offline unless WANDB_MODE)")
    parser.add_argument("--no-wandb", action="store_true", help="log to progress.csv only")
    args = parser.parse_args(argv)
    try:
        args.config = load_config(args.cfg, _overrides(args.set))
    except ValueError as error:
        parser.error(str(error))
    return args


def _overrides(items: Sequence[str]) -> dict[str, Any]:
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set: expected KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


def run_dir(results: Path, config: Config, algo: str, seed: int) -> Path:
    return results / "pomdp" / config.env / f"{algo}-{config.memory}-seed{seed}"


def run_episode(env: gym.Env, policy: Policy, seed: int) -> dict[str, np.ndarray]:
    """One episode; returns obs, action, reward, next_obs, terminal (true termination only), each [L, ...]."""
    obs, _ = env.reset(seed=seed)
    action_dim = env.action_space.shape[0]
    prev_action, prev_reward, state = np.zeros(action_dim, np.float32), 0.0, None
    steps = []
    done = False
    while not done:
        action, state = policy(obs, prev_action, prev_reward, state)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        steps.append((obs, action, reward, next_obs, terminated))
        obs, prev_action, prev_reward, done = next_obs, action, reward, terminated or truncated
    columns = zip(*steps, strict=True)
    names = ("obs", "action", "reward", "next_obs", "terminal")
    return {name: np.asarray(values, np.float32) for name, values in zip(names, columns, strict=True)}


def agent_policy(agent: RecurrentAgent, explore: bool) -> Policy:
    return lambda obs, prev_action, prev_reward, state: agent.act(obs, prev_action, prev_reward, state, explore)


def random_policy(rng: np.random.Generator, action_dim: int) -> Policy:
    return lambda obs, prev_action, prev_reward, state: (rng.uniform(-1, 1, action_dim).astype(np.float32), None)


def evaluate(env: gym.Env, agent: RecurrentAgent, episodes: int, rng: np.random.Generator) -> np.ndarray:
    """Returns of ``episodes`` deterministic episodes."""
    policy = agent_policy(agent, explore=False)
    return np.array([run_episode(env, policy, int(rng.integers(2**31)))["reward"].sum() for _ in range(episodes)])


def warm_up(env: gym.Env, buffer: EpisodicBuffer, steps: int, rng: np.random.Generator) -> int:
    """Fills the buffer with whole random-action episodes until it holds ``steps`` steps; returns the steps."""
    done = 0
    while done < steps:
        episode = run_episode(env, random_policy(rng, env.action_space.shape[0]), int(rng.integers(2**31)))
        buffer.add_episode(**episode)
        done += len(episode["reward"])
    return done


def device_for(cuda: int) -> torch.device:
    return torch.device(f"cuda:{cuda}" if cuda >= 0 and torch.cuda.is_available() else "cpu")


def train(
    config: Config,
    algo: str,
    seed: int,
    results: Path,
    device: torch.device | None = None,
    wandb_project: str | None = None,
) -> Path:
    """Runs (or resumes) one run until it has taken ``config.env_steps`` env steps; returns its folder.

    As pomdp-baselines' learner: the random warm-up is followed by one update per warm-up step; then each
    iteration collects one episode and makes one update per step of it, until the env steps (warm-up
    included) reach the budget. An evaluation follows every episode that takes env_steps // eval_every
    to a new value, and the last one.
    """
    folder = run_dir(results, config, algo, seed)
    record = {"task": config.env, "algo": algo, "memory": config.memory, "seed": seed, "config": as_dict(config)}
    _claim(folder, record)
    with make_env(config.env) as env, make_env(config.env) as eval_env:  # closed on exit, also on errors
        obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        agent = make_agent(algo, obs_dim, action_dim, config).to(device or "cpu")
        buffer = EpisodicBuffer(config.buffer_size, obs_dim, action_dim, config.sequence_length())
        progress = folder / "progress.csv"
        fresh = not (folder / CHECKPOINT).exists()
        if fresh:
            state = {"iteration": 0, "env_steps": 0, "evaluations": 0, "wall_s": 0.0, "wandb_id": None}
        else:
            state = _load_checkpoint(folder / CHECKPOINT, agent, buffer, rng)
        _truncate(progress, state["env_steps"])
        if state["env_steps"] >= config.env_steps:
            return folder
        logger = _wandb(folder, record, wandb_project, state) if wandb_project else None
        started = time.perf_counter() - state["wall_s"]
        bar = tqdm(total=config.env_steps, initial=state["env_steps"], desc=f"{config.env} {algo}-{config.memory}")
        losses = []
        if fresh:
            state["env_steps"] = warm_up(env, buffer, config.warmup_steps, rng)
            losses = [agent.update(buffer.sample(config.batch_size, rng)) for _ in range(state["env_steps"])]
            bar.update(state["env_steps"])
        while state["env_steps"] < config.env_steps:
            episode = run_episode(env, agent_policy(agent, explore=True), int(rng.integers(2**31)))
            buffer.add_episode(**episode)
            steps_before, state["env_steps"] = state["env_steps"], state["env_steps"] + len(episode["reward"])
            losses += [agent.update(buffer.sample(config.batch_size, rng)) for _ in range(len(episode["reward"]))]
            state["iteration"] += 1
            bar.update(len(episode["reward"]))
            finished = state["env_steps"] >= config.env_steps
            if state["env_steps"] // config.eval_every == steps_before // config.eval_every and not finished:
                continue
            returns = evaluate(eval_env, agent, config.eval_episodes, rng)
            state["evaluations"] += 1
            state["wall_s"] = time.perf_counter() - started
            row = {"env_steps": state["env_steps"], "iteration": state["iteration"]}
            row |= {"eval_return": returns.mean(), "eval_return_std": returns.std()}
            row |= pd.DataFrame(losses).mean().to_dict() | {"wall_s": state["wall_s"]}
            losses = []
            _append(progress, row)
            if logger:
                logger.log(row, step=state["env_steps"])
            bar.set_postfix(eval_return=f"{row['eval_return']:.1f}")
            if state["evaluations"] % config.checkpoint_every == 0 or finished:
                _save_checkpoint(folder / CHECKPOINT, agent, buffer, rng, state)
        bar.close()
        if logger:
            logger.finish()
    return folder


def _claim(folder: Path, record: dict[str, Any]) -> None:
    """Writes run.json, or checks that the run already in ``folder`` has the same settings."""
    path = folder / "run.json"
    if path.exists():
        stored = json.loads(path.read_text())
        changed = {key: (stored["config"].get(key), value) for key, value in record["config"].items()}
        changed = {key: values for key, values in changed.items() if values[0] != values[1]}
        if changed:
            differences = ", ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in changed.items())
            raise SystemExit(f"{folder} holds a run with other settings ({differences}); use another --results")
        return
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def _append(path: Path, row: dict[str, float]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def _truncate(path: Path, env_steps: int) -> None:
    """Drops progress rows written after the checkpoint being resumed from (all of them when starting over)."""
    if path.exists():
        table = pd.read_csv(path)
        table = table[table["env_steps"] <= env_steps]
        if table.empty:
            path.unlink()
        else:
            table.to_csv(path, index=False)


def _save_checkpoint(
    path: Path, agent: RecurrentAgent, buffer: EpisodicBuffer, rng: np.random.Generator, state: dict
) -> None:
    checkpoint = {
        "agent": agent.state_dict(),
        "optimizers": {name: optimizer.state_dict() for name, optimizer in agent.optimizers.items()},
        "buffer": buffer.state_dict(),
        "rng": rng.bit_generator.state,
        "torch_rng": torch.get_rng_state(),
        "state": state,
    }
    partial = path.with_suffix(".partial")
    torch.save(checkpoint, partial)
    os.replace(partial, path)  # a crash while saving leaves the previous checkpoint intact


def _load_checkpoint(path: Path, agent: RecurrentAgent, buffer: EpisodicBuffer, rng: np.random.Generator) -> dict:
    checkpoint = torch.load(path, map_location=next(agent.parameters()).device, weights_only=False)
    agent.load_state_dict(checkpoint["agent"])
    for name, optimizer in agent.optimizers.items():
        optimizer.load_state_dict(checkpoint["optimizers"][name])
    buffer.load_state_dict(checkpoint["buffer"])
    rng.bit_generator.state = checkpoint["rng"]
    torch.set_rng_state(checkpoint["torch_rng"])
    return checkpoint["state"]


def _wandb(folder: Path, record: dict[str, Any], project: str, state: dict) -> Any:
    """A wandb run (offline unless WANDB_MODE says otherwise), resumed with the checkpoint's run id."""
    import wandb

    state["wandb_id"] = state["wandb_id"] or uuid.uuid4().hex[:12]
    name = f"{record['task']}/{record['algo']}-{record['memory']}-seed{record['seed']}"
    # explicit mode: wandb's process-wide settings may predate WANDB_MODE (e.g. another run in this process)
    mode = os.environ.get("WANDB_MODE", "offline")
    return wandb.init(
        project=project, name=name, id=state["wandb_id"], resume="allow", dir=folder, config=record, mode=mode
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    folder = train(
        args.config,
        args.algo,
        args.seed,
        args.results.resolve(),
        device_for(args.cuda),
        None if args.no_wandb else args.wandb_project,
    )
    print(f"results: {folder}")


if __name__ == "__main__":
    main()
