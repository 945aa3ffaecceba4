"""Every registered model as an RLModule: shapes for every popgym space kind, state carrying, padding, POPGym's
base model (initialisation, embedding placement), config errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from ray.rllib.core.columns import Columns

from models import MODELS, get_model
from models.rllib import module_spec
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
    network = make("GRU", "box").network
    assert network.feature_map[0].in_features == flat_size(SPACES["box"][0]) == 5
    assert not network.feature_map[1].elementwise_affine
    assert (network.core.input_size, network.core.output_size) == (128, 256)
    assert [layer.out_features for layer in network.actor if isinstance(layer, torch.nn.Linear)] == [128, 128, 2]
    assert [layer.out_features for layer in network.critic if isinstance(layer, torch.nn.Linear)] == [128, 128, 1]
    assert network.embedding is None


def test_initialisation_follows_popgym_689d89b() -> None:
    """POPGym's weight_init: orthogonal weights with gain 1 on the feature map, preprocessor and the heads'
    hidden Linears; torch's default biases U(+-1/sqrt(fan_in)); final weights N(0, 0.01)."""
    network = make("GRU").network
    hidden = [network.feature_map[0], network.preprocessor[0]]
    hidden += [layer for head in (network.actor, network.critic) for layer in list(head)[:-1]]
    for layer in (layer for layer in hidden if isinstance(layer, torch.nn.Linear)):
        weight = layer.weight.detach().double()
        rows, columns = weight.shape
        gram = weight @ weight.T if rows <= columns else weight.T @ weight
        torch.testing.assert_close(gram, torch.eye(min(rows, columns), dtype=torch.float64), atol=1e-5, rtol=0)
        bound = 1 / np.sqrt(columns)  # torch's default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        assert layer.bias.abs().max() <= bound and layer.bias.abs().max() > bound / 2
    for final in (network.actor[-1], network.critic[-1]):
        assert final.weight.std().item() == pytest.approx(0.01, rel=0.25)
        assert final.bias.abs().max() > 0  # torch's default bias, not zeroed


def test_rayffm_32_104_is_rayffm_initialised_at_repeat_previous_time_scales() -> None:
    """The authors' discussion's FFM-32,104: periods linspace(32, 104, c), the slowest trace at 1% after 104
    steps, the fastest at the floor as in RayFFM; everything else RayFFM's (same parameter names and shapes)."""
    informed, default = (make(name).network.core.ffm.aggregator for name in ("RayFFM_32_104", "RayFFM"))
    periods = [32 + (104 - 32) * k / 3 for k in range(4)]
    torch.testing.assert_close(informed.w.double(), torch.tensor([2 * np.pi / p for p in periods]).double())
    assert informed.a[-1].item() == pytest.approx(np.log(0.01) / 104, rel=1e-6)
    assert informed.a[0].item() == default.a[0].item()
    assert default.a[-1].item() == pytest.approx(np.log(0.01) / 1024, rel=1e-6)
    shapes = {name: p.shape for name, p in make("RayFFM").named_parameters()}
    assert {name: p.shape for name, p in make("RayFFM_32_104").named_parameters()} == shapes


@pytest.mark.parametrize("name", [name for name, spec in MODELS.items() if spec.positional])
def test_sine_embedding_enters_after_the_feature_map_before_the_preprocessor(name: str) -> None:
    """POPGym's apply_embedding: x <- (1 - s) LN(W x) + s pe(t), then the preprocessor; t counts episode steps."""
    module = make(name)
    network = module.network
    assert network.embedding.strength.item() == 0.5
    obs = sample_batch(SPACES["discrete"][0], 2, 5)
    x = flatten(module.observation_space, obs)
    state = batched_state(module, 2)
    state["t"] = torch.tensor([[0], [7]], dtype=torch.int32)
    seen = []
    hook = network.preprocessor.register_forward_hook(lambda _module, inputs, _output: seen.append(inputs[0]))
    with torch.no_grad():
        _, next_state = network.memory(x, state)
    hook.remove()
    steps = torch.tensor([[0, 1, 2, 3, 4], [7, 8, 9, 10, 11]], dtype=torch.float64)
    rate = torch.exp(torch.arange(0, 128, 2, dtype=torch.float64) * -np.log(1024) / 128)
    angle = steps[..., None] * rate
    encoding = torch.stack([angle.sin(), angle.cos()], -1).flatten(-2)  # even features sin, odd cos
    features = network.feature_map(x).double()
    torch.testing.assert_close(seen[0].double(), 0.5 * features + 0.5 * encoding, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(next_state["t"], torch.tensor([[5], [12]], dtype=torch.int32))


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
    spec = module_spec("GRU")
    spec.observation_space, spec.action_space = gym.spaces.Text(5), gym.spaces.Discrete(2)
    with pytest.raises(ValueError, match="unsupported observation space"):
        spec.build()


def test_model_config_sets_sizes_and_rllib_keys_pass_through() -> None:
    config = {"memory_size": 8, "context_size": 2, "head_size": 64, "max_seq_len": 4, "vf_share_layers": False}
    module = build_module("RayFFM", **config)
    assert module.get_initial_state()["S"].shape == (8, 2)
    assert module.network.actor[0].out_features == 64
