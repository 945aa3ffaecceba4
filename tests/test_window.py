"""FramestackCore / FrameconvCore against float64 step-by-step references of POPGym's window models.

The sine step embedding is the network's (mixed in before the preprocessor), so the window holds the core's
inputs and the state is only the last k - 1 of them."""

import numpy as np
import pytest
import torch

from models.window import FrameconvCore, FramestackCore

B, T, D_IN, D_OUT = 3, 10, 6, 8
CORES = [FramestackCore, FrameconvCore]


def leaky_relu(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0, v, 0.01 * v)


def ref_frames(previous: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The inputs the windows see: [the k - 1 carried frames ++ x], one sequence."""
    return np.concatenate([previous, x])


def ref_framestack(core: FramestackCore, frames: np.ndarray, steps: int) -> np.ndarray:
    """y_t = MLP([C x_{t-k+1} + b_C, ..., C x_t + b_C]) over ``frames`` = [k - 1 previous ++ x]."""
    p = {k: v.detach().double().numpy() for k, v in core.named_parameters()}
    k = core.stack_size
    out = []
    for t in range(steps):
        h = np.concatenate([p["compress.weight"] @ frames[t + j] + p["compress.bias"] for j in range(k)])
        h = leaky_relu(p["mlp.0.weight"] @ h + p["mlp.0.bias"])
        out.append(leaky_relu(p["mlp.2.weight"] @ h + p["mlp.2.bias"]))
    return np.stack(out)


def ref_frameconv(core: FrameconvCore, frames: np.ndarray, steps: int) -> np.ndarray:
    """y_t = b + sum_j W_j x_{t-k+1+j} over ``frames`` = [k - 1 previous ++ x]."""
    w, bias = core.conv.weight.detach().double().numpy(), core.conv.bias.detach().double().numpy()
    k = core.stack_size
    return np.stack([bias + sum(w[:, :, j] @ frames[t + j] for j in range(k)) for t in range(steps)])


REFERENCE = {FramestackCore: ref_framestack, FrameconvCore: ref_frameconv}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("carried", [False, True])
@pytest.mark.parametrize("stack_size", [1, 2, 4])
@pytest.mark.parametrize("cls", CORES)
def test_matches_reference(cls: type, stack_size: int, carried: bool) -> None:
    core = cls(D_IN, D_OUT, stack_size=stack_size)
    state = core.batched_initial_state(B)
    if carried:  # mid-episode: the window starts with earlier inputs
        state["frames"] = torch.randn_like(state["frames"])
    x = torch.randn(B, T, D_IN)
    y, final = core(x, state)
    assert y.shape == (B, T, D_OUT)
    for b in range(B):
        frames = ref_frames(state["frames"][b].double().numpy(), x[b].double().numpy())
        want = REFERENCE[cls](core, frames, T)
        np.testing.assert_allclose(y[b].detach().double().numpy(), want, atol=1e-5)
        # the state holds the last k - 1 raw inputs
        np.testing.assert_allclose(
            final["frames"][b].detach().double().numpy(), frames[len(frames) - (stack_size - 1) :], atol=0
        )


@pytest.mark.parametrize("cls", CORES)
def test_initial_state(cls: type) -> None:
    state = cls(D_IN, D_OUT).initial_state()
    assert set(state) == {"frames"}  # no step counter: the embedding is the network's
    assert state["frames"].dtype == torch.float32 and state["frames"].shape == (3, D_IN)  # POPGym's k = 4
    assert not state["frames"].any()


@pytest.mark.parametrize("cls", CORES)
def test_no_positional_option(cls: type) -> None:
    with pytest.raises(TypeError):
        cls(D_IN, D_OUT, positional=True)
    assert not hasattr(cls(D_IN, D_OUT), "position")


@pytest.mark.parametrize("cls", CORES)
def test_chunked_and_stepwise_equal_one_pass(cls: type) -> None:
    core = cls(D_IN, D_OUT)
    x = torch.randn(B, T, D_IN)
    y, state = core(x, core.batched_initial_state(B))
    # chunks shorter and longer than the window
    s = core.batched_initial_state(B)
    outs = []
    for lo, hi in [(0, 2), (2, 3), (3, 8), (8, T)]:
        y_c, s = core(x[:, lo:hi], s)
        outs.append(y_c)
    torch.testing.assert_close(torch.cat(outs, 1), y)
    assert s.keys() == state.keys()
    for key in state:
        torch.testing.assert_close(s[key], state[key])
    s = core.batched_initial_state(B)
    steps = []
    for t in range(T):
        y_t, s = core(x[:, t : t + 1], s)
        steps.append(y_t)
    torch.testing.assert_close(torch.cat(steps, 1), y)
    torch.testing.assert_close(s["frames"], state["frames"])


@pytest.mark.parametrize("cls", CORES)
def test_causal_and_window_limited(cls: type) -> None:
    core = cls(D_IN, D_OUT)
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
    # compress 128 -> 256 / 4, then MLP 256 -> 256 -> 256; no encoding strength (the network's)
    assert sum(p.numel() for p in FramestackCore(128, 256).parameters()) == 128 * 64 + 64 + 2 * (256 * 256 + 256)
    # Conv1d(128, 256, kernel_size=4)
    assert sum(p.numel() for p in FrameconvCore(128, 256).parameters()) == 128 * 256 * 4 + 256
