"""Run settings: a YAML file names the task and memory; every other setting defaults to pomdp-baselines' values."""

import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from envs import TASK_NAMES, parse_task
from memory import MEMORIES


@dataclass(frozen=True)
class Config:
    env: str  # a task of envs.TASK_NAMES, e.g. HopperBullet-P
    memory: str  # gru or ffm
    # loop (pomdp-baselines' budget: max episode length x (warm-up episodes + iterations) = 1000 x (10 + 1500))
    env_steps: int = 1_510_000  # training budget, warm-up included; the last episode may end past it
    warmup_steps: int = 10_000  # random-action steps (whole episodes), then one update per warm-up step
    eval_every: int = 4_000  # env steps: evaluate whenever env_steps // eval_every grows
    eval_episodes: int = 10  # deterministic
    checkpoint_every: int = 5  # evaluations
    # replay
    buffer_size: int = 1_000_000  # transitions
    batch_size: int = 64  # sequences per update
    seq_len: int = 64  # steps per sampled sequence; -1: the task's whole episodes (its time limit)
    # learning
    gamma: float = 0.99
    tau: float = 0.005
    lr: float = 3e-4  # actor, critic and SAC's alpha
    # networks
    obs_embed: int = 32
    action_embed: int = 16
    reward_embed: int = 16
    memory_hidden: int = 128
    mlp_hidden: tuple[int, ...] = (256, 256)
    ffm_memory_size: int = 32
    ffm_context_size: int = 4
    ffm_max_period: float = 128
    # TD3
    exploration_noise: float = 0.1
    target_noise: float = 0.2
    target_noise_clip: float = 0.5

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if not _has_type(value, field.type):
                expected = _TYPE_NAMES.get(field.type, "a list of positive whole numbers")
                raise ValueError(f"config {field.name}: expected {expected}, got {value!r}")
        try:
            parse_task(self.env)
        except ValueError as error:
            raise ValueError(f"config env: {error}") from None
        if self.memory not in MEMORIES:
            raise ValueError(f"config memory: expected one of {', '.join(MEMORIES)}, got {self.memory!r}")
        positive = ("env_steps", "eval_every", "eval_episodes", "checkpoint_every", "buffer_size", "batch_size", "lr")
        sizes = ("obs_embed", "action_embed", "reward_embed", "memory_hidden", "ffm_memory_size", "ffm_context_size")
        for name in (*positive, *sizes, "ffm_max_period"):
            _require(name, getattr(self, name), getattr(self, name) > 0, "> 0")
        for name in ("warmup_steps", "exploration_noise", "target_noise", "target_noise_clip"):
            _require(name, getattr(self, name), getattr(self, name) >= 0, ">= 0")
        for name in ("gamma", "tau"):
            _require(name, getattr(self, name), 0 < getattr(self, name) <= 1, "in (0, 1]")
        _require("seq_len", self.seq_len, self.seq_len > 0 or self.seq_len == WHOLE_EPISODES, "> 0 or -1")
        _require("warmup_steps", self.warmup_steps, self.warmup_steps < self.env_steps, "< env_steps")

    def sequence_length(self) -> int:
        """seq_len, with -1 resolved to the task's time limit (whole episodes)."""
        return parse_task(self.env)[0].max_steps if self.seq_len == WHOLE_EPISODES else self.seq_len


WHOLE_EPISODES = -1  # seq_len: sample whole episodes, as pomdp-baselines' sampled_seq_len -1
_TYPE_NAMES = {int: "a whole number", float: "a number", str: "a string"}


def _has_type(value: Any, kind: Any) -> bool:
    """value is an int (not a bool), a float (or int), a str, or a tuple of positive ints, as kind says."""
    if kind in (int, float) and isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, int | float)
    if kind in (int, str):
        return isinstance(value, kind)
    return isinstance(value, tuple) and all(
        isinstance(item, int) and not isinstance(item, bool) and item > 0 for item in value
    )


def _require(name: str, value: Any, ok: bool, expected: str) -> None:
    if not ok:
        raise ValueError(f"config {name}: expected {expected}, got {value!r}")


def make_config(settings: dict[str, Any]) -> Config:
    """Config from a mapping of field names (lists become tuples); unknown names are refused."""
    if not isinstance(settings, dict):
        raise ValueError(f"expected a mapping of config settings, got {type(settings).__name__}")
    known = [field.name for field in fields(Config)]
    unknown = [name for name in settings if name not in known]
    if unknown:
        raise ValueError(f"unknown config setting {unknown[0]!r}; expected names out of: {', '.join(known)}")
    missing = [name for name in ("env", "memory") if name not in settings]
    if missing:
        raise ValueError(f"config needs {' and '.join(missing)} (tasks: {', '.join(TASK_NAMES)})")
    floats = {field.name for field in fields(Config) if field.type is float}
    return Config(**{name: _coerce(value, name in floats) for name, value in settings.items()})


def _coerce(value: Any, is_float: bool) -> Any:
    """YAML lists -> tuples; for a float setting, YAML 1.1's strings like '3e-4' -> 0.0003."""
    if isinstance(value, list):
        return tuple(value)
    if is_float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """The YAML file at ``path`` with ``overrides`` applied on top."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"expected a YAML config file, got {str(path)!r} (no such file)")
    settings = yaml.safe_load(path.read_text()) or {}
    if not isinstance(settings, dict):
        raise ValueError(f"{path}: expected a mapping of settings, got {type(settings).__name__}")
    return make_config(settings | (overrides or {}))


def as_dict(config: Config) -> dict[str, Any]:
    """JSON- and YAML-ready settings (tuples as lists)."""
    return {
        name: list(value) if isinstance(value, tuple) else value for name, value in dataclasses.asdict(config).items()
    }
