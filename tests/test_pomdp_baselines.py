"""pomdp-baselines/: occlusion, episodic replay, recurrent SAC/TD3 updates with GRU and FFM, a learning run that
resumes after an interruption, configs, the command line and gru_vs_ffm.sh."""

import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

from ffm import FFA, DropInFFM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pomdp-baselines"))  # top-level modules, no package

import main
from algorithms import SAC, make_agent
from buffer import EpisodicBuffer
from config import as_dict, load_config, make_config
from envs import TASKS, BulletEnv, Occlude, make_env
from memory import make_memory

POMDP = Path(main.__file__).parent
# The table: (full dim, -P kept, -V kept).
TABLE = {
    "HopperBullet": (15, [0, 1, 2, 6, 7, 8, 10, 12, 14], [3, 4, 5, 9, 11, 13]),
    "WalkerBullet": (22, [0, 1, 2, 6, 7, 8, 10, 12, 14, 16, 18, 20, 21], [3, 4, 5, 9, 11, 13, 15, 17, 19]),
    "AntBullet": (
        28,
        [0, 1, 2, 6, 7, 8, 10, 12, 14, 16, 18, 20, 22, 24, 25, 26, 27],
        [3, 4, 5, 9, 11, 13, 15, 17, 19, 21, 23],
    ),
    "CheetahBullet": (
        26,
        [0, 1, 2, 6, 7, 8, 10, 12, 14, 16, 18, 20, 21, 22, 23, 24, 25],
        [3, 4, 5, 9, 11, 13, 15, 17, 19],
    ),
    "Pendulum": (3, [0, 1], [2]),  # -P: cos and sin of the angle (velocity hidden); -V: angular velocity only
}
TINY = {"batch_size": 4, "seq_len": 6, "mlp_hidden": [16, 16], "memory_hidden": 8, "obs_embed": 8}
TINY |= {"action_embed": 4, "reward_embed": 4, "ffm_memory_size": 4, "ffm_context_size": 2}


def full_env(base: str) -> gym.Env:
    task = TASKS[base]
    if base == "Pendulum":
        return gym.make(task.env_id, max_episode_steps=task.max_steps)
    return gym.wrappers.TimeLimit(BulletEnv(task.env_id), task.max_steps)


@pytest.mark.parametrize("base", list(TABLE))
def test_occlusion_keeps_exactly_the_tables_indices(base: str) -> None:
    full_dim, positions, velocities = TABLE[base]
    assert sorted(positions + velocities) == list(range(full_dim))  # -P and -V split the observation
    full = full_env(base)
    assert full.observation_space.shape == (full_dim,)
    occluded = {kind: make_env(f"{base}-{kind}") for kind in "PV"}
    for kind, kept in (("P", positions), ("V", velocities)):
        assert occluded[kind].observation_space.shape == (len(kept),)
        assert occluded[kind].action_space.low.min() == -1 and occluded[kind].action_space.high.max() == 1
        expected, _ = full.reset(seed=3)
        observation, _ = occluded[kind].reset(seed=3)
        np.testing.assert_array_equal(observation, expected[kept])
        action = np.full(full.action_space.shape, 0.5, np.float32)  # in [-1, 1]: the env's range at 3/4
        low, high = full.action_space.low, full.action_space.high
        expected = full.step(low + 0.75 * (high - low))[0]
        np.testing.assert_allclose(occluded[kind].step(action)[0], expected[kept], rtol=1e-6)
    for env in (full, *occluded.values()):
        env.close()


def episode(index: int, length: int, terminated: bool) -> dict[str, np.ndarray]:
    """An episode whose observations encode (episode, step) as 100 * episode + step, to trace samples back."""
    code = 100 * index + np.arange(length, dtype=np.float32)
    return {
        "obs": np.stack([code, -code], 1),
        "action": code[:, None] + 0.25,
        "reward": code + 0.5,
        "next_obs": np.stack([code + 1, -code - 1], 1),
        "terminal": (np.arange(length) == length - 1) & terminated,
    }


def test_sampled_sequences_stay_inside_one_episode_and_mask_short_ones() -> None:
    lengths, terminated = {1: 3, 2: 10, 3: 7}, {1: True, 2: False, 3: True}
    buffer = EpisodicBuffer(100, obs_dim=2, action_dim=1, seq_len=5)
    for index, length in lengths.items():
        buffer.add_episode(**episode(index, length, terminated[index]))
    assert len(buffer) == 20 and buffer.num_episodes == 3
    batch = buffer.sample(3000, np.random.default_rng(0))
    assert batch.obs.shape == (6, 3000, 2) and batch.action.shape == (5, 3000, 1)
    assert batch.reward.shape == batch.terminal.shape == batch.mask.shape == (5, 3000)
    starts = []
    for b in range(3000):
        first = int(batch.obs[0, b, 0])
        index, start = divmod(first, 100)
        starts.append((index, start))
        real = min(5, lengths[index] - start)  # steps before the episode ends
        np.testing.assert_array_equal(batch.mask[:, b], np.arange(5) < real)
        steps = first + np.arange(real)
        np.testing.assert_array_equal(batch.obs[: real + 1, b, 0], np.append(steps, steps[-1] + 1))
        np.testing.assert_array_equal(batch.obs[: real + 1, b, 1], -batch.obs[: real + 1, b, 0])
        np.testing.assert_array_equal(batch.action[:real, b, 0], steps + 0.25)
        np.testing.assert_array_equal(batch.reward[:real, b], steps + 0.5)
        np.testing.assert_array_equal(batch.terminal[:real, b], (steps % 100 == lengths[index] - 1) & terminated[index])
    # valid starts: s in 0..max(L - 5, 0) of every episode, drawn uniformly (10 of them, 300 expected each)
    valid = {(1, 0)} | {(2, s) for s in range(6)} | {(3, s) for s in range(3)}
    counts = pd.Series(starts).value_counts()
    assert set(counts.index) == valid
    assert counts.min() > 220 and counts.max() < 380


def test_buffer_evicts_the_episodes_a_new_one_overwrites() -> None:
    buffer = EpisodicBuffer(12, obs_dim=2, action_dim=1, seq_len=4)
    rng = np.random.default_rng(0)

    def stored() -> set[int]:
        return set((buffer.sample(500, rng).obs[0, :, 0] // 100).astype(int).tolist())

    buffer.add_episode(**episode(1, 5, True))
    buffer.add_episode(**episode(2, 5, True))
    assert stored() == {1, 2} and len(buffer) == 10
    buffer.add_episode(**episode(3, 5, True))  # does not fit at the end: wraps to 0 over episode 1
    assert stored() == {2, 3} and len(buffer) == 10
    buffer.add_episode(**episode(4, 4, False))  # written at 5..8, over episode 2
    assert stored() == {3, 4} and len(buffer) == 9
    copy = EpisodicBuffer(12, obs_dim=2, action_dim=1, seq_len=4)
    copy.load_state_dict(buffer.state_dict())
    for ours, theirs in zip(
        buffer.sample(64, np.random.default_rng(1)), copy.sample(64, np.random.default_rng(1)), strict=True
    ):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"terminal": None}, "expected an episode with fields obs, action, reward, next_obs, terminal, got action, "),
        ({"reward": np.zeros(4)}, "expected fields of one length in [1, 12]"),
    ],
)
def test_bad_episode_is_one_clear_error(change: dict, message: str) -> None:
    data = {name: value for name, value in (episode(1, 5, True) | change).items() if value is not None}
    with pytest.raises(ValueError, match=re.escape(message)):
        EpisodicBuffer(12, obs_dim=2, action_dim=1, seq_len=4).add_episode(**data)


def filled_buffer(config, obs_dim: int, action_dim: int) -> EpisodicBuffer:
    """Random episodes, one shorter than seq_len (masked steps) and one terminated."""
    rng = np.random.default_rng(0)
    buffer = EpisodicBuffer(1000, obs_dim, action_dim, config.seq_len)
    for length, terminated in ((9, False), (3, True), (12, True)):
        buffer.add_episode(
            obs=rng.normal(size=(length, obs_dim)),
            action=rng.uniform(-1, 1, (length, action_dim)),
            reward=rng.normal(size=length),
            next_obs=rng.normal(size=(length, obs_dim)),
            terminal=(np.arange(length) == length - 1) & terminated,
        )
    return buffer


@pytest.mark.parametrize("memory", ["gru", "ffm"])
@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_updates_change_every_trained_parameter(algo: str, memory: str) -> None:
    torch.manual_seed(0)
    config = make_config({"env": "Pendulum-P", "memory": memory} | TINY)
    agent = make_agent(algo, 2, 1, config)
    expected_memory = torch.nn.GRU if memory == "gru" else DropInFFM
    assert type(agent.actor.history.memory) is expected_memory and type(agent.critic.history.memory) is expected_memory
    before = {name: value.clone() for name, value in agent.state_dict().items()}
    buffer, rng = filled_buffer(config, 2, 1), np.random.default_rng(0)
    logs = [agent.update(buffer.sample(config.batch_size, rng)) for _ in range(3)]
    expected = {"critic_loss", "q", "actor_loss"} | ({"alpha", "entropy"} if algo == "sac" else set())
    assert set(logs[-1]) == expected and all(np.isfinite(list(log.values())).all() for log in logs)
    after = agent.state_dict()
    unchanged = [name for name in before if torch.equal(before[name], after[name])]
    assert unchanged == []  # actor, critic, their memories, targets (soft-updated) and SAC's alpha all moved
    for name, value in agent.critic_target.state_dict().items():  # targets trail: tau = 0.005 of the way
        assert not torch.equal(value, agent.critic.state_dict()[name])


@pytest.mark.parametrize("memory", ["gru", "ffm"])
def test_acting_step_by_step_matches_the_sequence_pass(memory: str) -> None:
    """The policy sees the same history when acting (one step at a time, state carried) as in updates."""
    torch.manual_seed(0)
    config = make_config({"env": "Pendulum-P", "memory": memory} | TINY)
    agent = make_agent("td3", 2, 1, config)
    obs, actions, rewards = torch.randn(7, 1, 2), torch.rand(7, 1, 1) * 2 - 1, torch.randn(7, 1)
    prev_action = torch.cat([torch.zeros(1, 1, 1), actions[:-1]])
    prev_reward = torch.cat([torch.zeros(1, 1), rewards[:-1]])
    with torch.no_grad():
        sequence = torch.tanh(agent.actor(obs, prev_action, prev_reward)[0])[:, 0]
        state = None
        for t in range(7):
            action, state = agent.act(obs[t, 0].numpy(), prev_action[t, 0].numpy(), float(prev_reward[t]), state, False)
            np.testing.assert_allclose(action, sequence[t].numpy(), atol=1e-5)
        changed = obs.clone()
        changed[0] += 1  # o_0 reaches the last action through the memory only
        assert not torch.allclose(torch.tanh(agent.actor(changed, prev_action, prev_reward)[0])[-1, 0], sequence[-1])


def stop_after_checkpoints(monkeypatch) -> Callable:
    """Makes every checkpoint save end the run with KeyboardInterrupt (a crash right after it); returns the real
    save function, to put back."""
    save = main._save_checkpoint

    def save_then_stop(*args) -> None:
        save(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(main, "_save_checkpoint", save_then_stop)
    return save


def test_short_pendulum_run_improves_over_random_and_resumes_after_an_interruption(
    tmp_path: Path, monkeypatch, request
) -> None:
    """Recurrent SAC with a GRU on Pendulum-P (velocity hidden): 8,200 env steps (200 warm-up steps and their 200
    updates, then 40 episodes), small networks, about 60 s on one core. Random actions average about -1225; this
    run ended at -552 (its evaluations rose from -1280). Interrupted right after its checkpoint at 2,000 env steps
    and with a stray row written after it, the rerun continues from the checkpoint: warm-up and episodes are
    neither repeated nor lost."""
    settings = {"env": "Pendulum-P", "memory": "gru", "env_steps": 8200, "warmup_steps": 200, "eval_every": 1000}
    settings |= {"checkpoint_every": 2, "eval_episodes": 5, "batch_size": 16, "seq_len": 16, "lr": 1e-3}
    config = make_config(settings | {"mlp_hidden": [64, 64], "memory_hidden": 32})
    save = stop_after_checkpoints(monkeypatch)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # networks this small run as fast on one core
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    with pytest.raises(KeyboardInterrupt):
        main.train(config, "sac", seed=1, results=tmp_path)
    folder = tmp_path / "pomdp" / "Pendulum-P" / "sac-gru-seed1"
    progress = folder / "progress.csv"
    assert pd.read_csv(progress)["env_steps"].tolist() == [1000, 2000] and (folder / "checkpoint.pt").exists()
    with progress.open("a") as file:  # as if the run had logged 3,000 steps and died before its next checkpoint
        file.write("3000,14,12345" + ",0" * (len(pd.read_csv(progress).columns) - 3) + "\n")
    monkeypatch.setattr(main, "_save_checkpoint", save)
    assert main.train(config, "sac", seed=1, results=tmp_path) == folder

    table = pd.read_csv(progress)
    # 200-step episodes after 200 warm-up steps: an evaluation every 1,000 steps and at the end
    assert table["env_steps"].tolist() == [*range(1000, 8001, 1000), 8200]
    assert table["iteration"].tolist() == [(steps - 200) // 200 for steps in table["env_steps"]]
    assert 12345 not in table["eval_return"].tolist()
    assert {"critic_loss", "actor_loss", "alpha", "entropy", "eval_return_std", "wall_s"} <= set(table.columns)
    record = json.loads((folder / "run.json").read_text())
    assert record == {"task": "Pendulum-P", "algo": "sac", "memory": "gru", "seed": 1, "config": as_dict(config)}
    env, rng = make_env("Pendulum-P"), np.random.default_rng(0)
    random_returns = [main.run_episode(env, main.random_policy(rng, 1), s)["reward"].sum() for s in range(10)]
    assert table["eval_return"].iloc[-1] > np.mean(random_returns) + 200, (table["eval_return"], random_returns)


def short_pendulum(length: int, events: list) -> Callable[[str], gym.Env]:
    """make_env for Pendulum-P episodes cut at ``length`` steps; the first env made (main's training env) logs
    "episode" to ``events`` at every reset."""

    def make(name: str) -> gym.Env:
        env = gym.make("Pendulum-v1", max_episode_steps=length)
        if not made:
            env = LogResets(env, events)
        made.append(name)
        return gym.wrappers.RescaleAction(Occlude(env, (0, 1)), np.float32(-1), np.float32(1))

    made = []
    return make


class LogResets(gym.Wrapper):
    def __init__(self, env: gym.Env, events: list) -> None:
        super().__init__(env)
        self.events = events

    def reset(self, **kwargs):
        self.events.append("episode")
        return super().reset(**kwargs)


def test_budget_counts_env_steps_and_warm_up_is_followed_by_one_update_per_step(tmp_path: Path, monkeypatch) -> None:
    """7-step episodes, budget 100 env steps, 20 warm-up steps: pomdp-baselines' loop takes 3 random episodes
    (21 steps) and 21 updates, then policy episodes of 7 steps and 7 updates each until the env steps reach 100."""
    events = []
    monkeypatch.setattr(main, "make_env", short_pendulum(7, events))
    update = SAC.update

    def logged_update(agent, batch):
        events.append("update")
        return update(agent, batch)

    monkeypatch.setattr(SAC, "update", logged_update)
    settings = {"env": "Pendulum-P", "memory": "gru", "env_steps": 100, "warmup_steps": 20, "eval_every": 30}
    config = make_config(TINY | settings | {"eval_episodes": 1, "checkpoint_every": 1})
    main.train(config, "sac", seed=0, results=tmp_path)

    runs = "".join("e" if event == "episode" else "u" for event in events).split("e")[1:]  # updates after each
    warm_up, policy = 3, 12  # 3 x 7 >= 20 random steps; then 21 + 12 x 7 = 105 >= 100 (21 + 11 x 7 = 98 < 100)
    assert [len(updates) for updates in runs] == [0] * (warm_up - 1) + [21] + [7] * policy
    table = pd.read_csv(tmp_path / "pomdp" / "Pendulum-P" / "sac-gru-seed0" / "progress.csv")
    steps = [21 + 7 * episode for episode in range(1, policy + 1)]
    crossed = [b for a, b in zip([21, *steps], steps, strict=False) if b // 30 > a // 30]  # a new multiple of 30
    assert table["env_steps"].tolist() == [*crossed, 105] == [35, 63, 91, 105]  # and the end
    assert table["iteration"].tolist() == [(s - 21) // 7 for s in table["env_steps"]]


def test_resume_reproduces_an_uninterrupted_run_bit_for_bit(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(main, "make_env", short_pendulum(9, []))
    settings = {"env": "Pendulum-P", "memory": "ffm", "env_steps": 120, "warmup_steps": 20, "eval_every": 30}
    config = make_config(TINY | settings | {"eval_episodes": 2, "checkpoint_every": 2})
    whole = main.train(config, "td3", seed=3, results=tmp_path / "whole")
    save = stop_after_checkpoints(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        main.train(config, "td3", seed=3, results=tmp_path / "resumed")
    monkeypatch.setattr(main, "_save_checkpoint", save)
    resumed = main.train(config, "td3", seed=3, results=tmp_path / "resumed")
    tables = [pd.read_csv(folder / "progress.csv").drop(columns="wall_s") for folder in (whole, resumed)]
    assert len(tables[0]) > 2  # the interruption came after 2 of them
    pd.testing.assert_frame_equal(*tables, check_exact=True)
    states = [torch.load(folder / main.CHECKPOINT, weights_only=False)["agent"] for folder in (whole, resumed)]
    assert all(torch.equal(states[0][name], states[1][name]) for name in states[0])


def test_pybullet_run_end_to_end_from_the_command_line(tmp_path: Path, capsys, monkeypatch) -> None:
    """A tiny HopperBullet-V run with TD3 and FFM through main.main, logged to offline wandb too."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    argv = ["--cfg", str(POMDP / "configs/pomdp/hopper/v/ffm.yml"), "--algo", "td3", "--seed", "2", "--cuda", "-1"]
    argv += ["--results", str(tmp_path), "--set", *(f"{key}={json.dumps(value)}" for key, value in TINY.items())]
    argv += ["warmup_steps=50", "env_steps=120", "eval_every=1", "checkpoint_every=1", "eval_episodes=1"]
    main.main(argv)
    folder = tmp_path / "pomdp" / "HopperBullet-V" / "td3-ffm-seed2"
    assert f"results: {folder}" in capsys.readouterr().out
    assert len(list((folder / "wandb").glob("offline-run-*/*.wandb"))) == 1
    table = pd.read_csv(folder / "progress.csv")
    assert table.columns[:3].tolist() == ["env_steps", "iteration", "eval_return"]
    # Hopper's random and early policy episodes fall within tens of steps: the run stops on env steps
    assert table["iteration"].tolist() == list(range(1, len(table) + 1)) and len(table) > 1
    assert table["env_steps"].is_monotonic_increasing and table["env_steps"].iloc[-1] >= 120
    record = json.loads((folder / "run.json").read_text())
    assert (record["task"], record["algo"], record["memory"], record["seed"]) == ("HopperBullet-V", "td3", "ffm", 2)
    assert record["config"]["env_steps"] == 120 and record["config"]["memory_hidden"] == TINY["memory_hidden"]
    main.main(argv)  # finished: nothing to do
    pd.testing.assert_frame_equal(pd.read_csv(folder / "progress.csv"), table)
    with pytest.raises(SystemExit, match=re.escape("holds a run with other settings (env_steps: 120 -> 130)")):
        main.main([*argv, "env_steps=130"])


def test_every_config_file_loads() -> None:
    files = sorted((POMDP / "configs" / "pomdp").glob("*/*/*.yml"))
    assert len(files) == 5 * 2 * 2
    names = {"ant": "AntBullet", "cheetah": "CheetahBullet", "hopper": "HopperBullet", "walker": "WalkerBullet"}
    for path in files:
        config = load_config(path)
        task, kind, memory = path.relative_to(POMDP / "configs" / "pomdp").with_suffix("").parts
        assert config.env == f"{names.get(task, task.capitalize())}-{kind.upper()}" and config.memory == memory
        if task != "pendulum":  # the PyBullet tasks run pomdp-baselines' defaults
            assert config == make_config({"env": config.env, "memory": memory})


@pytest.mark.parametrize("kind", ["p", "v"])
@pytest.mark.parametrize("memory", ["gru", "ffm"])
def test_pendulum_configs_are_the_authors_pendulum_v_settings(kind: str, memory: str) -> None:
    """Their configs/pomdp/pendulum/v: 200-step episodes, 5 warm-up episodes and 250 iterations, evaluation of 20
    episodes every 5 iterations, gamma 0.9, batch 32 whole episodes, embeddings 8 (action, reward) and 32, MLPs
    [128, 128] (-P has no original config and takes the same)."""
    config = load_config(POMDP / f"configs/pomdp/pendulum/{kind}/{memory}.yml")
    episode = 200
    assert (config.env_steps, config.warmup_steps) == (episode * (5 + 250), episode * 5)
    assert (config.eval_every, config.eval_episodes) == (5 * episode, 20)
    assert (config.gamma, config.batch_size, config.sequence_length()) == (0.9, 32, episode)
    assert (config.action_embed, config.reward_embed, config.obs_embed, config.memory_hidden) == (8, 8, 32, 128)
    assert config.mlp_hidden == (128, 128)
    with make_env(config.env) as env:
        steps = main.run_episode(env, main.random_policy(np.random.default_rng(0), 1), seed=0)
    buffer = EpisodicBuffer(1000, 1 + (kind == "p"), 1, config.sequence_length())
    buffer.add_episode(**steps)
    batch = buffer.sample(config.batch_size, np.random.default_rng(0))
    assert batch.mask.shape == (episode, 32) and batch.mask.all()  # whole episodes, nothing padded


def uniform_bound(values: torch.Tensor) -> float:
    """The half-width b of U(-b, b) estimated from a sample: b = sqrt(3) sd."""
    return math.sqrt(3) * values.std().item()


@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_initialisation_is_torchkits(algo: str) -> None:
    """MLP hidden layers W ~ U(+-1/sqrt(fan)), fan = out_features (torchkit's fanin_init reads weight.size(0)),
    bias 0.1; last layers U(+-3e-3) (Q) and U(+-1e-3) (policy); embeddings torch.nn.Linear's default
    U(+-1/sqrt(in_features)); the GRU orthogonal with zero biases. So Q starts near 0 and SAC's std near 1."""
    torch.manual_seed(0)
    config = make_config({"env": "HopperBullet-P", "memory": "gru"})
    obs_dim, action_dim = 9, 3
    agent = make_agent(algo, obs_dim, action_dim, config)
    heads = {"q1": (agent.critic.q1, 3e-3), "q2": (agent.critic.q2, 3e-3), "policy": (agent.actor.head, 1e-3)}
    for name, (head, last_init) in heads.items():
        linears = [layer for layer in head if isinstance(layer, torch.nn.Linear)]
        assert [layer.out_features for layer in linears[:-1]] == [256, 256], name
        for layer in linears[:-1]:
            bound = 1 / math.sqrt(layer.weight.shape[0])
            assert layer.weight.abs().max() <= bound and uniform_bound(layer.weight) == pytest.approx(bound, rel=0.05)
            assert torch.equal(layer.bias, torch.full_like(layer.bias, 0.1)), name
        for values in (linears[-1].weight, linears[-1].bias):
            assert values.abs().max() <= last_init, name
        assert uniform_bound(linears[-1].weight) == pytest.approx(last_init, rel=0.1), name
    for embedding in (agent.actor.history.obs[0], agent.critic.shortcut[0], agent.actor.current_obs[0]):
        bound = 1 / math.sqrt(embedding.in_features)
        for values in (embedding.weight, embedding.bias):
            assert values.abs().max() <= bound
        assert uniform_bound(embedding.weight) == pytest.approx(bound, rel=0.1)
    for gru in (agent.actor.history.memory, agent.critic.history.memory):
        for weight in (gru.weight_ih_l0, gru.weight_hh_l0):  # [3H, in]: orthonormal columns
            torch.testing.assert_close(weight.T @ weight, torch.eye(weight.shape[1]), atol=1e-5, rtol=0)
        assert not gru.bias_ih_l0.any() and not gru.bias_hh_l0.any()

    sequences = torch.randn(65, 64, obs_dim), torch.rand(65, 64, action_dim) * 2 - 1, torch.randn(65, 64)
    with torch.no_grad():
        head = agent.actor(*sequences)[0]
        h, _ = agent.critic.history(*sequences)
        q1, q2 = agent.critic.q(h, sequences[0], torch.rand(65, 64, action_dim) * 2 - 1)
    assert q1.abs().max() < 0.05 and q2.abs().max() < 0.05
    if algo == "sac":
        mean, log_std = head.chunk(2, -1)
        assert mean.abs().max() < 0.02 and log_std.abs().max() < 0.02  # std = exp(log_std) about 1


def test_ffm_memory_keeps_ffms_own_initialisation() -> None:
    """The authors' hook adds no orthogonal init to FFM: same seed, same parameters as a bare DropInFFM."""
    config = make_config({"env": "HopperBullet-P", "memory": "ffm"})
    torch.manual_seed(5)
    memory = make_memory("ffm", 64, 128)
    torch.manual_seed(5)
    bare = DropInFFM(64, 128, output_size=128, memory_size=32, context_size=4, max_period=128)
    assert memory.state_dict().keys() == bare.state_dict().keys()
    assert all(torch.equal(value, bare.state_dict()[name]) for name, value in memory.state_dict().items())
    assert (config.ffm_memory_size, config.ffm_context_size, config.ffm_max_period) == (32, 4, 128)


def test_ffm_memory_is_the_authors_hook_with_ffas_effective_decays() -> None:
    """DropInFFM m 32, c 4, output 128, max_period 128; FFA's a_0 = linspace(-(floor - 0.01), ln(0.01) / 128, 32)
    and a clamped to [-floor, ~0] on every forward, floor = ln(float64 max) / 1024 - 0.01 (the authors' guard for
    their 1024-step rescaled scan)."""
    config = make_config({"env": "HopperBullet-P", "memory": "ffm"})
    agent = make_agent("sac", 9, 3, config)
    floor = math.log(np.finfo(np.float64).max) / 1024 - 0.01
    assert floor == pytest.approx(0.683147, abs=1e-6)
    expected = torch.linspace(-(floor - 0.01), math.log(0.01) / 128, 32)
    for memory in (agent.actor.history.memory, agent.critic.history.memory):
        y, state = memory(torch.randn(5, 2, agent.actor.history.input_size))
        assert y.shape == (5, 2, 128) and state.shape == (1, 2, 2 * 32 * 4)
        (ffa,) = [module for module in memory.modules() if isinstance(module, FFA)]
        assert (ffa.memory_size, ffa.context_size) == (32, 4)
        torch.testing.assert_close(ffa.a.detach(), expected)
        with torch.no_grad():
            ffa.a[:2] = torch.tensor([-5.0, 1.0])  # past the floor, and growing
        assert ffa.decay_rates()[0].item() == pytest.approx(-floor) and ffa.decay_rates()[1] < 0
    assert expected[0].item() == pytest.approx(-0.673147, abs=1e-6)
    assert expected[-1].item() == pytest.approx(-0.035977, abs=1e-6)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cfg", "missing.yml"], "expected a YAML config file, got 'missing.yml' (no such file)"),
        (["--set", "learning_rate=1"], "unknown config setting 'learning_rate'; expected names out of: env, memory,"),
        (["--set", "lr=fast"], "config lr: expected a number, got 'fast'"),
        (["--set", "seq_len=0"], "config seq_len: expected > 0 or -1, got 0"),
        (["--set", "memory=lstm"], "config memory: expected one of gru, ffm, got 'lstm'"),
        (["--set", "env=Hopper-P"], "config env: expected a task out of HopperBullet-P, HopperBullet-V,"),
        (["--set", "warmup_steps=51000"], "config warmup_steps: expected < env_steps, got 51000"),
        (["--set", "iterations"], "--set: expected KEY=VALUE, got 'iterations'"),
    ],
)
def test_bad_settings_are_one_clear_error(argv: list[str], message: str, capsys) -> None:
    cfg = ["--cfg", str(POMDP / "configs/pomdp/pendulum/p/gru.yml")]
    with pytest.raises(SystemExit):
        main.parse_args(cfg + argv if argv[0] != "--cfg" else argv)
    assert message in capsys.readouterr().err


def test_gru_vs_ffm_runs_the_groups_configs_in_parallel(tmp_path: Path) -> None:
    script = POMDP / "gru_vs_ffm.sh"
    environ = os.environ | {"PYTHON": "echo", "LOG_DIR": str(tmp_path)}  # each "run" logs its command line
    done = subprocess.run(
        [script, "7", "-1", "CONFIGS_V", "--algo", "td3"], env=environ, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "CONFIGS_V seed 7: 8 of 8 runs finished" in done.stdout
    commands = {path.name: path.read_text().strip() for path in tmp_path.glob("*.log")}
    cpu_td3 = "--cuda -1 --algo td3"
    expected = {
        f"{task}-v-{memory}-seed7.log": f"main.py --cfg configs/pomdp/{task}/v/{memory}.yml --seed 7 {cpu_td3}"
        for task in ("ant", "cheetah", "hopper", "walker")
        for memory in ("gru", "ffm")
    }
    assert commands == expected
    for group, memory in (("CONFIGS_RNN_P", "gru"), ("CONFIGS_FFM_P", "ffm")):
        done = subprocess.run([script, "0", "0", group], env=environ, capture_output=True, text=True)
        assert done.returncode == 0 and f"hopper/p/{memory}.yml" in done.stdout and "4 of 4" in done.stdout
    chosen = environ | {"TASKS": "pendulum hopper"}
    done = subprocess.run([script, "3", "-1", "CONFIGS_P"], env=chosen, capture_output=True, text=True)
    assert done.returncode == 0 and "4 of 4" in done.stdout
    assert {line.split(" -> ")[0] for line in done.stdout.splitlines() if " -> " in line} == {
        f"configs/pomdp/{task}/p/{memory}.yml" for task in ("pendulum", "hopper") for memory in ("gru", "ffm")
    }
    for tasks in ("hopper swimmer", " "):
        done = subprocess.run([script, "0", "-1", "CONFIGS_P"], env=environ | {"TASKS": tasks}, capture_output=True)
        assert done.returncode == 2 and b"TASKS: " in done.stderr
    done = subprocess.run([script, "0", "-1", "CONFIGS_Q"], env=environ, capture_output=True, text=True)
    assert done.returncode == 2
    assert "CONFIG_GROUP: unknown group 'CONFIGS_Q'; expected one of CONFIGS_RNN_P CONFIGS_FFM_P" in done.stderr
