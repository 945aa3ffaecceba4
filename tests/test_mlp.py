"""BasicMLPCore / PositionalMLPCore against float64 references written from POPGym's definitions."""

import math

import numpy as np
import pytest
import torch

from models.mlp import BasicMLPCore, PositionalMLPCore
from models.positional import SinePositionalEncoding

B, T, D_IN, D_OUT = 3, 9, 6, 8


def np_params(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in module.named_parameters()}


def leaky_relu(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0, v, 0.01 * v)


def ref_mlp(p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    h = leaky_relu(p["mlp.0.weight"] @ x + p["mlp.0.bias"])
    return leaky_relu(p["mlp.2.weight"] @ h + p["mlp.2.bias"])


def ref_pe(t: int, size: int, max_len: int) -> np.ndarray:
    """pe[2i] = sin(t / L^(2i/d)), pe[2i+1] = cos(t / L^(2i/d))."""
    pe = np.zeros(size)
    for j in range(size):
        angle = t / max_len ** (2 * (j // 2) / size)
        pe[j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return pe


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("size", [6, 7, 128])
def test_sine_encoding_formula(size: int) -> None:
    enc = SinePositionalEncoding(size, max_len=1024)
    t = torch.tensor([0, 1, 17, 1023, 5000])
    got = enc.encoding(t).double().numpy()
    want = np.stack([ref_pe(int(s), size, 1024) for s in t])
    # float32 angles t * w lose ~1e-7 * t in absolute precision (POPGym's table is float32 too)
    np.testing.assert_allclose(got[:4], want[:4], atol=1e-4)
    np.testing.assert_allclose(got[4:], want[4:], atol=1e-3)


def test_basic_mlp_matches_reference_and_is_stateless() -> None:
    core = BasicMLPCore(D_IN, D_OUT)
    assert core.initial_state() == {}
    x = torch.randn(B, T, D_IN)
    y, state = core(x, {})
    assert y.shape == (B, T, D_OUT) and state == {}
    p = np_params(core)
    want = np.stack([[ref_mlp(p, x[b, t].double().numpy()) for t in range(T)] for b in range(B)])
    np.testing.assert_allclose(y.detach().double().numpy(), want, atol=1e-5)


def test_positional_initial_state() -> None:
    state = PositionalMLPCore(D_IN, D_OUT).initial_state()
    assert set(state) == {"t"}
    assert state["t"].dtype == torch.int32 and state["t"].shape == (1,) and state["t"].item() == 0


@pytest.mark.parametrize("strength", [0.3, 1.7])
def test_positional_mlp_matches_reference(strength: float) -> None:
    core = PositionalMLPCore(D_IN, D_OUT, max_len=50)
    with torch.no_grad():
        core.position.strength.fill_(strength)
    s = min(max(strength, 0.0), 1.0)  # POPGym clamps the strength to [0, 1]
    t0 = torch.tensor([[0], [4], [60]], dtype=torch.int32)
    x = torch.randn(B, T, D_IN)
    y, state = core(x, {"t": t0})
    assert state["t"].dtype == torch.int32
    assert state["t"][:, 0].tolist() == [T, 4 + T, 60 + T]
    p = np_params(core)
    want = np.zeros((B, T, D_OUT))
    for b in range(B):
        for t in range(T):
            mixed = (1 - s) * x[b, t].double().numpy() + s * ref_pe(int(t0[b]) + t, D_IN, 50)
            want[b, t] = ref_mlp(p, mixed)
    np.testing.assert_allclose(y.detach().double().numpy(), want, atol=1e-5)


def test_positional_chunked_and_stepwise_equal_one_pass() -> None:
    core = PositionalMLPCore(D_IN, D_OUT)
    x = torch.randn(B, T, D_IN)
    y, state = core(x, core.batched_initial_state(B))
    y1, s1 = core(x[:, :4], core.batched_initial_state(B))
    y2, s2 = core(x[:, 4:], s1)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y)
    assert torch.equal(s2["t"], state["t"])
    s = core.batched_initial_state(B)
    steps = []
    for t in range(T):
        y_t, s = core(x[:, t : t + 1], s)
        steps.append(y_t)
    torch.testing.assert_close(torch.cat(steps, 1), y)


def test_positional_is_causal_and_uses_position() -> None:
    core = PositionalMLPCore(D_IN, D_OUT)
    x = torch.randn(B, T, D_IN)
    y, _ = core(x, core.batched_initial_state(B))
    x2 = x.clone()
    x2[:, 5] += 1.0
    y2, _ = core(x2, core.batched_initial_state(B))
    torch.testing.assert_close(y2[:, :5], y[:, :5])
    torch.testing.assert_close(y2[:, 6:], y[:, 6:])
    assert not torch.allclose(y2[:, 5], y[:, 5])
    # same input at different steps gives different outputs (the position is seen)
    same = x[:, :1].expand(B, T, D_IN)
    y3, _ = core(same, core.batched_initial_state(B))
    assert not torch.allclose(y3[:, 0], y3[:, 1])


def test_positional_gradients_reach_all_parameters() -> None:
    core = PositionalMLPCore(D_IN, D_OUT)
    y, _ = core(torch.randn(B, T, D_IN), core.batched_initial_state(B))
    y.square().sum().backward()
    for name, param in core.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_popgym_sizes_parameter_count() -> None:
    assert sum(p.numel() for p in BasicMLPCore(128, 256).parameters()) == 128 * 256 + 256 + 256 * 256 + 256
    assert sum(p.numel() for p in PositionalMLPCore(128, 256).parameters()) == 128 * 256 + 256 + 256 * 256 + 256 + 1
