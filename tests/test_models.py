"""Every registered RLModule: shapes for every popgym space kind, state carrying, padding, config errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from models import MODELS, get_model
from models.spaces import flat_size, flatten
from tests.batches import SPACES, batched_state, build_module, sample_batch

STATEFUL = [name for name in MODELS if build_module(name).is_stateful()]


def make(name: str, spaces: str = "discrete"):
    return build_module(name, spaces, max_seq_len=8).eval()


@pytest.mark.parametrize("spaces", SPACES)
@pytest.mark.parametrize("name", MODELS)
def test_forward_shapes_for_every_space_kind(name: str, spaces: str) -> None:
    module = make(name, spaces)
    observation_space, action_space = SPACES[spaces]
    width = module.action_dist_cls.required_input_dim(action_space)
    batch, steps = 3, 5
    stateful = module.is_stateful()
    obs = sample_batch(observation_space, batch, steps if stateful else 1)
    if not stateful:
        obs = tuple(part[:, 0] for part in obs)
    inputs = {Columns.OBS: obs} | ({Columns.STATE_IN: batched_state(module, batch)} if stateful else {})
    output = module.forward_train(inputs)
    leading = [batch, steps] if stateful else [batch]
    assert list(output[Columns.ACTION_DIST_INPUTS].shape) == leading + [width]
    assert list(module.compute_values(inputs).shape) == leading
    for key, value in module.get_initial_state().items():
        assert value.dtype in (np.float32, np.complex64, np.int32, np.bool_), f"{key}: {value.dtype}"
        assert output[Columns.STATE_OUT][key].shape == (batch, *value.shape)
    actions = module.action_dist_cls.from_logits(output[Columns.ACTION_DIST_INPUTS]).sample()
    action = np.asarray(actions[(0,) * len(leading)]).astype(action_space.dtype)
    if isinstance(action_space, gym.spaces.Box):  # Gaussian samples: RLlib clips them to the bounds
        action = action.clip(action_space.low, action_space.high)
    assert action_space.contains(action)


@pytest.mark.parametrize("name", STATEFUL)
def test_two_chunks_with_state_carried_equal_one_pass(name: str) -> None:
    module = make(name)
    obs = sample_batch(SPACES["discrete"][0], 2, 12)
    with torch.no_grad():
        whole = module.forward_train({Columns.OBS: obs, Columns.STATE_IN: batched_state(module, 2)})
        first = module.forward_train(
            {Columns.OBS: tuple(part[:, :7] for part in obs), Columns.STATE_IN: batched_state(module, 2)}
        )
        second = module.forward_train(
            {Columns.OBS: tuple(part[:, 7:] for part in obs), Columns.STATE_IN: first[Columns.STATE_OUT]}
        )
    chunked = torch.cat([first[Columns.ACTION_DIST_INPUTS], second[Columns.ACTION_DIST_INPUTS]], 1)
    torch.testing.assert_close(chunked, whole[Columns.ACTION_DIST_INPUTS], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", STATEFUL)
def test_single_steps_equal_the_training_pass(name: str) -> None:
    """Env runners step with T=1 and carry the state; the learner replays the sequence in one pass."""
    module = make(name)
    obs = sample_batch(SPACES["discrete"][0], 2, 6)
    state = batched_state(module, 2)
    with torch.no_grad():
        whole = module.forward_train({Columns.OBS: obs, Columns.STATE_IN: state})[Columns.ACTION_DIST_INPUTS]
        steps = []
        for t in range(6):
            output = module.forward_inference(
                {Columns.OBS: tuple(part[:, t : t + 1] for part in obs), Columns.STATE_IN: state}
            )
            steps.append(output[Columns.ACTION_DIST_INPUTS])
            state = output[Columns.STATE_OUT]
    torch.testing.assert_close(torch.cat(steps, 1), whole, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", STATEFUL)
def test_padding_after_the_sequence_does_not_change_valid_steps(name: str) -> None:
    module = make(name)
    obs = sample_batch(SPACES["discrete"][0], 2, 10)
    garbage = sample_batch(SPACES["discrete"][0], 2, 10, seed=1)
    padded = tuple(torch.cat([part[:, :6], other[:, 6:]], 1) for part, other in zip(obs, garbage, strict=True))
    with torch.no_grad():
        clean = module.forward_train({Columns.OBS: obs, Columns.STATE_IN: batched_state(module, 2)})
        dirty = module.forward_train({Columns.OBS: padded, Columns.STATE_IN: batched_state(module, 2)})
        values = [
            module.compute_values({Columns.OBS: o, Columns.STATE_IN: batched_state(module, 2)}) for o in (obs, padded)
        ]
    torch.testing.assert_close(dirty[Columns.ACTION_DIST_INPUTS][:, :6], clean[Columns.ACTION_DIST_INPUTS][:, :6])
    torch.testing.assert_close(values[1][:, :6], values[0][:, :6])
    assert not torch.allclose(dirty[Columns.ACTION_DIST_INPUTS][:, 6:], clean[Columns.ACTION_DIST_INPUTS][:, 6:])


def test_architecture_follows_popgym() -> None:
    module = make("GRU", "box")
    assert module.feature_map[0].in_features == flat_size(SPACES["box"][0]) == 5
    assert not module.feature_map[1].elementwise_affine
    assert (module.core.input_size, module.core.output_size) == (128, 256)
    assert [layer.out_features for layer in module.actor if isinstance(layer, torch.nn.Linear)] == [128, 128, 2]
    assert [layer.out_features for layer in module.critic if isinstance(layer, torch.nn.Linear)] == [128, 128, 1]
    hidden = module.actor[0].weight
    torch.testing.assert_close(hidden @ hidden.T / hidden.norm(dim=1).pow(2).mean(), torch.eye(128), atol=1e-4, rtol=0)
    assert module.actor[-1].weight.std().item() == pytest.approx(0.01, rel=0.2)


def test_flatten_matches_gymnasium_flatten() -> None:
    """Independent reference: gymnasium's own flatten one-hots Discrete and MultiDiscrete."""
    space = gym.spaces.Dict(
        {
            "a": gym.spaces.Discrete(5, start=2),
            "b": gym.spaces.MultiDiscrete([[2, 7], [3, 1]]),
            "c": gym.spaces.Tuple((gym.spaces.Box(-1, 1, (2, 3)), gym.spaces.MultiBinary(4))),
        }
    )
    space.seed(0)
    for _ in range(20):
        sample = space.sample()
        as_tensors = {
            "a": torch.tensor(sample["a"]),
            "b": torch.as_tensor(sample["b"]),
            "c": tuple(torch.as_tensor(part) for part in sample["c"]),
        }
        expected = gym.spaces.flatten(space, sample).astype(np.float32)
        np.testing.assert_array_equal(flatten(space, as_tensors).numpy(), expected)
    assert flat_size(space) == gym.spaces.flatdim(space)


def test_unknown_names_and_keys_are_errors_that_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid models: RayFFM, .*DiffNC"):
        get_model("Transformer")
    with pytest.raises(ValueError, match=r"unknown model_config keys \['memory_sise'\].*'memory_size'"):
        build_module("RayFFM", memory_sise=8)
    with pytest.raises(ValueError, match="unsupported observation space"):
        get_model("GRU")(observation_space=gym.spaces.Text(5), action_space=gym.spaces.Discrete(2), model_config={})


def test_model_config_sets_sizes_and_rllib_keys_pass_through() -> None:
    config = {"memory_size": 8, "context_size": 2, "head_size": 64, "max_seq_len": 4, "vf_share_layers": False}
    module = build_module("RayFFM", **config)
    assert module.get_initial_state()["S"].shape == (8, 2)
    assert module.actor[0].out_features == 64
