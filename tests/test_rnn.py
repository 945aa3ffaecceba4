"""IndRNNCore against a float64 step-by-step reference of POPGym 689d89b's two-layer IndRNN:

    h0_t = relu(L0(x_t) + u0 * h0_{t-1} + beta0),  h1_t = relu(L1(h0_t) + u1 * h1_{t-1} + beta1),  y_t = h1_t

with L0, L1 Linears (with bias), u used clamped to |u| <= 2^(1/max_len), beta ~ U(0, 1) per unit, and no
output Linear (POPGym defined one but never applied it)."""

import numpy as np
import pytest
import torch

from models.rnn import IndRNNCore

B, T, D_IN, D_OUT = 3, 12, 5, 7


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def make(max_len: int = 1024) -> IndRNNCore:
    core = IndRNNCore(D_IN, D_OUT, max_len=max_len)
    with torch.no_grad():  # recurrent weights on both sides of the bound, incl. negative ones
        core.recurrent_weights.copy_(torch.empty_like(core.recurrent_weights).uniform_(-1.5, 1.5))
    return core


def random_state(core: IndRNNCore, batch: int) -> dict[str, torch.Tensor]:
    """A mid-episode state: nonnegative hidden units, as relu produces."""
    state = core.batched_initial_state(batch)
    state["h"] = torch.rand_like(state["h"]) * 2
    return state


def reference(core: IndRNNCore, x: torch.Tensor, h: torch.Tensor, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Float64, one step and one layer at a time: outputs [B, T, D_OUT] and the final h [B, 2, D_OUT]."""
    p = {k: v.detach().double().numpy() for k, v in core.named_parameters()}
    bound = 2 ** (1 / max_len)
    u = np.clip(p["recurrent_weights"], -bound, bound)
    beta = p["recurrent_biases"]
    x, h = x.double().numpy(), h.double().numpy().copy()
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    out = np.zeros((x.shape[0], x.shape[1], D_OUT))
    for b in range(x.shape[0]):
        for t in range(x.shape[1]):
            h[b, 0] = relu(p["input_maps.0.weight"] @ x[b, t] + p["input_maps.0.bias"] + u[0] * h[b, 0] + beta[0])
            h[b, 1] = relu(p["input_maps.1.weight"] @ h[b, 0] + p["input_maps.1.bias"] + u[1] * h[b, 1] + beta[1])
            out[b, t] = h[b, 1]
    return out, h


@pytest.mark.parametrize("carried", [False, True])
@pytest.mark.parametrize("max_len", [4, 1024])
def test_matches_float64_reference(max_len: int, carried: bool) -> None:
    core = make(max_len)
    state = random_state(core, B) if carried else core.batched_initial_state(B)
    x = torch.randn(B, T, D_IN)
    y, final = core(x, state)
    want, want_h = reference(core, x, state["h"], max_len)
    assert y.shape == (B, T, D_OUT) and final.keys() == {"h"}
    np.testing.assert_allclose(y.detach().double().numpy(), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(final["h"].detach().double().numpy(), want_h, rtol=1e-5, atol=1e-5)


def test_output_is_the_second_layers_hidden_state() -> None:
    core = make()
    y, final = core(torch.randn(B, T, D_IN), random_state(core, B))
    torch.testing.assert_close(y[:, -1], final["h"][:, 1], rtol=0, atol=0)
    assert not any("output" in name for name, _ in core.named_parameters())


@pytest.mark.parametrize("max_len", [4, 1024])
def test_recurrent_weights_are_clamped(max_len: int) -> None:
    """u beyond +-2^(1/max_len) acts as the bound itself."""
    bound = 2 ** (1 / max_len)
    core = make(max_len)
    x, state = torch.randn(B, T, D_IN), random_state(core, B)
    signs = torch.where(torch.rand_like(core.recurrent_weights) < 0.5, -1.0, 1.0)
    with torch.no_grad():
        core.recurrent_weights.copy_(signs * (bound + 0.5))
    y_out, _ = core(x, state)
    with torch.no_grad():
        core.recurrent_weights.copy_(signs * bound)
    y_at, _ = core(x, state)
    torch.testing.assert_close(y_out, y_at, rtol=0, atol=0)
    with torch.no_grad():
        core.recurrent_weights.copy_(signs * (bound - 0.01))  # inside the bound: not clamped
    y_in, _ = core(x, state)
    assert not torch.allclose(y_in, y_at)


def test_popgym_initialisation() -> None:
    """u ~ U(0, 1) and beta ~ U(0, 1) per unit and layer; the input Linears keep torch's default init."""
    core = IndRNNCore(128, 256)
    for name in ("recurrent_weights", "recurrent_biases"):
        p = getattr(core, name).detach()
        assert p.shape == (2, 256), name
        assert p.min() >= 0 and p.max() <= 1, name
        assert 0.4 < p.mean() < 0.6 and p.std() > 0.25, name  # spread like U(0, 1) (std 0.289)
    assert not torch.equal(core.recurrent_weights, core.recurrent_biases)
    for layer, fan_in in enumerate([128, 256]):
        linear = core.input_maps[layer]
        assert linear.weight.abs().max() <= 1 / fan_in**0.5 and linear.bias.abs().max() <= 1 / fan_in**0.5
        assert linear.bias.abs().max() > 0.5 / fan_in**0.5


def test_popgym_sizes_parameter_count() -> None:
    core = IndRNNCore(128, 256)
    assert {name: tuple(p.shape) for name, p in core.named_parameters()} == {
        "input_maps.0.weight": (256, 128),
        "input_maps.0.bias": (256,),
        "input_maps.1.weight": (256, 256),
        "input_maps.1.bias": (256,),
        "recurrent_weights": (2, 256),
        "recurrent_biases": (2, 256),
    }
    count = (128 * 256 + 256) + (256 * 256 + 256) + 2 * 256 + 2 * 256
    assert sum(p.numel() for p in core.parameters()) == count == 99_840


def test_initial_state() -> None:
    state = IndRNNCore(128, 256).initial_state()
    assert {k: (tuple(v.shape), v.dtype) for k, v in state.items()} == {"h": ((2, 256), torch.float32)}
    assert not state["h"].any()


def test_chunked_and_stepwise_equal_one_pass() -> None:
    core = make()
    x, state = torch.randn(B, T, D_IN), random_state(core, B)
    y, final = core(x, state)
    s, outs = state, []
    for lo, hi in [(0, 1), (1, 5), (5, T)]:
        y_c, s = core(x[:, lo:hi], s)
        outs.append(y_c)
    torch.testing.assert_close(torch.cat(outs, 1), y)
    torch.testing.assert_close(s["h"], final["h"])
    s, steps = state, []
    for t in range(T):
        y_t, s = core(x[:, t : t + 1], s)
        steps.append(y_t)
    torch.testing.assert_close(torch.cat(steps, 1), y)
    torch.testing.assert_close(s["h"], final["h"])


def test_causal() -> None:
    core = make()
    with torch.no_grad():
        core.recurrent_weights.uniform_(0.5, 1.0)  # memory that carries the change forward
    x, state = torch.randn(B, T, D_IN), random_state(core, B)
    y, _ = core(x, state)
    x2 = x.clone()
    x2[:, 5] += torch.randn(D_IN)
    y2, _ = core(x2, state)
    torch.testing.assert_close(y2[:, :5], y[:, :5], rtol=0, atol=0)
    changed = (y2[:, 5:] - y[:, 5:]).abs().amax(-1) > 1e-6
    assert changed[:, 0].all() and changed[:, -1].all()  # step 5 and, through the recurrence, the last


def test_gradients_reach_all_parameters() -> None:
    core = make()
    y, _ = core(torch.randn(B, T, D_IN), random_state(core, B))
    y.square().sum().backward()
    for name, param in core.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
