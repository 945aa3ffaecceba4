"""The parallel aggregator against independent float64 step-by-step references."""

import math

import pytest
import torch
from reference import loop_states, loop_states_and_gradients, relative_error

from ffm import FFA, chunked_scan

TOLERANCE = 1e-4
# Extreme decays (a = -20 forgets in one step, a = -1e-7 keeps 99% over 1e5 steps; the floor on -a lifted) and
# frequencies (w = pi flips sign every step, w = 2 pi / 1e5 is slower than any sequence here).
EXTREME_A = [-20.0, -5.0, -0.5, -1e-2, -1e-4, -1e-7]
EXTREME_W = [0.0, 2 * math.pi / 7, 3.0, math.pi, 2 * math.pi / 1e5]


def extreme_aggregator() -> FFA:
    ffa = FFA(len(EXTREME_A), len(EXTREME_W), fastest_decay=math.inf)
    with torch.no_grad():
        ffa.a.copy_(torch.tensor(EXTREME_A))
        ffa.w.copy_(torch.tensor(EXTREME_W))
    return ffa


def random_inputs(batch, steps, ffa, reset_rate, seed=0):
    generator = torch.Generator().manual_seed(seed)
    u = torch.randn(batch, steps, ffa.memory_size, generator=generator)
    state = torch.randn(batch, ffa.memory_size, ffa.context_size, 2, generator=generator)
    resets = torch.rand(batch, steps, generator=generator) < reset_rate if reset_rate else None
    return u, torch.view_as_complex(state), resets


@pytest.mark.parametrize("steps", [1, 2, 15, 16, 17, 33, 100, 1000])
@pytest.mark.parametrize("reset_rate", [0.0, 0.05])
def test_states_match_float64_loop(steps, reset_rate):
    ffa = extreme_aggregator()
    u, state, resets = random_inputs(3, steps, ffa, reset_rate, seed=steps)
    expected = loop_states(u, ffa.a, ffa.w, state, resets)
    with torch.no_grad():
        states = ffa(u, state, resets)
    assert states.dtype == torch.complex64
    assert relative_error(states, expected, dim=1) <= TOLERANCE


def test_gradients_match_float64_autograd():
    ffa = extreme_aggregator()
    u, state, resets = random_inputs(2, 300, ffa, 0.02)
    weights = torch.randn(*u.shape, ffa.context_size, dtype=torch.complex64)

    def gradients(fn, u, state, a, w):
        u, state = u.clone().requires_grad_(), state.clone().requires_grad_()
        loss = (torch.view_as_real(fn(u, state)) * torch.view_as_real(weights).to(a.dtype)).sum()
        return torch.autograd.grad(loss, [u, state, a, w])

    ours = gradients(lambda u, s: ffa(u, s, resets), u, state, ffa.a, ffa.w)
    a64, w64 = ffa.a.detach().double().requires_grad_(), ffa.w.detach().double().requires_grad_()
    expected = gradients(
        lambda u, s: loop_states(u, a64, w64, s, resets), u.double(), state.to(torch.complex128), a64, w64
    )
    for name, value, reference in zip(["u", "state", "a", "w"], ours, expected, strict=True):
        assert relative_error(value, reference) <= TOLERANCE, name


@pytest.mark.parametrize("reset_rate", [0.0, 1e-3])
def test_hundred_thousand_steps_values_and_gradients(reset_rate, device):
    """T = 100,000 against a float64 loop and its adjoint; no overflow for any decay."""
    ffa = extreme_aggregator().to(device)
    u, state, resets = random_inputs(1, 100_000, ffa, reset_rate)
    weights = torch.randn(*u.shape, ffa.context_size, dtype=torch.complex64)
    expected, grad_u, grad_a, grad_w = loop_states_and_gradients(
        u, ffa.a.detach().cpu(), ffa.w.detach().cpu(), state, resets, weights
    )
    u = u.to(device).requires_grad_()
    states = ffa(u, state.to(device), None if resets is None else resets.to(device))
    assert torch.isfinite(torch.view_as_real(states)).all()
    assert relative_error(states.detach().cpu(), expected, dim=1) <= TOLERANCE
    (torch.view_as_real(states) * torch.view_as_real(weights.to(device))).sum().backward()
    assert relative_error(u.grad.cpu(), grad_u) <= TOLERANCE
    assert relative_error(ffa.a.grad.cpu(), grad_a) <= TOLERANCE
    assert relative_error(ffa.w.grad.cpu(), grad_w) <= TOLERANCE


def test_adjoint_reference_agrees_with_autograd_reference():
    """The long-sequence reference itself, checked against autograd through the plain loop."""
    ffa = extreme_aggregator()
    u, state, resets = random_inputs(2, 50, ffa, 0.1)
    weights = torch.randn(*u.shape, ffa.context_size, dtype=torch.complex128)
    a, w = ffa.a.detach().double().requires_grad_(), ffa.w.detach().double().requires_grad_()
    u64 = u.double().requires_grad_()
    states = loop_states(u64, a, w, state, resets)
    (torch.view_as_real(states) * torch.view_as_real(weights)).sum().backward()
    reference = loop_states_and_gradients(u, a.detach(), w.detach(), state, resets, weights)
    for value, expected in zip([states.detach(), u64.grad, a.grad, w.grad], reference, strict=True):
        assert relative_error(value, expected) < 1e-12


@pytest.mark.parametrize("reset_rate", [0.0, 0.05])
def test_chunks_with_carried_state_equal_one_pass(reset_rate):
    ffa = extreme_aggregator()
    u, state, resets = random_inputs(2, 250, ffa, reset_rate)
    with torch.no_grad():
        whole = ffa(u, state, resets)
        pieces, carried = [], state
        for start, stop in [(0, 1), (1, 40), (40, 41), (41, 200), (200, 250)]:
            piece = ffa(u[:, start:stop], carried, None if resets is None else resets[:, start:stop])
            pieces.append(piece)
            carried = piece[:, -1]
    assert relative_error(torch.cat(pieces, 1), whole, dim=1) <= TOLERANCE


def test_single_step_path_equals_parallel_path():
    ffa = FFA(8, 3)
    u, state, resets = random_inputs(4, 1, ffa, 0.5)
    with torch.no_grad():
        stepped = ffa(u, state, resets)
        parallel = chunked_scan(u, ffa.log_gamma(), state, resets)
    torch.testing.assert_close(stepped, parallel, rtol=1e-6, atol=1e-6)


def test_gradcheck_small_case():
    """Analytic gradients of the chunked scan against finite differences (float64, several chunks)."""
    generator = torch.Generator().manual_seed(3)
    u = torch.randn(2, 21, 3, dtype=torch.float64, generator=generator, requires_grad=True)
    a = torch.tensor([-2.0, -0.3, -0.01], dtype=torch.float64, requires_grad=True)
    w = torch.tensor([0.0, 0.7], dtype=torch.float64, requires_grad=True)
    state = torch.randn(2, 3, 2, dtype=torch.complex128, generator=generator, requires_grad=True)
    resets = torch.zeros(2, 21, dtype=torch.bool)
    resets[0, 5] = resets[1, 12] = resets[1, 13] = True

    def scan(u, a, w, state, resets):
        log_gamma = torch.complex(a[:, None].expand(-1, 2), w[None].expand(3, -1))
        return torch.view_as_real(chunked_scan(u, log_gamma, state, resets, chunk_size=4))

    assert torch.autograd.gradcheck(scan, (u, a, w, state, None))
    assert torch.autograd.gradcheck(scan, (u, a, w, state, resets))
