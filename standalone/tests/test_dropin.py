"""DropInFFM keeps torch.nn.GRU's contract, so GRU code runs unchanged."""

import math

import pytest
import torch
from torch import nn

from ffm import FFM, DropInFFM

FEATURES, HIDDEN = 5, 7


def pair(batch_first: bool):
    torch.manual_seed(0)
    return nn.GRU(FEATURES, HIDDEN, batch_first=batch_first), DropInFFM(FEATURES, HIDDEN, batch_first=batch_first)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_h0", [False, True])
@pytest.mark.parametrize("shape", [(11, 3, FEATURES), (11, FEATURES)])
def test_output_and_state_shapes_follow_gru(batch_first, with_h0, shape):
    gru, ffm = pair(batch_first)
    x = torch.randn(shape)
    batched = x.dim() == 3
    batch = x.shape[0 if batch_first else 1] if batched else None
    gru_h0 = (torch.zeros(1, batch, HIDDEN) if batched else torch.zeros(1, HIDDEN)) if with_h0 else None
    ffm_h0 = (torch.zeros(1, batch, ffm.state_size) if batched else torch.zeros(1, ffm.state_size)) if with_h0 else None
    gru_out, gru_h = gru(x, gru_h0)
    out, h = ffm(x, ffm_h0)
    assert out.shape == gru_out.shape
    assert h.shape == gru_h.shape[:-1] + (ffm.state_size,)
    assert h.dtype == gru_h.dtype == torch.float32
    assert ffm.state_size == 2 * 32 * 4


@pytest.mark.parametrize("batch_first", [False, True])
def test_carried_hidden_state_equals_one_pass(batch_first):
    _, ffm = pair(batch_first)
    time_dim = 1 if batch_first else 0
    x = torch.randn(3, 20, FEATURES) if batch_first else torch.randn(20, 3, FEATURES)
    with torch.no_grad():
        whole, h_whole = ffm(x)
        first, h = ffm(x.narrow(time_dim, 0, 8))
        second, h = ffm(x.narrow(time_dim, 8, 12), h)
    torch.testing.assert_close(torch.cat([first, second], time_dim), whole, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h, h_whole, rtol=1e-5, atol=1e-5)


def test_masking_hidden_state_with_done_equals_resets():
    """The GRU idiom h * (1 - done) between steps does what resets do inside one sequence."""
    _, ffm = pair(False)
    x = torch.randn(10, 2, FEATURES)
    done = torch.zeros(10, 2)
    done[3, 0] = done[6, 1] = 1.0  # episode ends after these steps
    resets = torch.zeros(10, 2, dtype=torch.bool)
    resets[4, 0] = resets[7, 1] = True
    with torch.no_grad():
        stepped, h = [], torch.randn(1, 2, ffm.state_size)
        h_start = h
        for t in range(10):
            y, h = ffm(x[t : t + 1], h)
            h = h * (1 - done[t])[None, :, None]
            stepped.append(y)
        packed, _ = ffm(x, h_start, resets=resets)
    torch.testing.assert_close(torch.cat(stepped), packed, rtol=1e-5, atol=1e-5)


def test_gradients_flow_like_gru():
    _, ffm = pair(True)
    x = torch.randn(2, 6, FEATURES, requires_grad=True)
    h0 = torch.randn(1, 2, ffm.state_size, requires_grad=True)
    out, h = ffm(x, h0)
    (out.sum() + h.sum()).backward()
    assert x.grad.abs().sum() > 0 and h0.grad.abs().sum() > 0
    assert all(p.grad is not None for p in ffm.parameters())


def test_gru_arguments_without_ffm_equivalent_are_refused():
    with pytest.raises(ValueError, match="num_layers=1, got 2"):
        DropInFFM(FEATURES, HIDDEN, 2)
    with pytest.raises(ValueError, match="bidirectional=False, got True"):
        DropInFFM(FEATURES, HIDDEN, bidirectional=True)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda f: f(torch.randn(4, FEATURES + 1)), r"F = 5, got \[4, 6\]"),
        (lambda f: f(torch.randn(4, 2, 3, FEATURES)), r"expected input \[T, B, F\] or \[T, F\]"),
        (
            lambda f: f(torch.randn(4, 2, FEATURES), torch.zeros(1, 3, 256)),
            r"\[1, 2, 256\].*got \[1, 3, 256\]",
        ),
        (lambda f: f(torch.randn(4, FEATURES), torch.zeros(1, 2, 256)), r"\[1, 256\].*got \[1, 2, 256\]"),
        (lambda f: f(torch.randn(4, 2, FEATURES), None, torch.zeros(2, 4, dtype=torch.bool)), r"\[2, 4\]"),
    ],
)
def test_bad_inputs_raise_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call(DropInFFM(FEATURES, HIDDEN))


def test_packed_sequences_are_refused_with_a_pointer_to_resets():
    packed = nn.utils.rnn.pack_sequence([torch.randn(3, FEATURES), torch.randn(2, FEATURES)])
    with pytest.raises(TypeError, match="resets"):
        DropInFFM(FEATURES, HIDDEN)(packed)


def test_exported_single_step_matches_eager():
    """torch.export of the single-step path (real tensors in and out) is the deployment route."""
    ffm = DropInFFM(FEATURES, HIDDEN, batch_first=True).eval()
    x, h = torch.randn(4, 1, FEATURES), torch.randn(1, 4, ffm.state_size)
    exported = torch.export.export(ffm, (x, h))
    for _ in range(3):
        expected_out, expected_h = ffm(x, h)
        out, h = exported.module()(x, h)
        torch.testing.assert_close(out, expected_out)
        torch.testing.assert_close(h, expected_h)
        x = torch.randn(4, 1, FEATURES)


def test_hidden_size_is_the_output_size_like_gru():
    ffm = DropInFFM(FEATURES, HIDDEN, memory_size=8, context_size=2, max_period=128)
    assert isinstance(ffm.ffm, FFM) and ffm.ffm.output_size == HIDDEN
    assert ffm.state_size == 2 * 8 * 2


def test_the_authors_readme_constructors_run_unchanged():
    ffm = FFM(input_size=16, hidden_size=32, context_size=4, output_size=3)
    drop_in = DropInFFM(input_size=16, hidden_size=32, context_size=4, output_size=3, batch_first=False)
    output, h_n = drop_in(torch.zeros(5, 4, 16))  # [time, batch, features]
    assert ffm(torch.zeros(4, 5, 16))[0].shape == (4, 5, 3)
    assert output.shape == (5, 4, 3) and h_n.shape == (1, 4, 2 * 32 * 4)
    assert drop_in(torch.zeros(2, 4, 16), h_n)[0].shape == (2, 4, 3)


def test_output_size_defaults_to_hidden_size_and_options_pass_to_ffa():
    drop_in = DropInFFM(FEATURES, HIDDEN, memory_size=8, context_size=2, max_period=128, fastest_decay=0.5)
    assert drop_in.output_size == drop_in.ffm.output_size == HIDDEN
    assert drop_in.ffm.aggregator.fastest_decay == 0.5
    torch.testing.assert_close(drop_in.ffm.aggregator.a[-1].detach(), torch.tensor(math.log(0.01) / 128))


def test_unknown_keywords_get_one_error_naming_the_valid_ones():
    with pytest.raises(
        TypeError, match=r"unknown keyword arguments \['hiden_size'\]; valid: .*memory_size.*fastest_decay"
    ):
        DropInFFM(FEATURES, HIDDEN, hiden_size=3)
