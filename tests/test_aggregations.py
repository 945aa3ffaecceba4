"""aggregations.py against plain step-by-step loops, and as FFM's aggregator."""

import pytest
import torch

from aggregations import AGGREGATIONS, FFAAggregation, MaxAggregation, SumAggregation, make_aggregation
from ffm import FFM

LOOP_UPDATES = {"sum": torch.add, "max": torch.maximum}


def loop_states(name: str, x: torch.Tensor, state: torch.Tensor, resets: torch.Tensor | None) -> torch.Tensor:
    initial = make_aggregation(name, x.shape[-1], 1).initial_state(x.shape[0]).double()
    states = []
    for t in range(x.shape[1]):
        if resets is not None:
            state = torch.where(resets[:, t, None], initial, state)
        state = LOOP_UPDATES[name](state, x[:, t])
        states.append(state)
    return torch.stack(states, 1)


@pytest.mark.parametrize("with_resets", [False, True])
@pytest.mark.parametrize("name", ["sum", "max"])
def test_sequence_form_equals_the_loop(name: str, with_resets: bool) -> None:
    torch.manual_seed(0)
    x, state = torch.randn(3, 50, 6), torch.randn(3, 6)
    resets = torch.rand(3, 50) < 0.1 if with_resets else None
    aggregation = make_aggregation(name, 6, 1)
    expected = loop_states(name, x.double(), state.double(), resets)
    torch.testing.assert_close(aggregation(x, state, resets), expected.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(aggregation.step(x[:, 0], state), expected[:, 0].float())


def test_initial_states_are_the_identities() -> None:
    x = torch.randn(2, 1, 4)
    for aggregation in (SumAggregation(4), MaxAggregation(4)):
        torch.testing.assert_close(aggregation(x, aggregation.initial_state(2)), x)


@pytest.mark.parametrize("name", sorted(AGGREGATIONS))
def test_every_aggregation_plugs_into_ffm(name: str) -> None:
    torch.manual_seed(0)
    aggregation = make_aggregation(name, 8, 2)
    ffm = FFM(5, 8, 2, 7, aggregator=aggregation)
    assert ffm.aggregator is aggregation
    x = torch.randn(2, 9, 5, requires_grad=True)
    y, final = ffm(x)
    y_first, state = ffm(x[:, :4])
    y_rest, _ = ffm(x[:, 4:], state)
    torch.testing.assert_close(torch.cat([y_first, y_rest], 1), y, rtol=1e-4, atol=1e-5)
    y.sum().backward()
    assert x.grad.abs().sum() > 0
    assert final.shape == (2, *ffm.state_shape)


def test_ffa_aggregation_is_ffm_default_aggregator() -> None:
    torch.manual_seed(0)
    default = FFM(5, 8, 2, 7)
    torch.manual_seed(0)
    switched = FFM(5, 8, 2, 7, aggregator=FFAAggregation(8, 2))
    x = torch.randn(2, 9, 5)
    torch.testing.assert_close(switched(x)[0], default(x)[0])


def test_make_aggregation_errors() -> None:
    with pytest.raises(ValueError, match=r"unknown aggregation 'mean'; expected one of \['ffa', 'max', 'sum'\]"):
        make_aggregation("mean", 4, 2)
    with pytest.raises(ValueError, match="takes no FFA options"):
        make_aggregation("sum", 4, 2, decay=False)
    with pytest.raises(ValueError, match=r"aggregator state \[m=8"):
        FFM(5, 8, 2, 7, aggregator=SumAggregation(4))
