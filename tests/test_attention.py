"""LinearAttentionCore and FastWeightProgrammerCore against step-by-step float64 recurrences written
from the equations of POPGym 689d89b's block: q, k, v = W LayerNorm(x), y = unmap(memory(q, k, v)),
h = round(sqrt(output_size)), no feed-forward block, no shortcut, FWP's readout W^T phi(q), LinearAttention's
denominator (sum phi(q)) (sum z) (and popgym 1.0.7's phi(q) . z as the registered variant)."""

import pytest
import torch

from models import get_model
from models.attention import FastWeightProgrammerCore, LinearAttentionCore

IN, OUT = 12, 36  # small widths: h = round(sqrt(36)) = 6 for both
CORES = {
    "linear_attention": lambda **kw: LinearAttentionCore(IN, OUT, **kw),
    "linear_attention_dot": lambda **kw: LinearAttentionCore(IN, OUT, denominator="dot", **kw),
    "fwp": lambda **kw: FastWeightProgrammerCore(IN, OUT, **kw),
}


def make(name: str, chunk_size: int = 8) -> torch.nn.Module:
    torch.manual_seed(0)
    core = CORES[name](chunk_size=chunk_size)
    with torch.no_grad():  # move every parameter off its default so the reference checks them all
        for p in core.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return core


def random_state(core: torch.nn.Module, batch: int) -> dict[str, torch.Tensor]:
    """A mid-episode state: nonnegative key sums, as the recurrences produce; W not symmetric."""
    state = core.batched_initial_state(batch)
    for key in ("S", "W"):
        if key in state:
            state[key] = torch.randn_like(state[key])
    if "z" in state:
        state["z"] = torch.rand_like(state["z"]) * 3
    return state


def elu1(a: torch.Tensor) -> torch.Tensor:
    return torch.where(a > 0, a + 1, torch.exp(a))


def sum_norm(a: torch.Tensor) -> torch.Tensor:
    a = a.clamp(min=0)
    return a / (a.sum() + 1e-5)


def denominator(kind: str, fq: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """POPGym 689d89b's einsum("bti, btl -> bt", Q, Z) for one step, written out: sum_i sum_l q_i z_l;
    popgym 1.0.7's einsum("bti, bti -> bt", Q, Z): sum_i q_i z_i."""
    h = len(fq)
    if kind == "sums":
        return sum(fq[i] * z[j] for i in range(h) for j in range(h))
    return sum(fq[i] * z[i] for i in range(h))


def reference(
    core: torch.nn.Module, x: torch.Tensor, state: dict[str, torch.Tensor], fwp_readout: str = "popgym"
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """Float64, one step at a time, from the equations (not from the module's code).

    Returns the memory readouts a [B, T, h], the outputs y = unmap(a) and the final state. ``fwp_readout``
    "paper" reads the fast weights as W phi(q) instead of POPGym's W^T phi(q).
    """
    p = {k: v.detach().double() for k, v in core.named_parameters()}
    x = x.double()
    batch, steps, _ = x.shape
    h = core.hidden_size
    w_q, w_k, w_v = p["qkv.weight"].split(h)
    mean, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    x = (x - mean) / torch.sqrt(var + 1e-5) * p["norm.weight"] + p["norm.bias"]

    out = torch.zeros(batch, steps, h, dtype=torch.float64)
    final = {k: torch.zeros_like(v, dtype=torch.float64) for k, v in state.items()}
    for b in range(batch):
        mem = {k: v[b].double() for k, v in state.items()}
        for t in range(steps):
            q, k, v = w_q @ x[b, t], w_k @ x[b, t], w_v @ x[b, t]
            if isinstance(core, LinearAttentionCore):
                fq, fk = elu1(q), elu1(k)
                mem["S"] = mem["S"] + torch.outer(fk, v)
                mem["z"] = mem["z"] + fk
                out[b, t] = (fq @ mem["S"]) / (denominator(core.denominator, fq, mem["z"]) + 1e-5)
            else:
                mem["W"] = mem["W"] + torch.outer(v, sum_norm(k))
                w = mem["W"].T if fwp_readout == "popgym" else mem["W"]
                out[b, t] = w @ sum_norm(q)
        for key in mem:
            final[key][b] = mem[key]
    return out, out @ p["unmap.weight"].T + p["unmap.bias"], final


@pytest.mark.parametrize("name", list(CORES))
def test_matches_float64_recurrence(name: str) -> None:
    core = make(name)
    x = torch.randn(3, 45, IN)  # 45: several chunks of 8 and a partial one
    state = random_state(core, 3)
    y, final = core(x, state)
    _, want, want_final = reference(core, x, state)
    torch.testing.assert_close(y.double(), want, rtol=1e-4, atol=1e-4)
    assert final.keys() == want_final.keys()
    for key in final:
        torch.testing.assert_close(final[key].double(), want_final[key], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", list(CORES))
def test_long_sequence_accuracy(name: str) -> None:
    core = make(name, chunk_size=32)  # the default chunk
    x = torch.randn(1, 400, IN) * 2
    state = core.batched_initial_state(1)
    y, _ = core(x, state)
    torch.testing.assert_close(y.double(), reference(core, x, state)[1], rtol=1e-4, atol=1e-4)


def test_linear_attention_denominators() -> None:
    """The default is the denominator the paper ran, (sum phi(q)) (sum z); LinearAttentionDot's is phi(q) . z.
    The two differ, and both match their written-out formula (``denominator``) from a mid-episode state."""
    assert get_model("LinearAttention").core_defaults == {}
    assert LinearAttentionCore(IN, OUT).denominator == "sums"
    assert get_model("LinearAttentionDot").core_defaults == {"denominator": "dot"}
    paper, dot = make("linear_attention"), make("linear_attention_dot")
    assert all(torch.equal(a, b) for a, b in zip(paper.parameters(), dot.parameters(), strict=True))
    x, state = torch.randn(2, 12, IN), random_state(paper, 2)
    ys, readouts = {}, {}
    for name, core in (("sums", paper), ("dot", dot)):
        core.unmap.register_forward_hook(lambda module, args, output, name=name: readouts.setdefault(name, args[0]))
        ys[name], _ = core(x, state)
        want, _, _ = reference(core, x, state)
        torch.testing.assert_close(readouts[name].double(), want, rtol=1e-5, atol=1e-6)
    assert (ys["sums"] - ys["dot"]).abs().amax() > 1e-2


def test_linear_attention_rejects_unknown_denominator() -> None:
    with pytest.raises(ValueError, match=r"denominator: expected one of \('sums', 'dot'\), got 'mean'"):
        LinearAttentionCore(IN, OUT, denominator="mean")


def test_fwp_reads_fast_weights_transposed() -> None:
    """POPGym's FWP reads a_t = W_t^T phi(q_t); the paper's W_t phi(q_t) gives a different memory readout."""
    core = make("fwp")
    readouts = []
    core.unmap.register_forward_hook(lambda module, args, output: readouts.append(args[0]))
    x, state = torch.randn(2, 10, IN), random_state(core, 2)
    core(x, state)
    popgym, _, _ = reference(core, x, state, fwp_readout="popgym")
    paper, _, _ = reference(core, x, state, fwp_readout="paper")
    torch.testing.assert_close(readouts[0].double(), popgym, rtol=1e-4, atol=1e-4)
    assert (readouts[0].double() - paper).abs().amax() > 1e-2


def test_fwp_first_readout_is_along_the_key() -> None:
    """From W_0 = 0: a_0 = phi(k_0) (v_0 . phi(q_0)), a multiple of the nonnegative phi(k_0) (the paper's
    readout would give a multiple of v_0)."""
    core = make("fwp")
    readouts = []
    core.unmap.register_forward_hook(lambda module, args, output: readouts.append(args[0]))
    x = torch.randn(1, 1, IN)
    core(x, core.batched_initial_state(1))
    q, k, v = core.qkv(core.norm(x))[0, 0].double().split(core.hidden_size)
    want = sum_norm(k) * (v @ sum_norm(q))
    torch.testing.assert_close(readouts[0][0, 0].double(), want, rtol=1e-5, atol=1e-6)


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


@pytest.mark.parametrize("cls", [LinearAttentionCore, FastWeightProgrammerCore])
def test_popgym_689d89b_block_sizes(cls: type) -> None:
    """h = round(sqrt(256)) = 16 for both; only LayerNorm (affine), q/k/v and unmap: 10,752 parameters."""
    core = cls(128, 256)
    assert core.hidden_size == 16
    assert {name: tuple(p.shape) for name, p in core.named_parameters()} == {
        "norm.weight": (128,),
        "norm.bias": (128,),
        "qkv.weight": (48, 128),
        "unmap.weight": (256, 16),
        "unmap.bias": (256,),
    }
    assert sum(p.numel() for p in core.parameters()) == 3 * 128 * 16 + 2 * 128 + 16 * 256 + 256 == 10_752
    assert not hasattr(core, "ff") and not hasattr(core, "shortcut") and not hasattr(core, "embedding")


@pytest.mark.parametrize("output_size, hidden", [(256, 16), (36, 6), (30, 5), (20, 4)])
def test_width_is_rounded_sqrt_of_output(output_size: int, hidden: int) -> None:
    assert LinearAttentionCore(8, output_size).hidden_size == hidden
    assert FastWeightProgrammerCore(8, output_size).hidden_size == hidden
    assert LinearAttentionCore(8, output_size, hidden_size=3).hidden_size == 3


def test_no_positional_or_delta_rule_options() -> None:
    for kwargs in ({"positional": True}, {"delta_rule": True}):
        with pytest.raises(TypeError):
            FastWeightProgrammerCore(IN, OUT, **kwargs)
    with pytest.raises(TypeError):
        LinearAttentionCore(IN, OUT, positional=True)


def test_initial_state() -> None:
    """Memory only (the step counter "t" is the network's): zero S [16, 16] and z [16], or W [16, 16]."""
    la, fwp = LinearAttentionCore(128, 256), FastWeightProgrammerCore(128, 256)
    assert {k: (tuple(v.shape), v.dtype) for k, v in la.initial_state().items()} == {
        "S": ((16, 16), torch.float32),
        "z": ((16,), torch.float32),
    }
    assert {k: (tuple(v.shape), v.dtype) for k, v in fwp.initial_state().items()} == {"W": ((16, 16), torch.float32)}
    assert all(v.abs().sum() == 0 for v in [*la.initial_state().values(), *fwp.initial_state().values()])
    y, state = la(torch.randn(3, 5, 128), la.batched_initial_state(3))
    assert y.shape == (3, 5, 256) and state.keys() == {"S", "z"} and state["S"].shape == (3, 16, 16)
