"""The PPO learner trims each minibatch to its longest sequence: for every registered model, the loss and
every parameter's gradient on the trimmed minibatch equal those on RLlib's fully padded one."""

import copy
import itertools

import gymnasium as gym
import pytest
import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.tune.registry import register_env

import ppo
from models import MODELS
from models.learner import TrimmedPPOTorchLearner, trim_to_longest_sequence
from models.rllib import module_spec
from tests.batches import SPACES

MAX_SEQ_LEN = 8
# episode lengths, cycled; PPO's learner connector adds one (masked) step to each episode, then cuts the
# episodes into pieces of at most max_seq_len: 3; 8 (= max_seq_len); 8, 1; 8, 8, 5 (a state carried in); 6; 2
EPISODE_LENGTHS = (2, 7, 8, 20, 5, 1)
PIECES = (3, 8, 8, 1, 8, 8, 5, 6, 2)
SHORT_EPISODE_LENGTHS = (2, 5, 1, 4)  # none split, the longest piece 6: the whole batch is trimmed to 6
ENV = "MixedLengths"


class MixedLengths(gym.Env):
    """Random observations of the discrete test space and random rewards, episodes of the given lengths."""

    observation_space, action_space = SPACES["discrete"]

    def __init__(self, lengths: tuple[int, ...] = EPISODE_LENGTHS) -> None:
        self.lengths = itertools.cycle(lengths)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.observation_space.seed(int(self.np_random.integers(2**31)))
        self.steps_left = next(self.lengths)
        return self.observation_space.sample(), {}

    def step(self, action):
        self.steps_left -= 1
        reward = float(self.np_random.normal())
        return self.observation_space.sample(), reward, self.steps_left == 0, False, {}


@pytest.fixture(scope="module")
def config():
    register_env(ENV, lambda config: MixedLengths(**config))
    settings = ppo.parse_settings(
        ["--workers", "0", "--envs-per-worker", "1", "--bptt-cutoff", str(MAX_SEQ_LEN), "--minibatch", "1"], environ={}
    )
    return ppo.build_config(settings).environment(ENV).debugging(seed=0)


def padded_train_batch(algorithm) -> dict:
    """One sample of whole episodes through the learner connector (GAE, split and zero-padded pieces; with
    a piece of max_seq_len, so nothing trimmed)."""
    learner = algorithm.learner_group._learner
    episodes = algorithm.env_runner.sample(num_episodes=len(EPISODE_LENGTHS), random_actions=False)
    assert sorted(len(episode) for episode in episodes) == sorted(EPISODE_LENGTHS)
    batch = learner._learner_connector(rl_module=learner.module, batch={}, episodes=episodes, shared_data={})
    return batch["default_policy"]


@pytest.mark.parametrize("name", ["RayFFM", "GRU", "LinearAttention"])
def test_gae_runs_on_the_train_batch_trimmed_to_its_longest_sequence(name: str, config) -> None:
    """Episodes all shorter than max_seq_len: the learner connector trims the whole batch to the longest
    piece before GAE's value pass; values, advantages and value targets equal RLlib's padded pipeline's."""
    short = config.copy().environment(ENV, env_config={"lengths": SHORT_EPISODE_LENGTHS})
    short.rl_module(rl_module_spec=module_spec(name))
    algorithm = short.build_algo()
    padded_algorithm = short.copy().learners(learner_class=PPOTorchLearner).build_algo()
    try:
        learner, padded_learner = algorithm.learner_group._learner, padded_algorithm.learner_group._learner
        padded_learner.module.set_state(learner.module.get_state())
        episodes = algorithm.env_runner.sample(num_episodes=len(SHORT_EPISODE_LENGTHS), random_actions=False)
        batches = [
            pipeline._learner_connector(
                rl_module=pipeline.module, batch={}, episodes=copy.deepcopy(episodes), shared_data={}
            )["default_policy"]
            for pipeline in (learner, padded_learner)
        ]
    finally:
        algorithm.stop()
        padded_algorithm.stop()
    trimmed, padded = batches
    longest = max(SHORT_EPISODE_LENGTHS) + 1  # PPO's one added (masked) step
    assert padded[Columns.LOSS_MASK].shape == (len(SHORT_EPISODE_LENGTHS), MAX_SEQ_LEN)
    assert not padded[Columns.LOSS_MASK][:, longest:].any()
    for column in (Columns.LOSS_MASK, Columns.REWARDS, "advantages", "value_targets", Columns.ACTION_LOGP):
        assert trimmed[column].shape == (len(SHORT_EPISODE_LENGTHS), longest), column
        torch.testing.assert_close(trimmed[column], padded[column][:, :longest], rtol=1e-5, atol=1e-5)
    assert trimmed[Columns.OBS][0].shape == (len(SHORT_EPISODE_LENGTHS), longest)


def select(batch: dict, rows: list[int]) -> dict:
    """The sequences ``rows`` of a padded batch (a minibatch as RLlib's iterator slices it)."""
    index = torch.as_tensor(rows)
    return {
        column: value if column == Columns.INFOS else _map(value, lambda leaf: leaf[index])
        for column, value in batch.items()
    }


def _map(value, function):
    if isinstance(value, dict):
        return {key: _map(leaf, function) for key, leaf in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_map(leaf, function) for leaf in value)
    return function(value)


def loss_and_gradients(learner, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    module = learner.module["default_policy"]
    module.zero_grad(set_to_none=True)
    loss = learner.compute_losses(
        fwd_out={"default_policy": module.forward_train(batch)}, batch={"default_policy": batch}
    )
    loss["default_policy"].backward()
    gradients = {
        name: parameter.grad.clone() for name, parameter in module.named_parameters() if parameter.grad is not None
    }
    return loss["default_policy"].detach(), gradients


@pytest.mark.parametrize("name", MODELS)
def test_trimmed_minibatch_has_the_padded_loss_and_gradients(name: str, config) -> None:
    algorithm = config.rl_module(rl_module_spec=module_spec(name)).build_algo()
    try:
        learner = algorithm.learner_group._learner
        assert isinstance(learner, TrimmedPPOTorchLearner)
        batch = padded_train_batch(algorithm)
        if Columns.SEQ_LENS not in batch:  # a stateless module: one row per env step, nothing padded
            assert batch[Columns.OBS][0].shape[0] == sum(PIECES)
            assert trim_to_longest_sequence(batch) is batch
            return
        seq_lens = batch[Columns.SEQ_LENS].tolist()
        assert sorted(seq_lens) == sorted(PIECES)
        assert batch[Columns.LOSS_MASK].shape == (len(PIECES), MAX_SEQ_LEN)
        short = [row for row, length in enumerate(seq_lens) if length < MAX_SEQ_LEN]
        # all sequences (nothing to trim); the short ones (to 6); a split episode's last piece, which carries
        # its state in, with a whole short episode (to 5)
        for rows in (list(range(len(seq_lens))), short, [seq_lens.index(5), seq_lens.index(2)]):
            minibatch = select(batch, rows)
            trimmed = trim_to_longest_sequence(minibatch)
            longest = max(seq_lens[row] for row in rows)
            assert trimmed[Columns.LOSS_MASK].shape == (len(rows), longest)
            assert torch.equal(
                trimmed[Columns.STATE_IN][next(iter(trimmed[Columns.STATE_IN]))],
                minibatch[Columns.STATE_IN][next(iter(minibatch[Columns.STATE_IN]))],
            )
            padded_loss, padded_gradients = loss_and_gradients(learner, minibatch)
            trimmed_loss, trimmed_gradients = loss_and_gradients(learner, trimmed)
            torch.testing.assert_close(trimmed_loss, padded_loss, rtol=1e-5, atol=1e-6)
            assert trimmed_gradients.keys() == padded_gradients.keys()
            for parameter, gradient in padded_gradients.items():
                torch.testing.assert_close(
                    trimmed_gradients[parameter], gradient, rtol=1e-4, atol=1e-6, msg=lambda m, p=parameter: f"{p}: {m}"
                )
    finally:
        algorithm.stop()


def test_the_update_runs_on_the_trimmed_minibatch(config, monkeypatch) -> None:
    """The learner's per-minibatch update hands RLlib's PPO update the trimmed minibatch."""
    algorithm = config.rl_module(rl_module_spec=module_spec("RayFFM")).build_algo()
    try:
        learner = algorithm.learner_group._learner
        batch = padded_train_batch(algorithm)
        seen = []

        def rllib_update(self, batch: dict, **kwargs) -> tuple:
            seen.append(batch["default_policy"])
            return None, None, None

        monkeypatch.setattr(PPOTorchLearner, "_update", rllib_update)
        short = [row for row, length in enumerate(batch[Columns.SEQ_LENS].tolist()) if length < MAX_SEQ_LEN]
        learner._update({"default_policy": select(batch, short)})
        assert seen[0][Columns.LOSS_MASK].shape == (len(short), 6)
        assert seen[0][Columns.OBS][0].shape == (len(short), 6)
    finally:
        algorithm.stop()
