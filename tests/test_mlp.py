"""BasicMLPCore and POPGym's sine step embedding (SinePositionalEncoding) against float64 references
written from POPGym's definitions. "MLP" is BasicMLPCore plus the network's embedding, applied after the
feature map's LayerNorm and before the preprocessor; the cores themselves carry no step counter."""

import math

import numpy as np
import pytest
import torch

from models import get_model
from models.mlp import BasicMLPCore
from models.network import MemoryNetwork
from models.positional import SinePositionalEncoding

B, T, D_IN, D_OUT = 3, 9, 6, 8


def np_params(module: torch.nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().double().numpy() for k, v in module.named_parameters()}


def leaky_relu(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0, v, 0.01 * v)


def ref_mlp(p: dict[str, np.ndarray], x: np.ndarray, prefix: str = "mlp") -> np.ndarray:
    h = leaky_relu(p[f"{prefix}.0.weight"] @ x + p[f"{prefix}.0.bias"])
    return leaky_relu(p[f"{prefix}.2.weight"] @ h + p[f"{prefix}.2.bias"])


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


def test_basic_mlp_matches_reference_and_is_stateless() -> None:
    core = BasicMLPCore(D_IN, D_OUT)
    assert core.initial_state() == {}
    x = torch.randn(B, T, D_IN)
    y, state = core(x, {})
    assert y.shape == (B, T, D_OUT) and state == {}
    p = np_params(core)
    want = np.stack([[ref_mlp(p, x[b, t].double().numpy()) for t in range(T)] for b in range(B)])
    np.testing.assert_allclose(y.detach().double().numpy(), want, atol=1e-5)


def test_basic_mlp_popgym_sizes_parameter_count() -> None:
    assert sum(p.numel() for p in BasicMLPCore(128, 256).parameters()) == 128 * 256 + 256 + 256 * 256 + 256


@pytest.mark.parametrize("size", [6, 7, 128])
def test_sine_encoding_formula(size: int) -> None:
    enc = SinePositionalEncoding(size, max_len=1024)
    t = torch.tensor([0, 1, 17, 1023, 5000])
    got = enc.encoding(t).double().numpy()
    assert got.shape == (5, size)
    want = np.stack([ref_pe(int(s), size, 1024) for s in t])
    # float32 angles t * w lose ~1e-7 * t in absolute precision (POPGym's table is float32 too)
    np.testing.assert_allclose(got[:4], want[:4], atol=1e-4)
    np.testing.assert_allclose(got[4:], want[4:], atol=1e-3)


def test_sine_encoding_base_is_max_len() -> None:
    got = SinePositionalEncoding(8, max_len=50).encoding(torch.tensor([3, 40])).double().numpy()
    np.testing.assert_allclose(got, np.stack([ref_pe(3, 8, 50), ref_pe(40, 8, 50)]), atol=1e-5)
    assert not np.allclose(got, np.stack([ref_pe(3, 8, 1024), ref_pe(40, 8, 1024)]), atol=1e-3)


def test_sine_strength_is_the_only_parameter_and_starts_at_half() -> None:
    enc = SinePositionalEncoding(D_IN)
    assert [(name, p.item()) for name, p in enc.named_parameters()] == [("strength", 0.5)]


@pytest.mark.parametrize("strength", [0.3, 1.7, -0.4])
def test_sine_mix_matches_reference_and_clamps_strength(strength: float) -> None:
    enc = SinePositionalEncoding(D_IN, max_len=50)
    with torch.no_grad():
        enc.strength.fill_(strength)
    s = min(max(strength, 0.0), 1.0)  # POPGym clamps the strength to [0, 1]
    t0 = torch.tensor([0, 4, 60], dtype=torch.int32)  # each episode's first step
    x = torch.randn(B, T, D_IN)
    y = enc(x, t0)
    want = np.zeros((B, T, D_IN))
    for b in range(B):
        for t in range(T):
            want[b, t] = (1 - s) * x[b, t].double().numpy() + s * ref_pe(int(t0[b]) + t, D_IN, 50)
    np.testing.assert_allclose(y.detach().double().numpy(), want, atol=1e-5)


def test_sine_mix_at_strength_one_ignores_the_input() -> None:
    enc = SinePositionalEncoding(D_IN)
    with torch.no_grad():
        enc.strength.fill_(1.7)  # acts as 1: the input is replaced by the encoding
    t0 = torch.tensor([2, 5, 9])
    torch.testing.assert_close(enc(torch.randn(B, T, D_IN), t0), enc(torch.randn(B, T, D_IN), t0))


def test_sine_mix_chunked_equals_one_pass() -> None:
    enc = SinePositionalEncoding(D_IN)
    x, t0 = torch.randn(B, T, D_IN), torch.tensor([0, 3, 11], dtype=torch.int32)
    y = enc(x, t0)
    torch.testing.assert_close(torch.cat([enc(x[:, :4], t0), enc(x[:, 4:], t0 + 4)], 1), y)
    # the same input at different steps differs: the step is seen
    same = enc(x[:, :1].expand(B, T, D_IN), t0)
    assert not torch.allclose(same[:, 0], same[:, 1])


def test_sine_strength_gets_gradient() -> None:
    enc = SinePositionalEncoding(D_IN)
    enc(torch.randn(B, T, D_IN), torch.zeros(B, dtype=torch.int32)).square().sum().backward()
    assert enc.strength.grad is not None and enc.strength.grad.abs() > 0


def test_mlp_is_basic_mlp_core_with_the_networks_embedding() -> None:
    assert get_model("MLP").core is BasicMLPCore and get_model("MLP").positional
    assert get_model("BasicMLP").core is BasicMLPCore and not get_model("BasicMLP").positional


def test_mlp_network_embeds_between_layernorm_and_preprocessor() -> None:
    """Float64: f = LN(W_f x + b_f) (no affine), f <- (1 - s) f + s pe(t), p = LeakyReLU(W_p f + b_p), y = MLP(p)."""
    emb, out, max_len = 8, 12, 50
    net = MemoryNetwork("MLP", D_IN, 3, embedding_size=emb, memory_output_size=out, positional_max_len=max_len)
    with torch.no_grad():
        net.embedding.strength.fill_(0.3)
    state = net.batched_initial_state(B)
    assert state.keys() == {"t"} and state["t"].dtype == torch.int32
    state["t"] += torch.tensor([[0], [4], [60]], dtype=torch.int32)
    x = torch.randn(B, T, D_IN)
    y, final = net.memory(x, state)
    assert final["t"][:, 0].tolist() == [T, 4 + T, 60 + T]
    p = np_params(net)
    want = np.zeros((B, T, out))
    for b in range(B):
        for t in range(T):
            f = p["feature_map.0.weight"] @ x[b, t].double().numpy() + p["feature_map.0.bias"]
            f = (f - f.mean()) / np.sqrt(f.var() + 1e-5)
            f = 0.7 * f + 0.3 * ref_pe(int(state["t"][b, 0]) + t, emb, max_len)
            pre = leaky_relu(p["preprocessor.0.weight"] @ f + p["preprocessor.0.bias"])
            want[b, t] = ref_mlp(p, pre, prefix="core.mlp")
    np.testing.assert_allclose(y.detach().double().numpy(), want, atol=1e-5)
