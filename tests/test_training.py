"""Every registered model trains with RLlib PPO (new API stack, no remote env runners) on a popgym env."""

import math

import pytest
import torch
from ray.rllib.core.columns import Columns
from ray.tune.registry import register_env

import ppo
from models import MODELS
from models.rllib import module_spec
from tests.batches import build_module

ENV = "RepeatPreviousEasy"


@pytest.fixture(scope="module")
def config():
    register_env(ENV, lambda _: ppo.make_env(ENV))
    settings = ppo.parse_settings(
        ["--workers", "0", "--envs-per-worker", "2", "--bptt-cutoff", "16", "--minibatch", "2"], environ={}
    )
    return ppo.build_config(settings).environment(ENV).training(num_epochs=2).debugging(seed=0)


@pytest.mark.parametrize("name", MODELS)
def test_ppo_trains_two_iterations(name: str, config, record_property) -> None:
    algorithm = config.rl_module(rl_module_spec=module_spec(name)).build_algo()
    try:
        module = algorithm.get_module()
        initial = {key: value.detach().clone() for key, value in module.state_dict().items()}
        results = [algorithm.train() for _ in range(2)]
        trained = algorithm.get_module().state_dict()
    finally:
        algorithm.stop()
    assert results[-1]["num_env_steps_sampled_lifetime"] >= 2 * 32
    loss = results[-1]["learners"]["default_policy"]["total_loss"]
    assert math.isfinite(loss)
    changed = [key for key in initial if not torch.equal(initial[key], trained[key])]
    assert any(key.startswith("network.core.") for key in changed), f"{name}: the memory core did not train"
    assert any(key.startswith("network.actor.") for key in changed)
    assert any(key.startswith("network.critic.") for key in changed)
    parameters = sum(parameter.numel() for parameter in module.parameters())
    record_property("parameters", parameters)
    print(f"{name}: {parameters:,} parameters")


@pytest.mark.parametrize("name", [name for name in MODELS if build_module(name).is_stateful()])
def test_learner_replays_long_episodes_as_the_env_runner_acted(name: str, config) -> None:
    """Episodes longer than max_seq_len (16) are cut into sequences, and sampling continues episodes
    across calls: the learner's pass over each sequence, from the STATE_IN RLlib stored, must reproduce
    the action-distribution inputs the env runner computed step by step with its carried state."""
    algorithm = config.rl_module(rl_module_spec=module_spec(name)).build_algo()
    try:
        learner = algorithm.learner_group._learner
        module = learner.module["default_policy"]
        for _ in range(2):  # the second sample continues the first one's unfinished episodes
            episodes = algorithm.env_runner.sample(num_timesteps=80, random_actions=False)
            assert any(len(episode) > 16 for episode in episodes)
            batch = learner._learner_connector(rl_module=learner.module, batch={}, episodes=episodes, shared_data={})
            batch = batch["default_policy"]
            with torch.no_grad():
                replayed = module.forward_train(batch)[Columns.ACTION_DIST_INPUTS]
            valid = batch["loss_mask"]
            torch.testing.assert_close(replayed[valid], batch[Columns.ACTION_DIST_INPUTS][valid], rtol=1e-4, atol=1e-5)
    finally:
        algorithm.stop()
