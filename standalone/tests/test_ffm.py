"""FFM layer: the paper's equations, state handling, ablation flags, errors and deployment paths."""

import copy
import math
import pickle

import numpy as np
import pytest
import torch
from reference import loop_states

from ffm import FFM, readout


def make_ffm(**kwargs) -> FFM:
    torch.manual_seed(0)
    return FFM(input_size=5, hidden_size=6, context_size=3, output_size=7, **kwargs)


def reference_output(ffm: FFM, x: torch.Tensor, state: torch.Tensor, resets=None, with_final_state=False):
    """y_t written out from the paper's equations with separate weight blocks and a float64 loop (and the
    final state S_{T-1} if asked)."""
    out = ffm.output_size
    weight, bias = ffm.pre.weight, ffm.pre.bias
    sizes = [ffm.memory_size] * (1 + ffm.input_gate) + [out] * (1 + ffm.output_gate)
    blocks = iter(torch.split(torch.arange(weight.shape[0]), sizes))
    linear = lambda rows: x @ weight[rows].T + bias[rows]  # noqa: E731
    u = linear(next(blocks))
    if ffm.input_gate:
        u = u * torch.sigmoid(linear(next(blocks)))
    skip = linear(next(blocks))
    states = loop_states(
        u, ffm.aggregator.a.clamp(-ffm.aggregator.fastest_decay, -1e-8), ffm.aggregator.w, state, resets
    ).to(torch.complex64)
    z = torch.nn.functional.layer_norm(ffm.mix(torch.stack([states.real, states.imag], -1).flatten(-3)), (out,))
    if ffm.output_gate:
        gate = torch.sigmoid(linear(next(blocks)))
        y = z * gate + skip * (1 - gate)
    else:
        y = z + skip
    return (y, states[:, -1]) if with_final_state else y


def test_forward_matches_paper_equations():
    ffm = make_ffm()
    x = torch.randn(3, 40, 5)
    state = torch.randn(3, 6, 3, dtype=torch.complex64)
    resets = torch.rand(3, 40) < 0.1
    with torch.no_grad():
        y, final = ffm(x, state, resets)
        expected = reference_output(ffm, x, state, resets)
    assert y.shape == (3, 40, 7) and final.shape == (3, 6, 3) and final.dtype == torch.complex64
    torch.testing.assert_close(y, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("gates", [{}, {"output_gate": False}, {"input_gate": False}])
@pytest.mark.parametrize("block_rows", [None, 48, 16, "whole"])
def test_training_path_values_and_gradients_match_paper_equations(gates, block_rows, monkeypatch):
    """With autograd on, FFM takes its training path (the states and output stage block by block, with a
    hand-written backward); values and every gradient, through y and the final state, must equal autograd
    through the written-out equations. Blocks: the default (one), one sequence each (48 rows: 40 steps
    padded to 3 chunks), one 16-step chunk each (a sequence split over blocks, the last one padded);
    "whole": the path of other aggregators (here FFA hooked), whole sequences and the plain output stage."""
    if isinstance(block_rows, int):
        monkeypatch.setattr(readout, "BLOCK_ROWS", block_rows)
    ffm = make_ffm(**gates)
    if block_rows == "whole":
        ffm.aggregator.register_forward_hook(lambda module, inputs, output: None)
    x = torch.randn(40, 3, 5).transpose(0, 1).requires_grad_()  # [3, 40, 5], not contiguous
    state = torch.randn(3, 6, 3, dtype=torch.complex64)
    resets = torch.rand(3, 40) < 0.1
    weights, state_weights = torch.randn(3, 40, 7), torch.randn(3, 6, 3, 2)

    def gradients(forward) -> list[torch.Tensor]:
        y, final = forward()
        loss = (y * weights).sum() + (torch.view_as_real(final) * state_weights).sum()
        return [y, final, *torch.autograd.grad(loss, [x, *ffm.parameters()])]

    ours = gradients(lambda: ffm(x, state, resets))
    expected = gradients(lambda: reference_output(ffm, x, state, resets, with_final_state=True))
    for value, reference in zip(ours, expected, strict=True):
        torch.testing.assert_close(value, reference, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("block_rows", [None, 16])
def test_gradcheck_and_repeated_backward(block_rows, monkeypatch):
    """Finite differences in float64 through the whole layer (one block; one sequence a block); backward
    twice on a retained graph agrees."""
    if block_rows is not None:
        monkeypatch.setattr(readout, "BLOCK_ROWS", block_rows)
    ffm = make_ffm().double()
    x = torch.randn(2, 9, 5, dtype=torch.float64, requires_grad=True)
    resets = torch.zeros(2, 9, dtype=torch.bool)
    resets[1, 4] = True
    assert torch.autograd.gradcheck(lambda x, *params: ffm(x, None, resets)[0], (x, *ffm.parameters()))
    y = ffm(x, None, resets)[0].square().sum()
    first = torch.autograd.grad(y, [x, *ffm.parameters()], retain_graph=True)
    second = torch.autograd.grad(y, [x, *ffm.parameters()])
    for a, b in zip(first, second, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_training_steps_reuse_kept_tensors_only_after_autograd_releases_them():
    """On CPU the training path keeps z, the projection and LN's statistics in the layer's workspace and
    writes a later step into the same memory once autograd has let go of it. A graph retained for a second
    backward, or two forwards before one backward, must get fresh tensors; every gradient stays the
    written-out equations'."""
    ffm = make_ffm()
    xs = [torch.randn(3, 40, 5) for _ in range(4)]
    weights = torch.randn(3, 40, 7)

    def gradients(y: torch.Tensor, w: torch.Tensor = weights, retain_graph: bool = False) -> tuple[torch.Tensor, ...]:
        return torch.autograd.grad((y * w).sum(), list(ffm.parameters()), retain_graph=retain_graph)

    def expected(x: torch.Tensor, w: torch.Tensor = weights) -> tuple[torch.Tensor, ...]:
        return gradients(reference_output(ffm, x, ffm.initial_state(3)), w)

    def kept_at(y: torch.Tensor) -> int:
        """Address of the z the step of y kept for backward (saved last but three; at its buffer's start)."""
        return y.grad_fn.saved_tensors[-4].data_ptr()

    def assert_equal(ours, reference) -> None:
        for value, want in zip(ours, reference, strict=True):
            torch.testing.assert_close(value, want, rtol=1e-4, atol=1e-4)

    retained = ffm(xs[0])[0]
    first = gradients(retained, retain_graph=True)
    assert_equal(first, expected(xs[0]))
    second = ffm(xs[1])[0]
    assert kept_at(second) != kept_at(retained)  # the retained graph still holds the first step's
    second_address = kept_at(second)
    assert_equal(gradients(second), expected(xs[1]))
    assert_equal(gradients(retained), first)  # not overwritten by the second step
    third = ffm(xs[2])[0]
    assert kept_at(third) == second_address  # released by the second step's backward: reused
    assert_equal(gradients(third), expected(xs[2]))
    shorter = ffm(xs[2][:, :25])[0]  # fits in the held buffers
    assert kept_at(shorter) == second_address
    assert_equal(gradients(shorter, weights[:, :25]), expected(xs[2][:, :25], weights[:, :25]))
    assert kept_at(ffm(torch.randn(3, 41, 5))[0]) != second_address  # does not fit
    together = [ffm(xs[3])[0], ffm(xs[0])[0]]  # two forwards, one backward
    assert kept_at(together[0]) != kept_at(together[1])
    both = zip(expected(xs[3]), expected(xs[0]), strict=True)
    assert_equal(gradients(together[0] + together[1]), [a + b for a, b in both])
    dropped = kept_at(ffm(xs[1])[0])  # a graph dropped without backward lets go of its tensors too
    assert kept_at(ffm(xs[1])[0]) == dropped


def test_activation_checkpointing_and_copying_pack_hooks_give_the_same_gradients():
    """Under non-reentrant checkpointing, or a pack hook that saves copies, the kept tensors are released
    right after forward, so a second call of the layer writes into the same buffers before either backward
    (checkpointing recomputes its forward in backward); the gradients must be those without either."""
    ffm = make_ffm()
    xs = torch.randn(3, 40, 5), torch.randn(3, 40, 5)

    def gradients(call) -> list[torch.Tensor]:
        ffm.zero_grad()
        y1, y2 = (call(x) for x in xs)
        (y1.square().sum() + (3 * y2).sum()).backward()
        return [p.grad.clone() for p in ffm.parameters()]

    plain = gradients(lambda x: ffm(x)[0])
    checkpointed = gradients(lambda x: torch.utils.checkpoint.checkpoint(lambda x: ffm(x)[0], x, use_reentrant=False))
    with torch.autograd.graph.saved_tensors_hooks(lambda tensor: tensor.clone(), lambda tensor: tensor):
        copied = gradients(lambda x: ffm(x)[0])
    for expected, ours, theirs in zip(plain, checkpointed, copied, strict=True):
        torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(theirs, expected, rtol=1e-5, atol=1e-6)


def test_copies_of_a_trained_layer_start_with_an_empty_workspace():
    ffm = make_ffm()
    x = torch.randn(2, 20, 5)
    ffm(x)[0].sum().backward()
    for twin in (copy.deepcopy(ffm), pickle.loads(pickle.dumps(ffm))):
        assert twin.workspace._buffers == []
        twin.zero_grad(), ffm.zero_grad()
        twin(x)[0].sum().backward(), ffm(x)[0].sum().backward()
        for ours, theirs in zip(twin.parameters(), ffm.parameters(), strict=True):
            torch.testing.assert_close(ours.grad, theirs.grad, rtol=0, atol=0)


def authors_limit(max_len: int = 1024, fudge: float = 0.01) -> float:
    """The authors' aggregations.py: exp(limit * max_len) must stay below float64's max, less a fudge."""
    return math.log(np.finfo(np.float64).max) / max_len - fudge


def test_initialisation_is_the_authors_effective_one():
    ffm = FFM(input_size=4, hidden_size=32, context_size=4, output_size=3)
    assert ffm.memory_size == 32 and ffm.initial_state(5).shape == (5, 32, 4)
    limit = authors_limit()
    assert limit == pytest.approx(0.683147, abs=1e-6)
    a_low, a_high = -limit + 0.01, max(min(-1e-6, math.log(0.01) / 1024), -limit + 0.01)
    expected_a = torch.from_numpy(np.linspace(a_low, a_high, 32)).float()
    torch.testing.assert_close(ffm.aggregator.a.detach(), expected_a)
    assert expected_a[0].item() == pytest.approx(-0.673147, abs=1e-6)
    assert expected_a[-1].item() == pytest.approx(-0.004497, abs=1e-6)
    assert math.log(0.01) / expected_a[0].item() == pytest.approx(6.84, abs=0.01)  # the fastest trace
    assert ffm.aggregator.fastest_decay == pytest.approx(limit)
    torch.testing.assert_close(2 * torch.pi / ffm.aggregator.w.detach(), torch.tensor([1.0, 342.0, 683.0, 1024.0]))
    assert FFM(4, 8, 2, 3, memory_size=5).memory_size == 5


def test_max_period_sets_the_slowest_initial_trace_and_short_periods_collapse_to_the_first():
    a = FFM(4, 32, 4, 3, max_period=128).aggregator.a.detach()
    torch.testing.assert_close(a[[0, -1]], torch.tensor([-authors_limit() + 0.01, math.log(0.01) / 128]))
    short = FFM(4, 8, 2, 3, min_period=1, max_period=2).aggregator.a.detach()  # ln(0.01) / 2 < the first value
    torch.testing.assert_close(short, torch.full((8,), -authors_limit() + 0.01))


@pytest.mark.parametrize("fastest_decay", [None, 0.3, math.inf])
def test_decay_is_clamped_to_the_floor_and_ceiling_with_zero_gradient_outside(fastest_decay):
    options = {} if fastest_decay is None else {"fastest_decay": fastest_decay}
    floor = authors_limit() if fastest_decay is None else fastest_decay
    ffa = make_ffm(**options).aggregator
    with torch.no_grad():
        ffa.a.copy_(torch.tensor([-5.0, -floor + 0.05 if math.isfinite(floor) else -2.0, -0.1, -1e-9, 0.0, 3.0]))
    used = ffa.decay_rates()
    expected = ffa.a.detach().double().clamp(-floor, -1e-8).float()
    torch.testing.assert_close(used.detach(), expected)
    used.sum().backward()
    inside = (ffa.a.detach() >= -floor) & (ffa.a.detach() <= -1e-8)
    torch.testing.assert_close(ffa.a.grad, inside.float())
    u, state = torch.randn(2, 30, 6), torch.zeros(2, 6, 3, dtype=torch.complex64)
    with torch.no_grad():
        states = ffa(u, state)
    torch.testing.assert_close(states, loop_states(u, expected, ffa.w, state).to(torch.complex64))


def test_a_floor_at_or_below_the_initial_margin_is_refused():
    with pytest.raises(ValueError, match="fastest_decay > 0.01"):
        FFM(3, 4, 2, 5, fastest_decay=0.01)


def test_unbatched_input_equals_batch_of_one():
    ffm = make_ffm()
    x = torch.randn(20, 5)
    state = torch.randn(6, 3, dtype=torch.complex64)
    with torch.no_grad():
        y, final = ffm(x, state)
        y1, final1 = ffm(x[None], state[None])
    torch.testing.assert_close(y, y1[0])
    torch.testing.assert_close(final, final1[0])


def test_single_steps_equal_one_parallel_pass(device):
    ffm = make_ffm().to(device)
    x = torch.randn(2, 30, 5, device=device)
    with torch.no_grad():
        parallel, final = ffm(x)
        state, steps = None, []
        for t in range(30):
            y, state = ffm(x[:, t : t + 1], state)
            steps.append(y)
    torch.testing.assert_close(torch.cat(steps, 1), parallel, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state, final, rtol=1e-5, atol=1e-5)


def test_resets_pack_episodes_without_padding(device):
    """One packed row with resets == each episode run on its own from a zero state."""
    ffm = make_ffm().to(device)
    lengths = [7, 1, 40, 12]
    x = torch.randn(sum(lengths), 5, device=device)
    resets = torch.zeros(sum(lengths), dtype=torch.bool, device=device)
    resets[torch.tensor([0, *lengths[:-1]]).cumsum(0)] = True
    with torch.no_grad():
        packed, _ = ffm(x, torch.randn(6, 3, dtype=torch.complex64, device=device), resets)
        separate = torch.cat([ffm(episode)[0] for episode in x.split(lengths)])
    torch.testing.assert_close(packed, separate, rtol=1e-5, atol=1e-5)


def gradient_of(ffm: FFM, name: str):
    x = torch.randn(2, 20, 5)
    ffm(x)[0].square().sum().backward()
    return dict(ffm.named_parameters()).get(name)


def test_ablation_no_learn_decay_and_no_learn_oscillate_freeze_at_init():
    baseline = make_ffm()
    for flag, name in [("learn_decay", "a"), ("learn_oscillate", "w")]:
        ffm = make_ffm(**{flag: False})
        assert gradient_of(ffm, f"aggregator.{name}") is None
        assert isinstance(getattr(ffm.aggregator, name), torch.Tensor) and name in dict(ffm.aggregator.named_buffers())
        torch.testing.assert_close(getattr(ffm.aggregator, name), getattr(baseline.aggregator, name))
    assert gradient_of(make_ffm(), "aggregator.a").abs().sum() > 0
    assert gradient_of(make_ffm(), "aggregator.w").abs().sum() > 0


def test_ablation_no_decay_never_forgets_and_no_oscillate_is_real():
    u = torch.ones(1, 50, 6)
    ffa = make_ffm(decay=False, oscillate=False).aggregator
    with torch.no_grad():
        states = ffa(u, ffa.initial_state(1))
    # a = 0 used as the authors' -1e-8, w = 0: a running sum (1e-8 * 50 is below float32's resolution here)
    torch.testing.assert_close(states.real[0, :, 0, 0], torch.arange(1.0, 51.0))
    assert make_ffm(oscillate=False).aggregator(u, ffa.initial_state(1)).imag.abs().max() == 0
    assert make_ffm().aggregator(u, ffa.initial_state(1)).imag.abs().max() > 0


@pytest.mark.parametrize("flag", ["input_gate", "output_gate"])
def test_ablation_gates(flag):
    ffm = make_ffm(**{flag: False})
    assert ffm.pre.out_features == make_ffm().pre.out_features - (6 if flag == "input_gate" else 7)
    x, state = torch.randn(2, 9, 5), torch.randn(2, 6, 3, dtype=torch.complex64)
    with torch.no_grad():
        torch.testing.assert_close(ffm(x, state)[0], reference_output(ffm, x, state), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda f: f(torch.randn(2, 3, 4, 5)),
            r"expected x of shape \[B, T, 5\] or \[T, 5\], got \[2, 3, 4, 5\]",
        ),
        (lambda f: f(torch.randn(2, 3, 4)), r"got \[2, 3, 4\]"),
        (
            lambda f: f(torch.randn(2, 3, 5), torch.zeros(2, 6, 4, dtype=torch.complex64)),
            r"\[2, 6, 3\].*got \[2, 6, 4\]",
        ),
        (
            lambda f: f(torch.randn(2, 3, 5), torch.zeros(2, 6, 3)),
            r"complex64, got \[2, 6, 3\] torch.float32",
        ),
        (
            lambda f: f(torch.randn(3, 5), torch.zeros(2, 6, 3, dtype=torch.complex64)),
            r"\[6, 3\].*got \[2, 6, 3\]",
        ),
        (
            lambda f: f(torch.randn(2, 3, 5), None, torch.zeros(2, 4, dtype=torch.bool)),
            r"\[2, 3\].*got \[2, 4\]",
        ),
        (
            lambda f: f(torch.randn(2, 3, 5), None, torch.zeros(2, 3)),
            r"torch.bool, got \[2, 3\] torch.float32",
        ),
        (
            lambda f: f(torch.randn(3, 5), None, torch.zeros(4, dtype=torch.bool)),
            r"resets \[T\] of shape \[3\].*got \[4\]",
        ),
    ],
)
def test_bad_inputs_raise_value_error_naming_shapes(call, message):
    with pytest.raises(ValueError, match=message):
        call(make_ffm())


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="min_period <= max_period"):
        FFM(3, 4, 2, 5, min_period=10, max_period=2)
    with pytest.raises(ValueError, match="context_size must be >= 1"):
        FFM(3, 4, 0, 5)


def test_float64_module_uses_complex128_state():
    ffm = make_ffm().double()
    y, state = ffm(torch.randn(2, 10, 5, dtype=torch.float64))
    assert y.dtype == torch.float64 and state.dtype == torch.complex128


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    ffm = make_ffm()
    x = torch.randn(3, 300, 5)
    resets = torch.rand(3, 300) < 0.05
    y_cpu, s_cpu = ffm(x, None, resets)
    y_cpu.sum().backward()
    grads_cpu = [p.grad.clone() for p in ffm.parameters()]
    ffm.zero_grad()
    ffm.cuda()
    y_gpu, s_gpu = ffm(x.cuda(), None, resets.cuda())
    y_gpu.sum().backward()
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(s_gpu.cpu(), s_cpu, rtol=1e-4, atol=1e-4)
    for p, expected in zip(ffm.parameters(), grads_cpu, strict=True):
        torch.testing.assert_close(p.grad.cpu(), expected, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_compile_matches_eager(device, dtype):
    ffm = make_ffm().to(device, dtype)
    x = torch.randn(2, 48, 5, device=device, dtype=dtype)
    resets = torch.rand(2, 48, device=device) < 0.1

    def outputs_and_gradients(module) -> list[torch.Tensor]:
        y, state = module(x, None, resets)
        return [y, state, *torch.autograd.grad(y.square().sum(), list(ffm.parameters()))]

    compiled = outputs_and_gradients(torch.compile(ffm))
    for value, expected in zip(compiled, outputs_and_gradients(ffm), strict=True):
        torch.testing.assert_close(value, expected, rtol=1e-5, atol=1e-5)


def test_inference_gamma_cache_follows_parameter_updates() -> None:
    """Acting without autograd reuses gamma; optimizer steps, state loads and dtype moves refresh it."""
    ffm = make_ffm()
    x = torch.randn(2, 1, ffm.input_size, dtype=torch.float64)

    def single_step(module: FFM) -> torch.Tensor:
        with torch.no_grad():
            return module(x.to(module.pre.weight.dtype), module.initial_state(2))[0]

    def fresh(module: FFM) -> torch.Tensor:
        with torch.enable_grad():
            return module(x.to(module.pre.weight.dtype), module.initial_state(2))[0].detach()

    torch.testing.assert_close(single_step(ffm), fresh(ffm))
    optimizer = torch.optim.SGD(ffm.parameters(), lr=1.0)
    ffm(torch.randn(2, 8, ffm.input_size))[0].sum().backward()
    optimizer.step()
    torch.testing.assert_close(single_step(ffm), fresh(ffm))
    other = make_ffm()
    with torch.no_grad():
        other.aggregator.a.mul_(3)
    ffm.load_state_dict(other.state_dict())
    torch.testing.assert_close(single_step(ffm), fresh(ffm))
    ffm.double()
    assert single_step(ffm).dtype == torch.float64
    torch.testing.assert_close(single_step(ffm), fresh(ffm))


def test_a_hooked_aggregator_sees_the_states_and_the_output_is_unchanged():
    """FFA's sequences skip the aggregator's forward (block by block) unless it is hooked: a forward hook
    then gets the states [B, T, m, c], and y is the same either way."""
    ffm = make_ffm()
    x, resets = torch.randn(2, 40, 5), torch.rand(2, 40) < 0.1
    with torch.no_grad():
        blockwise = ffm(x, None, resets)[0]
        seen = []
        handle = ffm.aggregator.register_forward_hook(lambda module, inputs, output: seen.append(output))
        hooked = ffm(x, None, resets)[0]
        handle.remove()
    assert len(seen) == 1 and seen[0].shape == (2, 40, 6, 3)
    torch.testing.assert_close(hooked, blockwise, rtol=1e-5, atol=1e-5)
