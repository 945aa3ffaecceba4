"""FramestackCore / FrameconvCore against float64 step-by-step references of POPGym's window models."""

import math

import numpy as np
import pytest
import torch

from models.window import FrameconvCore, FramestackCore

B, T, D_IN, D_OUT = 3, 10, 6, 8
CORES = [FramestackCore, FrameconvCore]


def leaky_relu(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0, v, 0.01 * v)


def ref_pe(t: int, size: int, max_len: int = 1024) -> np.ndarray:
    """pe[2i] = sin(t / L^(2i/d)), pe[2i+1] = cos(t / L^(2i/d))."""
    angle = [t / max_len ** (2 * (j // 2) / size) for j in range(size)]
    return np.array([math.sin(a) if j % 2 == 0 else math.cos(a) for j, a in enumerate(angle)])


def ref_frames(core: torch.nn.Module, x: np.ndarray, positional: bool) -> np.ndarray:
    """The inputs the window sees, [k - 1 zero frames ++ x_t (mixed with pe(t) if positional)]."""
    k = core.stack_size
    if positional:
        s = core.position.strength.item()
        x = np.stack([(1 - s) * x[t] + s * ref_pe(t, x.shape[1]) for t in range(len(x))])
    return np.concatenate([np.zeros((k - 1, x.shape[1])), x])


def ref_framestack(core: FramestackCore, x: np.ndarray, positional: bool) -> np.ndarray:
    """y_t = MLP([C x_{t-k+1} + b_C, ..., C x_t + b_C]), one sequence x [T, D_IN]."""
    p = {k: v.detach().double().numpy() for k, v in core.named_parameters()}
    frames, k = ref_frames(core, x, positional), core.stack_size
    out = []
    for t in range(len(x)):
        h = np.concatenate([p["compress.weight"] @ frames[t + j] + p["compress.bias"] for j in range(k)])
        h = leaky_relu(p["mlp.0.weight"] @ h + p["mlp.0.bias"])
        out.append(leaky_relu(p["mlp.2.weight"] @ h + p["mlp.2.bias"]))
    return np.stack(out)


def ref_frameconv(core: FrameconvCore, x: np.ndarray, positional: bool) -> np.ndarray:
    """y_t = b + sum_j W_j x_{t-k+1+j}, one sequence x [T, D_IN]."""
    w, bias = core.conv.weight.detach().double().numpy(), core.conv.bias.detach().double().numpy()
    frames, k = ref_frames(core, x, positional), core.stack_size
    return np.stack([bias + sum(w[:, :, j] @ frames[t + j] for j in range(k)) for t in range(len(x))])


REFERENCE = {FramestackCore: ref_framestack, FrameconvCore: ref_frameconv}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("positional", [True, False])
@pytest.mark.parametrize("stack_size", [1, 2, 4])
@pytest.mark.parametrize("cls", CORES)
def test_matches_reference(cls: type, stack_size: int, positional: bool) -> None:
    core = cls(D_IN, D_OUT, stack_size=stack_size, positional=positional)
    if positional:
        with torch.no_grad():
            core.position.strength.fill_(0.3)
    x = torch.randn(B, T, D_IN)
    y, state = core(x, core.batched_initial_state(B))
    assert y.shape == (B, T, D_OUT)
    for b in range(B):
        xb = x[b].double().numpy()
        want = REFERENCE[cls](core, xb, positional)
        np.testing.assert_allclose(y[b].detach().double().numpy(), want, atol=1e-5)
        # the state holds the last k - 1 (mixed) inputs
        frames = ref_frames(core, xb, positional)
        np.testing.assert_allclose(
            state["frames"][b].detach().double().numpy(), frames[len(frames) - (stack_size - 1) :], atol=1e-6
        )


@pytest.mark.parametrize("positional", [True, False])
@pytest.mark.parametrize("cls", CORES)
def test_initial_state(cls: type, positional: bool) -> None:
    state = cls(D_IN, D_OUT, positional=positional).initial_state()
    assert set(state) == ({"frames", "t"} if positional else {"frames"})
    assert state["frames"].dtype == torch.float32 and state["frames"].shape == (3, D_IN)  # POPGym's k = 4
    assert not state["frames"].any()
    if positional:
        assert state["t"].dtype == torch.int32 and state["t"].shape == (1,) and state["t"].item() == 0


@pytest.mark.parametrize("positional", [True, False])
@pytest.mark.parametrize("cls", CORES)
def test_chunked_and_stepwise_equal_one_pass(cls: type, positional: bool) -> None:
    core = cls(D_IN, D_OUT, positional=positional)
    x = torch.randn(B, T, D_IN)
    y, state = core(x, core.batched_initial_state(B))
    # chunks shorter and longer than the window
    s = core.batched_initial_state(B)
    outs = []
    for lo, hi in [(0, 2), (2, 3), (3, 8), (8, T)]:
        y_c, s = core(x[:, lo:hi], s)
        outs.append(y_c)
    torch.testing.assert_close(torch.cat(outs, 1), y)
    for key in state:
        torch.testing.assert_close(s[key], state[key])
    s = core.batched_initial_state(B)
    steps = []
    for t in range(T):
        y_t, s = core(x[:, t : t + 1], s)
        steps.append(y_t)
    torch.testing.assert_close(torch.cat(steps, 1), y)


@pytest.mark.parametrize("cls", CORES)
def test_causal_and_window_limited(cls: type) -> None:
    core = cls(D_IN, D_OUT, positional=False)
    x = torch.randn(B, T, D_IN)
    y, _ = core(x, core.batched_initial_state(B))
    x2 = x.clone()
    x2[:, 3] += 1.0
    y2, _ = core(x2, core.batched_initial_state(B))
    torch.testing.assert_close(y2[:, :3], y[:, :3])  # causal
    for t in range(3, 7):  # seen while x_3 is inside the window of k = 4
        assert not torch.allclose(y2[:, t], y[:, t])
    torch.testing.assert_close(y2[:, 7:], y[:, 7:])  # forgotten afterwards


@pytest.mark.parametrize("cls", CORES)
def test_gradients_reach_all_parameters(cls: type) -> None:
    core = cls(D_IN, D_OUT)
    y, _ = core(torch.randn(B, T, D_IN), core.batched_initial_state(B))
    y.square().sum().backward()
    for name, param in core.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_framestack_needs_divisible_output() -> None:
    with pytest.raises(ValueError, match="divisible"):
        FramestackCore(D_IN, 10, stack_size=4)


def test_popgym_sizes_parameter_count() -> None:
    # compress 128 -> 256 / 4, then MLP 256 -> 256 -> 256, + the encoding strength
    assert sum(p.numel() for p in FramestackCore(128, 256).parameters()) == 128 * 64 + 64 + 2 * (256 * 256 + 256) + 1
    # Conv1d(128, 256, kernel_size=4), + the encoding strength
    assert sum(p.numel() for p in FrameconvCore(128, 256).parameters()) == 128 * 256 * 4 + 256 + 1
