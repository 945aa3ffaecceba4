"""Observation flattening for every popgym observation space (RLlib's new stack does not one-hot for us)."""

import gymnasium as gym
import numpy as np
import torch
from torch.nn import functional as F


def flat_size(space: gym.Space) -> int:
    """Width of ``flatten(space, obs)``: one-hot widths for discrete parts, element counts for boxes."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(space.nvec.sum())
    if isinstance(space, gym.spaces.Box | gym.spaces.MultiBinary):
        return int(np.prod(space.shape))
    if isinstance(space, gym.spaces.Tuple):
        return sum(flat_size(child) for child in space.spaces)
    if isinstance(space, gym.spaces.Dict):
        return sum(flat_size(child) for child in space.spaces.values())
    raise ValueError(
        f"unsupported observation space {space}; expected Discrete, MultiDiscrete, Box, MultiBinary, "
        "or Tuple/Dict of them"
    )


def flatten(space: gym.Space, obs) -> torch.Tensor:
    """obs of ``space`` with any leading batch dims [...] -> float32 [..., flat_size(space)].

    Discrete and MultiDiscrete parts are one-hot (relative to ``start``), Box and MultiBinary parts
    flattened, Tuple and Dict parts concatenated in the space's order.
    """
    if isinstance(space, gym.spaces.Tuple):
        return torch.cat([flatten(child, part) for child, part in zip(space.spaces, obs, strict=True)], -1)
    if isinstance(space, gym.spaces.Dict):
        return torch.cat([flatten(child, obs[key]) for key, child in space.spaces.items()], -1)
    if isinstance(space, gym.spaces.Discrete):
        return F.one_hot(obs.long() - int(space.start), int(space.n)).float()
    if isinstance(space, gym.spaces.MultiDiscrete):
        nvec, start = space.nvec.reshape(-1), space.start.reshape(-1)
        parts = obs.reshape(*obs.shape[: obs.dim() - space.nvec.ndim], -1).long() - torch.as_tensor(start).to(obs)
        one_hot = F.one_hot(parts, int(nvec.max())).flatten(-2).float()
        kept = np.concatenate([i * nvec.max() + np.arange(n) for i, n in enumerate(nvec)])
        return one_hot if len(kept) == one_hot.shape[-1] else one_hot[..., torch.as_tensor(kept, device=obs.device)]
    if isinstance(space, gym.spaces.Box | gym.spaces.MultiBinary):
        return obs.reshape(*obs.shape[: obs.dim() - len(space.shape)], -1).float()
    flat_size(space)  # raises the error naming the supported spaces
    raise AssertionError("unreachable")
