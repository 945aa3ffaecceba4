"""LinearAttentionCore and FastWeightProgrammerCore against step-by-step float64 recurrences written
from the papers' equations and POPGym's block layout."""

import math

import pytest
import torch

from models.attention import FastWeightProgrammerCore, LinearAttentionCore

IN, OUT = 12, 36  # small widths: h = 5 (linear attention), 6 (FWP)
CORES = {
    "linear_attention": lambda **kw: LinearAttentionCore(IN, OUT, **kw),
    "fwp": lambda **kw: FastWeightProgrammerCore(IN, OUT, **kw),
    "fwp_delta": lambda **kw: FastWeightProgrammerCore(IN, OUT, delta_rule=True, **kw),
}


def make(name: str, chunk_size: int = 8, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    core = CORES[name](chunk_size=chunk_size, **kw)
    with torch.no_grad():  # move every parameter off its default so the reference checks them all
        for p in core.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return core


def random_state(core: torch.nn.Module, batch: int, t0: int = 7) -> dict[str, torch.Tensor]:
    """A mid-episode state: nonnegative key sums, as the recurrences produce."""
    state = core.batched_initial_state(batch)
    for key in ("S", "W"):
        if key in state:
            state[key] = torch.randn_like(state[key])
    if "z" in state:
        state["z"] = torch.rand_like(state["z"]) * 3
    if "t" in state:
        state["t"] += t0
    return state


def reference(core: torch.nn.Module, x: torch.Tensor, state: dict[str, torch.Tensor]) -> torch.Tensor:
    """Float64, one step at a time, from the equations (not from the module's code)."""
    p = {k: v.detach().double() for k, v in core.named_parameters()}
    x = x.double()
    batch, steps, d = x.shape
    h = core.hidden_size
    w_q, w_k, w_v = p["qkv.weight"].split(h)
    if core.embedding is not None:  # POPGym: pe[t, 0::2] = sin(t * div), pe[t, 1::2] = cos(t * div)
        div = torch.exp(torch.arange(0, d, 2).double() * (-math.log(1024) / d))
        t = (state["t"].double() + torch.arange(steps).double()).unsqueeze(-1)
        pe = torch.zeros(batch, steps, d, dtype=torch.float64)
        pe[..., 0::2], pe[..., 1::2] = torch.sin(t * div), torch.cos(t * div)
        s = p["embedding.strength"].clamp(0, 1)
        x = x * (1 - s) + pe * s
    mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    x = (x - mean) / torch.sqrt(var + 1e-5) * p["norm.weight"] + p["norm.bias"]

    def elu1(a: torch.Tensor) -> torch.Tensor:
        return torch.where(a > 0, a + 1, torch.exp(a))

    def sum_norm(a: torch.Tensor) -> torch.Tensor:
        a = a.clamp(min=0)
        return a / (a.sum() + 1e-5)

    out = torch.zeros(batch, steps, h, dtype=torch.float64)
    for b in range(batch):
        mem = {k: v[b].double() for k, v in state.items()}
        for t in range(steps):
            q, k, v = w_q @ x[b, t], w_k @ x[b, t], w_v @ x[b, t]
            if isinstance(core, LinearAttentionCore):
                fq, fk = elu1(q), elu1(k)
                mem["S"] = mem["S"] + torch.outer(fk, v)
                mem["z"] = mem["z"] + fk
                out[b, t] = (fq @ mem["S"]) / (fq @ mem["z"] + 1e-5)
            elif core.beta is None:
                mem["W"] = mem["W"] + torch.outer(v, sum_norm(k))
                out[b, t] = mem["W"] @ sum_norm(q)
            else:
                beta = torch.sigmoid(p["beta.weight"][0] @ x[b, t] + p["beta.bias"][0])
                fk = sum_norm(k)
                mem["W"] = mem["W"] + beta * torch.outer(v - mem["W"] @ fk, fk)
                out[b, t] = mem["W"] @ sum_norm(q)
    relu = torch.relu
    a = relu(relu(out @ p["ff.0.weight"].T + p["ff.0.bias"]) @ p["ff.2.weight"].T + p["ff.2.bias"])
    a = a + x @ p["shortcut.weight"].T + p["shortcut.bias"]
    return a @ p["unmap.weight"].T + p["unmap.bias"]


@pytest.mark.parametrize("embedding", [True, False])
@pytest.mark.parametrize("name", list(CORES))
def test_matches_float64_recurrence(name: str, embedding: bool) -> None:
    core = make(name, positional=embedding)
    x = torch.randn(3, 45, IN)  # 45: several chunks of 8 and a partial one
    state = random_state(core, 3)
    y, _ = core(x, state)
    torch.testing.assert_close(y.double(), reference(core, x, state), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list(CORES))
def test_long_sequence_accuracy(name: str) -> None:
    core = make(name, chunk_size=32)  # the default chunk
    x = torch.randn(1, 400, IN) * 2
    state = core.batched_initial_state(1)
    y, _ = core(x, state)
    torch.testing.assert_close(y.double(), reference(core, x, state), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list(CORES))
def test_chunks_equal_one_pass(name: str) -> None:
    core = make(name)
    x, state = torch.randn(4, 53, IN), random_state(core, 4)
    y, final = core(x, state)
    y1, mid = core(x[:, :21], state)
    y2, final2 = core(x[:, 21:], mid)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-5, atol=1e-5)
    assert final.keys() == final2.keys() == state.keys()
    for key in final:
        torch.testing.assert_close(final2[key], final[key], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(CORES))
def test_single_steps_equal_parallel_pass(name: str) -> None:
    core = make(name)
    x, state = torch.randn(2, 20, IN), random_state(core, 2)
    y, final = core(x, state)
    step_state, ys = state, []
    for t in range(20):
        y_t, step_state = core(x[:, t : t + 1], step_state)
        ys.append(y_t)
    torch.testing.assert_close(torch.cat(ys, 1), y, rtol=1e-5, atol=1e-5)
    for key in final:
        torch.testing.assert_close(step_state[key], final[key], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", list(CORES))
def test_causal(name: str) -> None:
    core = make(name)
    x, state = torch.randn(2, 40, IN), random_state(core, 2)
    y, _ = core(x, state)
    x2 = x.clone()
    x2[:, 17] += torch.randn(IN)
    y2, _ = core(x2, state)
    torch.testing.assert_close(y2[:, :17], y[:, :17], rtol=0, atol=0)
    changed = (y2[:, 17:] - y[:, 17:]).abs().amax(-1) > 1e-5
    assert changed[:, 0].all() and changed[:, 1:].any(dim=1).all()  # step 17 and, through memory, later ones


@pytest.mark.parametrize("name", list(CORES))
def test_gradients_reach_every_parameter(name: str) -> None:
    core = make(name)
    y, _ = core(torch.randn(2, 30, IN), random_state(core, 2))
    y.square().mean().backward()
    for param_name, p in core.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, param_name


def test_initial_state_and_popgym_sizes() -> None:
    la, fwp = LinearAttentionCore(128, 256), FastWeightProgrammerCore(128, 256)
    assert (la.hidden_size, fwp.hidden_size) == (15, 16)  # round(sqrt(256) - 1), round(sqrt(256))
    assert {k: (tuple(v.shape), v.dtype) for k, v in la.initial_state().items()} == {
        "S": ((15, 15), torch.float32),
        "z": ((15,), torch.float32),
        "t": ((1,), torch.int32),
    }
    assert {k: (tuple(v.shape), v.dtype) for k, v in fwp.initial_state().items()} == {
        "W": ((16, 16), torch.float32),
        "t": ((1,), torch.int32),
    }
    assert all(v.abs().sum() == 0 for v in [*la.initial_state().values(), *fwp.initial_state().values()])
    assert FastWeightProgrammerCore(128, 256, positional=False).initial_state().keys() == {"W"}
    y, state = la(torch.randn(3, 5, 128), la.batched_initial_state(3))
    assert y.shape == (3, 5, 256) and state["t"].dtype == torch.int32 and state["t"].tolist() == [[5]] * 3


def test_positional_strength_is_clamped() -> None:
    core = make("linear_attention")
    x, state = torch.randn(1, 6, IN), random_state(core, 1)
    with torch.no_grad():
        core.embedding.strength.fill_(1.7)  # acts as 1: the input is replaced by the encoding
    y, _ = core(x, state)
    y2, _ = core(torch.randn(1, 6, IN), state)
    torch.testing.assert_close(y, y2)
