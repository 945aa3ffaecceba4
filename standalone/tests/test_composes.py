"""FFM composes with torch as nn.GRU does: autocast, DropInFFM under autocast, double backward, torch.func's
grad, vmap and functional_call, T = 0 and torch.compile without graph breaks; on CPU, its blockwise path
(``FFM(blockwise=True)``, the default) equals the plain one."""

import pytest
import torch
from reference import loop_states, relative_error

from ffm import FFA, FFM, DropInFFM


def make_ffm(**kwargs) -> FFM:
    torch.manual_seed(0)
    return FFM(input_size=5, hidden_size=6, context_size=3, output_size=7, **kwargs)


def inputs(batch: int = 3, steps: int = 70, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, steps, 5, generator=generator)
    state = torch.view_as_complex(torch.randn(batch, 6, 3, 2, generator=generator))
    return x, state, torch.rand(batch, steps, generator=generator) < 0.05


def outputs_and_gradients(ffm: FFM, x: torch.Tensor, state: torch.Tensor, resets: torch.Tensor) -> list[torch.Tensor]:
    x = x.clone().requires_grad_()
    y, final = ffm(x, state, resets)
    loss = (y * torch.linspace(-1, 1, y.shape[-1])).sum() + torch.view_as_real(final).sum()
    return [y, final, *torch.autograd.grad(loss, [x, *ffm.parameters()])]


def test_the_blockwise_path_equals_the_plain_path():
    """The CPU path (sequential chunk carry, readout block by block) and the plain one (log-depth carry,
    whole tensors): the same values and gradients."""
    x, state, resets = inputs(steps=300)
    blockwise = outputs_and_gradients(make_ffm(), x, state, resets)
    plain = outputs_and_gradients(make_ffm(blockwise=False), x, state, resets)
    for ours, other in zip(blockwise, plain, strict=True):
        torch.testing.assert_close(ours, other, rtol=1e-4, atol=1e-5)


def test_the_scan_keeps_its_precision_under_autocast():
    """Under CPU bfloat16 autocast the aggregator's states stay float32-exact (its matmuls would otherwise
    run in bfloat16, about 1e-2 relative error), against the float64 loop."""
    ffa = FFA(6, 3)
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(2, 200, 6, generator=generator)
    state = torch.view_as_complex(torch.randn(2, 6, 3, 2, generator=generator))
    resets = torch.rand(2, 200, generator=generator) < 0.05
    with torch.autocast("cpu", dtype=torch.bfloat16):
        states = ffa(u, state, resets)
    assert states.dtype == torch.complex64
    assert relative_error(states, loop_states(u, ffa.decay_rates(), ffa.w, state, resets), dim=1) <= 1e-5


@pytest.mark.parametrize("module", ["FFM", "DropInFFM"])
def test_autocast_training_matches_float32(module, device):
    """An autocast training step (bfloat16 on CPU, float16 on CUDA) runs, as nn.GRU's does, and gives
    float32's values and gradients to the half precision's."""
    torch.manual_seed(0)
    layer = make_ffm() if module == "FFM" else DropInFFM(5, 7, batch_first=True, memory_size=6, context_size=3)
    layer.to(device)
    x = inputs()[0].to(device)

    def step() -> list[torch.Tensor]:
        y = layer(x)[0]
        return [y, *torch.autograd.grad(y.square().sum(), list(layer.parameters()))]

    with torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16):
        autocast = step()
    for ours, full in zip(autocast, step(), strict=True):
        assert relative_error(ours.detach().float().cpu(), full.cpu()) < 5e-2


@pytest.mark.parametrize("blockwise", [True, False])
def test_double_backward(blockwise):
    """Second derivatives (gradient penalties, MAML) against finite differences, through both paths, with
    resets and a carried-in state; the first derivatives are the plain path's."""
    ffm = make_ffm(blockwise=blockwise).double()
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(2, 9, 5, dtype=torch.float64, generator=generator, requires_grad=True)
    state = torch.randn(2, 6, 3, dtype=torch.complex128, generator=generator)
    resets = torch.zeros(2, 9, dtype=torch.bool)
    resets[1, 4] = True
    parameters = list(ffm.parameters())
    assert torch.autograd.gradgradcheck(lambda x, *params: ffm(x, state, resets)[0], (x, *parameters))
    penalty = torch.autograd.grad(ffm(x, state, resets)[0].square().sum(), x, create_graph=True)[0]
    assert penalty.requires_grad
    gradients = torch.autograd.grad(penalty.square().sum(), parameters)
    plain = make_ffm(blockwise=False).double()
    penalty = torch.autograd.grad(plain(x, state, resets)[0].square().sum(), x, create_graph=True)[0]
    for ours, other in zip(
        gradients, torch.autograd.grad(penalty.square().sum(), list(plain.parameters())), strict=True
    ):
        torch.testing.assert_close(ours, other)


def test_torch_func_grad_over_functional_call():
    ffm = make_ffm()
    x, state, resets = inputs()
    parameters = dict(ffm.named_parameters())

    def loss(params: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.func.functional_call(ffm, params, (x, state, resets))[0].square().sum()

    grads = torch.func.grad(loss)({name: p.detach() for name, p in parameters.items()})
    expected = torch.autograd.grad(loss(parameters), list(parameters.values()))
    for name, want in zip(parameters, expected, strict=True):
        torch.testing.assert_close(grads[name], want, rtol=1e-5, atol=1e-5)


def test_torch_func_vmap_over_a_batch_of_inputs():
    ffm = make_ffm()
    xs = torch.randn(4, 2, 40, 5)
    with torch.no_grad():
        ys, states = torch.func.vmap(ffm)(xs)
        for x, y, final in zip(xs, ys, states, strict=True):
            want_y, want_state = ffm(x)
            torch.testing.assert_close(y, want_y, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(final, want_state, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("blockwise", [True, False])
def test_zero_steps(blockwise):
    """T = 0 gives an empty output and the carried-in state back, and backward runs (the authors' FFM does)."""
    ffm = make_ffm(blockwise=blockwise)
    _, state, _ = inputs(batch=2)
    y, final = ffm(torch.randn(2, 0, 5), state, torch.zeros(2, 0, dtype=torch.bool))
    assert y.shape == (2, 0, 7)
    torch.testing.assert_close(final, state, rtol=0, atol=0)
    y.sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in ffm.parameters())


def test_torch_compile_has_no_graph_break():
    ffm = make_ffm()
    x, state, resets = inputs(steps=48)
    explanation = torch._dynamo.explain(ffm)(x, state, resets)
    assert explanation.graph_break_count == 0, explanation.break_reasons
