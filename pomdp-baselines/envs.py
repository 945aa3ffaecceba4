"""Occluded locomotion tasks: PyBullet Ant, HalfCheetah, Hopper, Walker2D and classic Pendulum, as gymnasium envs.

A task is ``<Base>-P`` (only positions observed) or ``<Base>-V`` (only velocities observed): ``Occlude`` keeps
the table's indices of the full observation. Actions are rescaled to [-1, 1]; episodes end on the env's own
termination or, as truncation, at the time limit (1000 steps for PyBullet, 200 for Pendulum).
"""

import importlib
import importlib.util
import sys
import types
import warnings
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import RescaleAction, TimeLimit


@dataclass(frozen=True)
class Task:
    env_id: str  # a pybullet_envs.gym_locomotion_envs class, or a gymnasium id
    full_dim: int
    positions: tuple[int, ...]  # indices kept by -P
    velocities: tuple[int, ...]  # indices kept by -V
    max_steps: int


# The occlusion table: indices into each env's full observation kept by -P and by -V.
TASKS = {
    "HopperBullet": Task("HopperBulletEnv", 15, (0, 1, 2, 6, 7, 8, 10, 12, 14), (3, 4, 5, 9, 11, 13), 1000),
    "WalkerBullet": Task(
        "Walker2DBulletEnv", 22, (0, 1, 2, 6, 7, 8, 10, 12, 14, 16, 18, 20, 21), (3, 4, 5, 9, 11, 13, 15, 17, 19), 1000
    ),
    "AntBullet": Task(
        "AntBulletEnv",
        28,
        (0, 1, 2, 6, 7, 8, 10, 12, 14, 16, 18, 20, 22, 24, 25, 26, 27),
        (3, 4, 5, 9, 11, 13, 15, 17, 19, 21, 23),
        1000,
    ),
    "CheetahBullet": Task(
        "HalfCheetahBulletEnv",
        26,
        (0, 1, 2, 6, 7, 8, 10, 12, 14, 16, 18, 20, 21, 22, 23, 24, 25),
        (3, 4, 5, 9, 11, 13, 15, 17, 19),
        1000,
    ),
    "Pendulum": Task("Pendulum-v1", 3, (0, 1), (2,), 200),  # [cos theta, sin theta], [theta dot]
}
OCCLUSIONS = {"P": "positions", "V": "velocities"}
TASK_NAMES = tuple(f"{base}-{kind}" for base in TASKS for kind in OCCLUSIONS)


def parse_task(name: str) -> tuple[Task, tuple[int, ...]]:
    """'HopperBullet-P' -> (its Task, the observation indices it keeps)."""
    base, _, kind = name.rpartition("-")
    if base not in TASKS or kind not in OCCLUSIONS:
        raise ValueError(f"expected a task out of {', '.join(TASK_NAMES)}; got {name!r}")
    task = TASKS[base]
    return task, getattr(task, OCCLUSIONS[kind])


class Occlude(gym.ObservationWrapper):
    """Keeps only observation[indices] of a Box observation."""

    def __init__(self, env: gym.Env, indices: tuple[int, ...]) -> None:
        super().__init__(env)
        space = env.observation_space
        self.indices = np.asarray(indices)
        self.observation_space = gym.spaces.Box(space.low[self.indices], space.high[self.indices], dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[self.indices].astype(np.float32)


class BulletEnv(gym.Env):
    """A pybullet_envs locomotion env (old gym API: reset() -> obs, step() -> 4-tuple) as a gymnasium env.

    pybullet_envs' ``done`` is termination only (it has no time limit), so it becomes ``terminated``.
    """

    def __init__(self, class_name: str) -> None:
        self._env = getattr(_locomotion_envs(), class_name)()
        self.action_space = gym.spaces.Box(-1.0, 1.0, self._env.action_space.shape, np.float32)
        high = np.full(self._env.observation_space.shape, np.inf, np.float32)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if seed is not None:
            self._env.seed(seed)
        return np.asarray(self._env.reset(), np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        observation, reward, done, info = self._env.step(np.asarray(action, np.float32))
        return np.asarray(observation, np.float32), float(reward), bool(done), False, info

    def close(self) -> None:
        self._env.close()


def _locomotion_envs() -> types.ModuleType:
    """pybullet_envs.gym_locomotion_envs, imported without gym.

    pybullet_envs' modules use three pieces of old gym, whose API gymnasium kept: gym.Env, gym.spaces.Box and
    gym.utils.seeding.np_random. They are pointed at gymnasium's while the module is imported (and only then),
    and pybullet_envs/__init__.py, which only registers ids with gym 0.21's registry, is not run.
    """
    module = "pybullet_envs.gym_locomotion_envs"
    if module in sys.modules:
        return sys.modules[module]
    aliases = {"gym": gym, "gym.spaces": gym.spaces, "gym.utils": gym.utils, "gym.utils.seeding": gym.utils.seeding}
    package = types.ModuleType("pybullet_envs")
    package.__path__ = list(importlib.util.find_spec("pybullet_envs").submodule_search_locations)
    saved = {name: sys.modules.get(name) for name in aliases}
    sys.modules.update(aliases)
    sys.modules.setdefault("pybullet_envs", package)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "pkg_resources is deprecated", UserWarning)
            return importlib.import_module(module)
    finally:
        for name, previous in saved.items():
            if previous is None:
                del sys.modules[name]
            else:
                sys.modules[name] = previous


def make_env(name: str) -> gym.Env:
    """The occluded task ``name`` (see TASK_NAMES), actions in [-1, 1], with its time limit."""
    task, indices = parse_task(name)
    if task.env_id.endswith("BulletEnv"):
        env = TimeLimit(BulletEnv(task.env_id), task.max_steps)
    else:
        env = gym.make(task.env_id, max_episode_steps=task.max_steps)
    return RescaleAction(Occlude(env, indices), np.float32(-1), np.float32(1))
