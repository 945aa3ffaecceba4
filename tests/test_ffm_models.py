"""RayFFM and its ablations: each flag does what it says; the aggregator is one config switch."""

import pytest
import torch
from ray.rllib.core.columns import Columns

from aggregations import FFAAggregation, SumAggregation
from tests.batches import SPACES, batched_state, build_module, sample_batch


def aggregator_gradients(module) -> dict[str, torch.Tensor | None]:
    obs = sample_batch(SPACES["discrete"][0], 2, 16)
    output = module.forward_train({Columns.OBS: obs, Columns.STATE_IN: batched_state(module, 2)})
    output[Columns.ACTION_DIST_INPUTS].square().sum().backward()
    aggregator = module.network.core.ffm.aggregator
    return {name: getattr(aggregator, name).grad for name in ("a", "w")}


def test_full_ffm_learns_decay_and_oscillation() -> None:
    gradients = aggregator_gradients(build_module("RayFFM"))
    assert all(gradient is not None and gradient.abs().sum() > 0 for gradient in gradients.values())


@pytest.mark.parametrize(
    ("name", "frozen", "value_at"),
    [
        ("RayFFMNoLearnDecay", "a", "init"),
        ("RayFFMNoLearnOscillate", "w", "init"),
        ("RayFFMNoDecay", "a", "zero"),
        ("RayFFMNoOscillate", "w", "zero"),
    ],
)
def test_ffa_ablations_freeze_their_parameter(name: str, frozen: str, value_at: str) -> None:
    module, full = build_module(name), build_module("RayFFM")
    gradients = aggregator_gradients(module)
    assert gradients[frozen] is None, f"{name}: {frozen} must receive no gradient"
    learnt = "w" if frozen == "a" else "a"
    assert gradients[learnt].abs().sum() > 0
    value = getattr(module.network.core.ffm.aggregator, frozen)
    expected = (
        getattr(full.network.core.ffm.aggregator, frozen).detach() if value_at == "init" else torch.zeros_like(value)
    )
    torch.testing.assert_close(value, expected)


def test_gate_ablations_drop_their_gate() -> None:
    m, out = 32, 256
    assert build_module("RayFFM").network.core.ffm.pre.out_features == 2 * m + 2 * out
    assert build_module("RayFFMNoInGate").network.core.ffm.pre.out_features == m + 2 * out
    assert build_module("RayFFMNoOutGate").network.core.ffm.pre.out_features == 2 * m + out


def test_paper_popgym_sizes() -> None:
    ffm = build_module("RayFFM").network.core.ffm
    assert ffm.state_shape == (32, 4) and ffm.output_size == 256 and isinstance(ffm.aggregator, FFAAggregation)


def test_sum_aggregator_is_one_config_switch() -> None:
    module = build_module("RayFFM", aggregation="sum")
    assert isinstance(module.network.core.ffm.aggregator, SumAggregation)
    assert module.get_initial_state()["S"].shape == (32,)
    obs = sample_batch(SPACES["discrete"][0], 2, 5)
    output = module.forward_train({Columns.OBS: obs, Columns.STATE_IN: batched_state(module, 2)})
    assert output[Columns.ACTION_DIST_INPUTS].shape == (2, 5, 4)
    with pytest.raises(ValueError, match=r"\['decay'\] are FFA options"):
        build_module("RayFFMNoDecay", aggregation="sum")
