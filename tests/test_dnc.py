"""DiffNCCore against a float64 element-by-element transcription of the DNC equations (Graves et al., 2016)."""

import math

import pytest
import torch

from models.dnc import (
    DiffNCCore,
    allocation_weighting,
    content_weighting,
    update_link,
    update_precedence,
    update_usage,
)

N, W, R = 5, 3, 2  # slots, word size, read heads of the small test model
INPUT, HIDDEN = 4, 6


# ---------------------------------------------------------------- reference, one element at a time, float64
def ref_content(memory: list, key: list, beta: float) -> list:
    """softmax_i(beta * cos(key, M[i]))."""
    sims = []
    for row in memory:
        dot = sum(a * b for a, b in zip(key, row, strict=True))
        norm = math.sqrt(sum(a * a for a in key)) * math.sqrt(sum(b * b for b in row))
        sims.append(beta * dot / max(norm, 1e-30))
    top = max(sims)
    exps = [math.exp(s - top) for s in sims]
    return [e / sum(exps) for e in exps]


def ref_usage(usage: list, write_w: list, read_w: list, free: list) -> list:
    out = []
    for i in range(len(usage)):
        psi = 1.0
        for head in range(len(free)):
            psi *= 1 - free[head] * read_w[head][i]
        out.append((usage[i] + write_w[i] - usage[i] * write_w[i]) * psi)
    return out


def ref_allocation(usage: list) -> list:
    free_list = sorted(range(len(usage)), key=lambda i: usage[i])
    alloc, product = [0.0] * len(usage), 1.0
    for slot in free_list:
        alloc[slot] = (1 - usage[slot]) * product
        product *= usage[slot]
    return alloc


def ref_link(link: list, prev_precedence: list, write_w: list) -> list:
    n = len(write_w)
    return [
        [
            0.0 if i == j else (1 - write_w[i] - write_w[j]) * link[i][j] + write_w[i] * prev_precedence[j]
            for j in range(n)
        ]
        for i in range(n)
    ]


def ref_precedence(precedence: list, write_w: list) -> list:
    return [(1 - sum(write_w)) * p + w for p, w in zip(precedence, write_w, strict=True)]


def sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def oneplus(v: float) -> float:
    return 1 + math.log1p(math.exp(v))


def ref_forward(core: DiffNCCore, x: torch.Tensor) -> tuple[list, dict]:
    """One sequence x [T, INPUT] from the zero state, with the core's weights, equation by equation."""
    p = {k: v.detach().double() for k, v in core.named_parameters()}
    h, c = torch.zeros(HIDDEN, dtype=torch.float64), torch.zeros(HIDDEN, dtype=torch.float64)
    memory = [[0.0] * W for _ in range(N)]
    usage, precedence, write_w = [0.0] * N, [0.0] * N, [0.0] * N
    link = [[0.0] * N for _ in range(N)]
    read_w = [[0.0] * N for _ in range(R)]
    reads = [[0.0] * W for _ in range(R)]
    outputs = []
    for x_t in x.double():
        # LSTM controller on [x_t, r_{t-1}] (gate order i, f, g, o)
        inp = torch.cat([x_t, torch.tensor([v for r in reads for v in r], dtype=torch.float64)])
        gates = p["controller.weight_ih"] @ inp + p["controller.bias_ih"]
        gates = gates + p["controller.weight_hh"] @ h + p["controller.bias_hh"]
        i, f, g, o = gates.chunk(4)
        c = f.sigmoid() * c + i.sigmoid() * g.tanh()
        h = o.sigmoid() * c.tanh()
        xi = (p["interface.weight"] @ h + p["interface.bias"]).tolist()
        # interface vector: read keys, read strengths, write key, write strength, erase, write vector,
        # free gates, allocation gate, write gate, read modes
        read_keys = [xi[k * W : (k + 1) * W] for k in range(R)]
        pos = R * W
        read_beta = [oneplus(v) for v in xi[pos : pos + R]]
        pos += R
        write_key = xi[pos : pos + W]
        write_beta = oneplus(xi[pos + W])
        pos += W + 1
        erase = [sigmoid(v) for v in xi[pos : pos + W]]
        write_vec = xi[pos + W : pos + 2 * W]
        pos += 2 * W
        free = [sigmoid(v) for v in xi[pos : pos + R]]
        alloc_gate, write_gate = sigmoid(xi[pos + R]), sigmoid(xi[pos + R + 1])
        pos += R + 2
        modes = []
        for k in range(R):
            e = [math.exp(v) for v in xi[pos + 3 * k : pos + 3 * k + 3]]
            modes.append([v / sum(e) for v in e])

        usage = ref_usage(usage, write_w, read_w, free)
        alloc = ref_allocation(usage)
        content_w = ref_content(memory, write_key, write_beta)
        write_w = [
            write_gate * (alloc_gate * a + (1 - alloc_gate) * cw) for a, cw in zip(alloc, content_w, strict=True)
        ]
        memory = [
            [memory[i][j] * (1 - write_w[i] * erase[j]) + write_w[i] * write_vec[j] for j in range(W)] for i in range(N)
        ]
        link = ref_link(link, precedence, write_w)
        precedence = ref_precedence(precedence, write_w)
        new_read_w = []
        for k in range(R):
            fwd = [sum(link[i][j] * read_w[k][j] for j in range(N)) for i in range(N)]
            bwd = [sum(link[j][i] * read_w[k][j] for j in range(N)) for i in range(N)]
            cont = ref_content(memory, read_keys[k], read_beta[k])
            new_read_w.append([modes[k][0] * bwd[i] + modes[k][1] * cont[i] + modes[k][2] * fwd[i] for i in range(N)])
        read_w = new_read_w
        reads = [[sum(read_w[k][i] * memory[i][j] for i in range(N)) for j in range(W)] for k in range(R)]
        out_in = torch.cat([h, torch.tensor([v for r in reads for v in r], dtype=torch.float64)])
        outputs.append((p["output.weight"] @ out_in + p["output.bias"]).tolist())
    state = {
        "h": h.tolist(),
        "c": c.tolist(),
        "memory": memory,
        "usage": usage,
        "link": link,
        "precedence": precedence,
        "read_weights": read_w,
        "write_weights": write_w,
        "read_vectors": reads,
    }
    return outputs, state


# ---------------------------------------------------------------- helpers
def small_core(seed: int = 0) -> DiffNCCore:
    torch.manual_seed(seed)
    core = DiffNCCore(INPUT, HIDDEN, word_size=W, read_heads=R, num_slots=N)
    with torch.no_grad():  # larger interface weights so gates and modes leave their midpoints
        core.interface.weight.mul_(6.0)
        core.interface.bias.uniform_(-2.0, 2.0)
    return core


def simplex(*shape: int) -> torch.Tensor:
    """Random weightings whose last axis sums to less than one, as DNC weightings do."""
    return torch.softmax(torch.randn(*shape, dtype=torch.float64), -1) * torch.rand(*shape[:-1], 1, dtype=torch.float64)


# ---------------------------------------------------------------- sub-functions against the reference
def test_content_weighting_matches_reference():
    torch.manual_seed(1)
    memory, keys = torch.randn(3, N, W, dtype=torch.float64), torch.randn(3, R, W, dtype=torch.float64)
    beta = 1 + torch.rand(3, R, dtype=torch.float64) * 5
    got = content_weighting(memory, keys, beta)
    for b in range(3):
        for k in range(R):
            want = ref_content(memory[b].tolist(), keys[b, k].tolist(), beta[b, k].item())
            torch.testing.assert_close(got[b, k], torch.tensor(want, dtype=torch.float64), rtol=1e-9, atol=1e-9)


def test_content_weighting_of_empty_memory_is_uniform_with_finite_gradient():
    memory = torch.zeros(1, N, W, requires_grad=True)
    keys = torch.randn(1, R, W, requires_grad=True)
    w = content_weighting(memory, keys, torch.full((1, R), 3.0))
    torch.testing.assert_close(w, torch.full((1, R, N), 1 / N))
    (w * torch.randn_like(w)).sum().backward()
    assert torch.isfinite(memory.grad).all() and torch.isfinite(keys.grad).all()


def test_usage_matches_reference():
    torch.manual_seed(2)
    usage, write_w, read_w = torch.rand(3, N, dtype=torch.float64), simplex(3, N), simplex(3, R, N)
    free = torch.rand(3, R, dtype=torch.float64)
    got = update_usage(usage, write_w, read_w, free)
    for b in range(3):
        want = ref_usage(usage[b].tolist(), write_w[b].tolist(), read_w[b].tolist(), free[b].tolist())
        torch.testing.assert_close(got[b], torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-12)


def test_allocation_follows_the_free_list():
    # hand-worked: free list is slots (1, 0, 2), so a[1] = 1 - 0.1, a[0] = (1 - 0.5) * 0.1, a[2] = (1 - 0.9) * 0.1 * 0.5
    got = allocation_weighting(torch.tensor([[0.5, 0.1, 0.9]], dtype=torch.float64))
    torch.testing.assert_close(got, torch.tensor([[0.5 * 0.1, 0.9, 0.1 * 0.5 * 0.1]], dtype=torch.float64))
    torch.manual_seed(3)
    usage = torch.rand(4, N, dtype=torch.float64)
    got = allocation_weighting(usage)
    for b in range(4):
        want = torch.tensor(ref_allocation(usage[b].tolist()), dtype=torch.float64)
        torch.testing.assert_close(got[b], want, rtol=1e-12, atol=1e-12)
    # an empty memory allocates the first slot; a full one allocates nothing
    torch.testing.assert_close(allocation_weighting(torch.zeros(1, N)), torch.eye(N)[:1])
    torch.testing.assert_close(allocation_weighting(torch.ones(1, N)), torch.zeros(1, N))


def test_link_and_precedence_match_reference():
    torch.manual_seed(4)
    link = simplex(3, N, N) * (1 - torch.eye(N, dtype=torch.float64))
    precedence, write_w = simplex(3, N), simplex(3, N)
    got_link, got_prec = update_link(link, precedence, write_w), update_precedence(precedence, write_w)
    for b in range(3):
        want = ref_link(link[b].tolist(), precedence[b].tolist(), write_w[b].tolist())
        torch.testing.assert_close(got_link[b], torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-12)
        want = ref_precedence(precedence[b].tolist(), write_w[b].tolist())
        torch.testing.assert_close(got_prec[b], torch.tensor(want, dtype=torch.float64), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- the whole core
def test_forward_matches_reference_recurrence():
    core = small_core().double()
    x = torch.randn(2, 7, INPUT, dtype=torch.float64) * 2
    state = {k: v.double() for k, v in core.batched_initial_state(2).items()}
    y, final = core(x, state)
    for b in range(2):
        want_y, want_state = ref_forward(core, x[b])
        torch.testing.assert_close(y[b], torch.tensor(want_y, dtype=torch.float64), rtol=1e-9, atol=1e-9)
        for name, value in want_state.items():
            torch.testing.assert_close(final[name][b], torch.tensor(value, dtype=torch.float64), rtol=1e-9, atol=1e-9)
    # the test exercises real memory traffic, not a degenerate corner
    assert final["usage"].max() > 0.3 and final["link"].abs().max() > 0.05


def test_chunked_equals_one_pass_and_single_steps():
    core = small_core(1)
    x = torch.randn(3, 20, INPUT)
    state = core.batched_initial_state(3)
    with torch.no_grad():
        y, final = core(x, state)
        y1, mid = core(x[:, :8], state)
        y2, final2 = core(x[:, 8:], mid)
        steps, s = [], state
        for t in range(20):
            y_t, s = core(x[:, t : t + 1], s)
            steps.append(y_t)
    torch.testing.assert_close(torch.cat([y1, y2], 1), y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(torch.cat(steps, 1), y, rtol=1e-5, atol=1e-5)
    for name in final:
        torch.testing.assert_close(final2[name], final[name], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(s[name], final[name], rtol=1e-5, atol=1e-5)


def test_causal():
    core = small_core(2)
    x = torch.randn(2, 12, INPUT)
    x2 = x.clone()
    x2[:, 6] += 5.0
    state = core.batched_initial_state(2)
    with torch.no_grad():
        y, _ = core(x, state)
        y2, _ = core(x2, state)
    torch.testing.assert_close(y2[:, :6], y[:, :6], rtol=0, atol=0)
    assert (y2[:, 6:] - y[:, 6:]).abs().amax() > 1e-3


@pytest.mark.parametrize(("batch", "steps"), [(1, 1), (4, 9)])
def test_state_shapes_dtypes_and_invariants(batch, steps):
    core = DiffNCCore(128, 256)
    assert (core.num_slots, core.word_size, core.read_heads, core.hidden_size) == (16, 16, 4, 256)
    expected = {
        "h": (256,),
        "c": (256,),
        "memory": (16, 16),
        "usage": (16,),
        "link": (16, 16),
        "precedence": (16,),
        "read_weights": (4, 16),
        "write_weights": (16,),
        "read_vectors": (4, 16),
    }
    init = core.initial_state()
    assert {k: tuple(v.shape) for k, v in init.items()} == expected
    assert all(v.dtype == torch.float32 and not v.any() for v in init.values())
    with torch.no_grad():
        y, state = core(torch.randn(batch, steps, 128), core.batched_initial_state(batch))
    assert y.shape == (batch, steps, 256) and y.dtype == torch.float32
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: (batch, *s) for k, s in expected.items()}
    assert all(v.dtype == torch.float32 for v in state.values())
    # DNC weightings are sub-distributions; usage stays in [0, 1]; no self-links
    tol = 1e-5
    assert (state["usage"] >= -tol).all() and (state["usage"] <= 1 + tol).all()
    assert (state["write_weights"].sum(-1) <= 1 + tol).all() and (state["precedence"].sum(-1) <= 1 + tol).all()
    assert (state["read_weights"].sum(-1) <= 1 + tol).all() and (state["link"].sum(-1) <= 1 + tol).all()
    assert state["link"].diagonal(dim1=-2, dim2=-1).abs().max() == 0


def test_gradients_flow_from_the_zero_state():
    core = small_core(3)
    x = torch.randn(2, 6, INPUT, requires_grad=True)
    y, _ = core(x, core.batched_initial_state(2))
    y[:, -1].sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[:, 0].abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0 for p in core.parameters())
