"""pomdp-baselines/: occlusion, episodic replay, recurrent SAC/TD3 updates with GRU and FFM, a learning run that
resumes after an interruption, configs, the command line and gru_vs_ffm.sh."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch

from ffm import DropInFFM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pomdp-baselines"))  # top-level modules, no package

import main
from algorithms import make_agent
from buffer import EpisodicBuffer
from config import as_dict, load_config, make_config
from envs import TASKS, BulletEnv, make_env

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


def test_short_pendulum_run_improves_over_random_and_resumes_after_an_interruption(
    tmp_path: Path, monkeypatch, request
) -> None:
    """Recurrent SAC with a GRU on Pendulum-P (velocity hidden): 5,200 steps, small networks, about 35 s on one
    core. Random actions average about -1225; this run ended at -312 (one thread), seeds 0, 2, 3 at -724, -679,
    -881. Interrupted right after its checkpoint at iteration 10 and with a stray row written after it, the
    rerun continues from the checkpoint: warm-up and iterations are neither repeated nor lost."""
    settings = {"env": "Pendulum-P", "memory": "gru", "iterations": 25, "warmup_steps": 200, "eval_every": 5}
    settings |= {"checkpoint_every": 10, "eval_episodes": 5, "batch_size": 16, "seq_len": 16, "lr": 1e-3}
    config = make_config(settings | {"mlp_hidden": [64, 64], "memory_hidden": 32})
    save = main._save_checkpoint

    def save_then_stop(*args) -> None:
        save(*args)
        raise KeyboardInterrupt

    monkeypatch.setattr(main, "_save_checkpoint", save_then_stop)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # networks this small run as fast on one core
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    with pytest.raises(KeyboardInterrupt):
        main.train(config, "sac", seed=1, results=tmp_path)
    folder = tmp_path / "pomdp" / "Pendulum-P" / "sac-gru-seed1"
    progress = folder / "progress.csv"
    assert pd.read_csv(progress)["iteration"].tolist() == [5, 10] and (folder / "checkpoint.pt").exists()
    with progress.open("a") as file:  # as if the run had logged iteration 15 and died before its next checkpoint
        file.write("3200,15,12345" + ",0" * (len(pd.read_csv(progress).columns) - 3) + "\n")
    monkeypatch.setattr(main, "_save_checkpoint", save)
    assert main.train(config, "sac", seed=1, results=tmp_path) == folder

    table = pd.read_csv(progress)
    assert table["iteration"].tolist() == [5, 10, 15, 20, 25]
    assert table["env_steps"].tolist() == [200 * (i + 1) for i in table["iteration"]]  # 200-step episodes
    assert 12345 not in table["eval_return"].tolist()
    assert {"critic_loss", "actor_loss", "alpha", "entropy", "eval_return_std", "wall_s"} <= set(table.columns)
    record = json.loads((folder / "run.json").read_text())
    assert record == {"task": "Pendulum-P", "algo": "sac", "memory": "gru", "seed": 1, "config": as_dict(config)}
    env, rng = make_env("Pendulum-P"), np.random.default_rng(0)
    random_returns = [main.run_episode(env, main.random_policy(rng, 1), s)["reward"].sum() for s in range(10)]
    assert table["eval_return"].iloc[-1] > np.mean(random_returns) + 200, (table["eval_return"], random_returns)


def test_pybullet_run_end_to_end_from_the_command_line(tmp_path: Path, capsys, monkeypatch) -> None:
    """A tiny HopperBullet-V run with TD3 and FFM through main.main, logged to offline wandb too."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    argv = ["--cfg", str(POMDP / "configs/pomdp/hopper/v/ffm.yml"), "--algo", "td3", "--seed", "2", "--cuda", "-1"]
    argv += ["--results", str(tmp_path), "--set", *(f"{key}={json.dumps(value)}" for key, value in TINY.items())]
    argv += ["warmup_steps=50", "iterations=2", "eval_every=1", "checkpoint_every=1", "eval_episodes=1"]
    main.main(argv)
    folder = tmp_path / "pomdp" / "HopperBullet-V" / "td3-ffm-seed2"
    assert f"results: {folder}" in capsys.readouterr().out
    assert len(list((folder / "wandb").glob("offline-run-*/*.wandb"))) == 1
    table = pd.read_csv(folder / "progress.csv")
    assert table.columns[:3].tolist() == ["env_steps", "iteration", "eval_return"]
    assert table["iteration"].tolist() == [1, 2] and (table["env_steps"] > 50).all()
    record = json.loads((folder / "run.json").read_text())
    assert (record["task"], record["algo"], record["memory"], record["seed"]) == ("HopperBullet-V", "td3", "ffm", 2)
    assert record["config"]["iterations"] == 2 and record["config"]["memory_hidden"] == TINY["memory_hidden"]
    main.main(argv)  # finished: nothing to do
    assert pd.read_csv(folder / "progress.csv")["iteration"].tolist() == [1, 2]
    with pytest.raises(SystemExit, match=re.escape("holds a run with other settings (iterations: 2 -> 3)")):
        main.main([*argv, "iterations=3"])


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


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cfg", "missing.yml"], "expected a YAML config file, got 'missing.yml' (no such file)"),
        (["--set", "learning_rate=1"], "unknown config setting 'learning_rate'; expected names out of: env, memory,"),
        (["--set", "lr=fast"], "config lr: expected a number, got 'fast'"),
        (["--set", "seq_len=0"], "config seq_len: expected > 0, got 0"),
        (["--set", "memory=lstm"], "config memory: expected one of gru, ffm, got 'lstm'"),
        (["--set", "env=Hopper-P"], "config env: expected a task out of HopperBullet-P, HopperBullet-V,"),
        (["--set", "checkpoint_every=6"], "config checkpoint_every: expected a multiple of eval_every, got 6"),
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
