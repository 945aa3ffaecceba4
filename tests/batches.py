"""Observation/action spaces of every popgym kind and RLlib-shaped batches for the model tests."""

import gymnasium as gym
import numpy as np
import torch

# one observation/action pair per popgym space kind (after PreviousAction + Antialias: Tuples)
SPACES = {
    "discrete": (
        gym.spaces.Tuple((gym.spaces.Discrete(4), gym.spaces.Discrete(4), gym.spaces.Discrete(2))),
        gym.spaces.Discrete(4),
    ),
    "multidiscrete": (
        gym.spaces.Tuple((gym.spaces.MultiDiscrete([3, 3, 5]), gym.spaces.MultiDiscrete([8, 8]))),
        gym.spaces.MultiDiscrete([8, 8]),
    ),
    "box": (
        gym.spaces.Tuple((gym.spaces.Box(-1, 1, (2,)), gym.spaces.Box(-2, 2, (1,)), gym.spaces.Discrete(2))),
        gym.spaces.Box(-2, 2, (1,)),
    ),
}


def sample_batch(space: gym.Space, batch: int, steps: int, seed: int = 0):
    """Observations [batch, steps, ...] drawn from space, as RLlib's batches hold them (tuples of tensors)."""
    space.seed(seed)
    samples = [[space.sample() for _ in range(steps)] for _ in range(batch)]
    if isinstance(space, gym.spaces.Tuple):
        return tuple(torch.as_tensor(np.array([[s[i] for s in row] for row in samples])) for i in range(len(space)))
    return torch.as_tensor(np.array(samples))


def batched_state(module, batch: int) -> dict[str, torch.Tensor]:
    return {
        key: torch.as_tensor(value).expand(batch, *value.shape).clone()
        for key, value in module.get_initial_state().items()
    }


def build_module(name: str, spaces: str = "discrete", **model_config):
    """The registered model ``name`` as an RLlib RLModule for the SPACES pair ``spaces``, seeded."""
    from models.rllib import module_spec

    torch.manual_seed(0)
    observation_space, action_space = SPACES[spaces]
    spec = module_spec(name, **model_config)
    spec.observation_space, spec.action_space = observation_space, action_space
    return spec.build()
