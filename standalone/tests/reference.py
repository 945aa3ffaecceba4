"""Independent float64 references for the FFA recurrence: a plain step-by-step loop and its adjoint."""

import numpy as np
import torch


def loop_states(u, a, w, state, resets=None):
    """S_t = gamma * S_{t-1} * (1 - r_t) + u_t 1_c^T, one step at a time in complex128 (torch, differentiable).

    u [B, T, m], a [m], w [c], state [B, m, c] complex, resets [B, T] bool or None -> [B, T, m, c].
    """
    gamma = torch.exp(torch.complex(a.double()[:, None].expand(-1, w.numel()), w.double()[None].expand(a.numel(), -1)))
    s = state.to(torch.complex128)
    out = []
    for t in range(u.shape[1]):
        if resets is not None:
            s = s * (~resets[:, t, None, None]).double()
        s = gamma * s + u[:, t, :, None].double()
        out.append(s)
    return torch.stack(out, 1)


def loop_states_and_gradients(u, a, w, state, resets, weights):
    """Float64 numpy forward loop and adjoint (backward) loop of the same recurrence, for long sequences.

    Loss = sum_t Re(conj(weights_t) . S_t). Returns states [B, T, m, c] and the loss gradients with
    respect to u [B, T, m], a [m], w [c], via lambda_t = weights_t + conj(g_{t+1}) lambda_{t+1} with
    g_t = gamma (1 - r_t).
    """
    u, a, w = (np.asarray(v, dtype=np.float64) for v in (u, a, w))
    s0 = np.asarray(state, dtype=np.complex128)
    weights = np.asarray(weights, dtype=np.complex128)
    batch, steps, m = u.shape
    gamma = np.exp(a[:, None] + 1j * w[None, :])
    keep = np.ones((batch, steps)) if resets is None else 1.0 - np.asarray(resets, dtype=np.float64)
    states = np.empty((batch, steps, m, w.size), dtype=np.complex128)
    s = s0
    for t in range(steps):
        s = gamma * s * keep[:, t, None, None] + u[:, t, :, None]
        states[:, t] = s
    grad_u = np.empty_like(u)
    grad_a = np.zeros(m)
    grad_w = np.zeros(w.size)
    adjoint = np.zeros_like(s0)
    for t in reversed(range(steps)):
        adjoint = adjoint + weights[:, t]
        grad_u[:, t] = adjoint.real.sum(-1)
        previous = states[:, t - 1] if t > 0 else s0
        contribution = np.conj(adjoint) * gamma * previous * keep[:, t, None, None]  # dL/d(log gamma) terms
        grad_a += contribution.real.sum((0, 2))
        grad_w += -contribution.imag.sum((0, 1))
        adjoint = np.conj(gamma) * adjoint * keep[:, t, None, None]
    return states, grad_u, grad_a, grad_w


def relative_error(value, reference, dim=None):
    """max |value - reference| / max |reference|, the max taken over `dim` (all if None) then over the rest."""
    value = torch.as_tensor(value).to(torch.complex128)
    reference = torch.as_tensor(reference).to(torch.complex128)
    error = (value - reference).abs()
    if dim is None:
        return (error.max() / reference.abs().max()).item()
    return (error.amax(dim) / reference.abs().amax(dim).clamp(min=1e-30)).max().item()
