"""Parallel form of the FFM aggregator recurrence (the paper's FFA, Eq. 2 with resets).

    S_t = gamma * S_{t-1} * (1 - r_t) + u_t 1_c^T,    S_{-1} = s0,    gamma = exp(a 1_c^T + i 1_m w^T)

u_t is real [m], S_t and gamma complex [m, c]. All S_t are computed at once by a two-level scan:

1. Time is split into chunks of length L. Inside a chunk, the state started from zero is a matrix
   product with the lower-triangular decay matrix D[t, k] = gamma^(t-k), t >= k. |gamma| <= 1 and the
   lags are below L, so nothing overflows whatever the decay a: there is no gamma^(-t) rescaling.
2. The states carried into the chunks obey the same recurrence one level up: decay gamma^L (zero for a
   chunk holding a reset), chunk-end states as inputs. There are only T/L of them, in complex128: this
   level carries every long-range interaction (gradients with respect to w sum phase errors over the
   whole sequence). ``carry_scan`` solves it the same way again, a matmul with the decay matrix
   gamma^(L(n-k)) per block of up to 64 chunks and the level above for longer sequences, so the number
   of ops does not grow with B and grows with T only in log_64(T/L) levels; products of decays only,
   never inverses. (FFM's CPU path steps them one chunk at a time instead, ``carried_states``.)
3. The carried-in state's contribution gamma^(t+1) C_n enters the chunk product as extra columns, so
   without resets a chunk costs one real batched matmul; with resets, the part of each chunk state
   that predates the reset is subtracted (chunk-local, so the cancellation is bounded by L steps).

Complex numbers are handled as real (re, im) pairs so the heavy work is real BLAS; the small decay
tables are built in float64 (phases w * t lose precision in float32) and cast to float32. The scan keeps
its own precision under autocast (it runs in the state's precision, at least float32).
"""

from typing import NamedTuple

import torch

CHUNK_SIZE = 64
"""L of the plain scan: T/L carried states, one ``carry_scan`` block up to T = 4,096; a chunk's matmul costs
L 2c multiply-adds per input, a quarter of the mix W3's at m = 32, c = 4, output 256."""
CPU_CHUNK_SIZE = 16
"""L of FFM's CPU path (``ffm.readout``), whose chunk carry is sequential: fewer flops per step were faster there."""


def chunked_scan(
    u: torch.Tensor,
    log_gamma: torch.Tensor,
    state: torch.Tensor,
    resets: torch.Tensor | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> torch.Tensor:
    """All states S_0..S_{T-1} of the recurrence above.

    Args:
        u: real [B, T, m], the input added to all c traces of its row.
        log_gamma: complex128 [m, c], a + i w.
        state: complex [B, m, c], the state before the first step; the scan runs in its precision (u is
            cast to it, so autocast's half-precision u keeps float32 states).
        resets: optional bool [B, T]; True zeroes the state before u_t is added.
        chunk_size: L.
    Returns:
        complex [B, T, m, c] of the state's precision (complex64 for float32).
    """
    batch, steps, m = u.shape
    if steps == 0:
        return state.new_zeros(batch, 0, m, state.shape[-1])
    with torch.autocast(u.device.type, enabled=False):  # the decays' precision, whatever autocast gives u
        u = u.to(state.real.dtype)
        tables = scan_tables(log_gamma, chunk_size, u.dtype)
        inputs, resets = chunk_inputs(u, resets, chunk_size)
        carried = carried_states(inputs, tables, state, resets)
        states = chunk_states(ChunkRows(inputs, carried, tables.within, tables.carry_in, tables.powers, resets))
    return torch.view_as_complex(rows_as_steps(states, batch, steps).unflatten(-1, (m, -1, 2)))


class ScanTables(NamedTuple):
    """The decay tables of chunk length L, from one table of powers gamma^j, j = 0..L, in complex128.

    within: [m, L, L 2c], row k: gamma^(t-k) at columns (t, c, re/im), zero for t < k.
    carry_in: [m, 2c, L 2c], the real matrix of C -> (gamma^(t+1) C for t < L), C a carried state as (c, re/im).
    powers: complex [L, m, c], gamma^j for j = 1..L (the decay since a reset, ``chunk_states``).
    log_chunk_decay: complex128 [m, c], L log(gamma), the decay from chunk to chunk (``carry_scan``).
    All but log_chunk_decay in the states' precision.
    """

    within: torch.Tensor
    carry_in: torch.Tensor
    powers: torch.Tensor
    log_chunk_decay: torch.Tensor


def scan_tables(log_gamma: torch.Tensor, length: int, dtype: torch.dtype) -> ScanTables:
    """The tables for complex128 log_gamma [m, c] and chunk length L; real ones in `dtype` (float32 or 64)."""
    m, c = log_gamma.shape
    exponents = torch.arange(length + 1, dtype=torch.float64, device=log_gamma.device)
    powers = torch.exp(exponents[:, None, None] * log_gamma)  # gamma^j [L + 1, m, c], products of decays only
    short = torch.view_as_complex(torch.view_as_real(powers).to(dtype))
    position = torch.arange(length, device=log_gamma.device)
    lag = position[None, :] - position[:, None]  # [k, t] = t - k
    within = torch.view_as_real(torch.where((lag >= 0)[:, :, None, None], short[lag.clamp(min=0)], 0))
    carry_in = _complex_product_matrix(short[1:])  # [t, m, 2c, 2c]
    return ScanTables(
        within.permute(2, 0, 1, 3, 4).reshape(m, length, length * 2 * c),
        carry_in.permute(1, 2, 0, 3).reshape(m, 2 * c, length * 2 * c),
        short[1:],
        length * log_gamma,
    )


def chunk_inputs(u: torch.Tensor, resets: torch.Tensor | None, length: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """u [B, T, m] as chunk rows [m, B chunks, L], zero-padded to whole chunks, and resets [B, T] as
    [B chunks, L]. Row b chunks + n is chunk n of sequence b: a sequence's chunks are consecutive rows."""
    batch, steps, m = u.shape
    chunks = -(-steps // length)
    pad = chunks * length - steps
    if pad:
        u = torch.nn.functional.pad(u, (0, 0, 0, pad))
        resets = None if resets is None else torch.nn.functional.pad(resets, (0, pad))
    inputs = u.reshape(batch * chunks, length, m).permute(2, 0, 1)
    if resets is not None:
        resets = resets.reshape(batch * chunks, length)
    return inputs.contiguous(), resets


def carried_states(
    inputs: torch.Tensor,
    tables: ScanTables,
    state: torch.Tensor,
    resets: torch.Tensor | None,
    sequential: bool = False,
) -> torch.Tensor:
    """States entering each chunk row, real [m, rows, 2c]: C_0 = s0, C_n = A_{n-1} C_{n-1} + E_{n-1}.

    E_n is chunk n's end state from zero (from its last reset on), A_n = gamma^L, or 0 if chunk n holds a
    reset. Inputs and resets are chunk rows (``chunk_inputs``), state complex [B, m, c]. The recurrence
    is solved by ``carry_scan`` (whole-tensor ops), or with ``sequential`` one chunk at a time
    (``_ChunkCarry``: fewer flops, T/L steps; FFM's CPU path).
    """
    m, rows, length = inputs.shape
    batch, _, c = state.shape
    chunks = rows // batch
    if resets is not None:  # the end state counts the inputs from the chunk's last reset on
        position = torch.arange(length, device=inputs.device)
        last_reset = torch.where(resets, position, 0).amax(-1, keepdim=True)
        inputs = inputs * (position >= last_reset)
    ends = torch.bmm(inputs, tables.within[:, :, -2 * c :])  # [m, rows, 2c]
    ends = torch.view_as_complex(ends.view(m, batch, chunks, c, 2)).permute(2, 1, 0, 3)  # [chunks, B, m, c]
    steps = torch.cat([state[None], ends[:-1]]).to(torch.complex128)
    cut = None if resets is None else resets.any(-1).view(batch, chunks).T.roll(1, 0)  # step n: chunk n - 1's reset
    carried = (_ChunkCarry.apply if sequential else carry_scan)(steps, tables.log_chunk_decay, cut)
    carried = carried.to(state.dtype)
    return torch.view_as_real(carried).permute(2, 1, 0, 3, 4).reshape(m, rows, 2 * c)


class ChunkRows(NamedTuple):
    """Chunk rows (``chunk_inputs``) with all that their states need: inputs [m, rows, L], carried-in states
    [m, rows, 2c] (``carried_states``), the tables' within, carry_in and powers (``ScanTables``) and
    resets [rows, L] or None. Each chunk row's states depend on its own row only (``chunk_states``)."""

    inputs: torch.Tensor
    carried: torch.Tensor
    within: torch.Tensor
    carry_in: torch.Tensor
    powers: torch.Tensor
    resets: torch.Tensor | None

    def select(self, rows: slice) -> "ChunkRows":
        """The same for some of the rows."""
        resets = None if self.resets is None else self.resets[rows]
        return self._replace(inputs=self.inputs[:, rows], carried=self.carried[:, rows], resets=resets)


def chunk_states(chunk_rows: ChunkRows) -> torch.Tensor:
    """The states of some chunk rows, real [m, rows, L, 2c] (any run of rows: each chunk row is independent
    here)."""
    inputs, carried, within, carry_in, powers, resets = chunk_rows
    m, rows, length = inputs.shape
    if resets is None:  # one matmul: the carried state enters as extra columns
        states = torch.bmm(torch.cat([inputs, carried], -1), torch.cat([within, carry_in], 1))
        return states.view(m, rows, length, -1)
    local = torch.bmm(inputs, within).view(m, rows, length, -1, 2)
    local = _cut_at_resets(local, powers, resets)
    from_carry = torch.bmm(carried, carry_in).view(m, rows, length, -1, 2)
    keep = resets.cumsum(-1) == 0  # no reset yet in the chunk: the carried state still counts
    return (local + from_carry * keep[None, :, :, None, None]).view(m, rows, length, -1)


def rows_as_steps(states: torch.Tensor, batch: int, steps: int) -> torch.Tensor:
    """Chunk-row states [m, B chunks, L, 2c] of B sequences (or of one run of chunks of one) as real
    [B, steps, m 2c] (a copy, the padding dropped)."""
    m, rows, length, width = states.shape
    by_step = states.view(m, batch, rows // batch * length, width).permute(1, 2, 0, 3)
    return by_step.reshape(batch, -1, m * width)[:, :steps]


def _complex_product_matrix(z: torch.Tensor) -> torch.Tensor:
    """Real [.., m, 2c, 2c] matrices M with (s @ M) = z * s for s, z complex [.., m, c] as (c, re/im) pairs."""
    *lead, m, c = z.shape
    re, im = torch.view_as_real(z).unbind(-1)
    # (s_re + i s_im)(re + i im): s_re -> (re, im), s_im -> (-im, re)
    block = torch.stack([torch.stack([re, im], -1), torch.stack([-im, re], -1)], -2)
    eye = torch.eye(c, dtype=re.dtype, device=re.device)
    return torch.einsum("...cab,dc->...dacb", block, eye).reshape(*lead, m, 2 * c, 2 * c)


CARRY_BLOCK = 64
"""Steps per block of ``carry_scan``: its decay matrix is [64, 64, m, c] complex128 (8 MB at m c = 128)."""


def carry_scan(x: torch.Tensor, log_decay: torch.Tensor, cut: torch.Tensor | None) -> torch.Tensor:
    """C_n = A_n C_{n-1} + X_n along dim 0, C_{-1} = 0, with A_n = exp(log_decay), or 0 where cut[n].

    x complex [N, B, m, c], log_decay complex [m, c], cut bool [N, B] or None (cut[0] is not used). Up to
    CARRY_BLOCK steps, one matmul with the decay matrix A^(n-k), n >= k, gives the uncut sums D; where
    a cut at s <= n (the last one) ends the memory, C_n = D_n - A^(n-s+1) D_{s-1} (in complex128 the
    cancellation costs 1e-16 relative). Longer sequences run in blocks of CARRY_BLOCK steps, with the
    states between blocks from the same recurrence one level up (``_blocked_carry_scan``).
    """
    steps = len(x)
    if steps > CARRY_BLOCK:
        return _blocked_carry_scan(x, log_decay, cut)
    position = torch.arange(steps, device=x.device)
    lag = position[:, None] - position[None, :]  # [n, k] = n - k
    matrix = torch.where((lag >= 0)[..., None, None], torch.exp(lag.clamp(min=0)[..., None, None] * log_decay), 0)
    sums = _complex_matmul(matrix.permute(2, 3, 0, 1), x.permute(2, 3, 0, 1)).permute(2, 3, 0, 1)  # [N, B, m, c]
    if cut is None:
        return sums
    start = torch.where(cut, position[:, None], 0).cummax(0).values  # [N, B]: the last cut at or before n, or 0
    before = torch.take_along_dim(sums, (start - 1).clamp(min=0)[:, :, None, None], dim=0)  # D_{s-1}
    decay = torch.exp((position[:, None] - start + 1)[:, :, None, None] * log_decay)  # A^(n-s+1)
    return sums - torch.where((start > 0)[:, :, None, None], decay * before, 0)


def _blocked_carry_scan(x: torch.Tensor, log_decay: torch.Tensor, cut: torch.Tensor | None) -> torch.Tensor:
    """``carry_scan`` for N > CARRY_BLOCK: each block of K = CARRY_BLOCK steps from zero, then the state at
    each block's end, E_g = local_g[K-1] + A^K E_{g-1} (zero decay for a block holding a cut), by
    ``carry_scan`` one level up, and C = local + A^(t+1) [no cut in the block up to t] E_{g-1}."""
    steps, batch, *rest = x.shape
    size = CARRY_BLOCK
    blocks = -(-steps // size)
    pad = blocks * size - steps
    x = torch.nn.functional.pad(x, (0, 0) * len(rest) + (0, 0, 0, pad))

    def block_major(tensor: torch.Tensor) -> torch.Tensor:  # [blocks K, B, ...] -> [K, blocks B, ...]
        return tensor.unflatten(0, (blocks, size)).transpose(0, 1).flatten(1, 2)

    block_cut = None if cut is None else block_major(torch.nn.functional.pad(cut, (0, 0, 0, pad)))
    local = carry_scan(block_major(x), log_decay, block_cut)  # [K, blocks B, ...]
    any_cut = None if cut is None else block_cut.any(0).view(blocks, batch)
    ends = carry_scan(local[-1].unflatten(0, (blocks, batch)), size * log_decay, any_cut)
    entering = torch.cat([torch.zeros_like(ends[:1]), ends[:-1]]).flatten(0, 1)  # E_{g-1}, [blocks B, ...]
    position = torch.arange(1, size + 1, device=x.device)
    carried = torch.exp(position[:, None, None] * log_decay)[:, None] * entering  # A^(t+1) E_{g-1}
    if cut is not None:
        carried = carried * (block_cut.cumsum(0) == 0)[:, :, None, None]
    states = (local + carried).unflatten(1, (blocks, batch)).transpose(0, 1).flatten(0, 1)
    return states[:steps]


def _complex_matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a @ b for complex a [..., n, k] and b [..., k, j] as one real matmul, [[Re a, -Im a], [Im a, Re a]]
    times [Re b; Im b] (torch's complex matmul on CPU copies every matrix of the batch)."""
    a_re, a_im = torch.view_as_real(a).unbind(-1)
    b_re, b_im = torch.view_as_real(b).unbind(-1)
    real = torch.cat([torch.cat([a_re, -a_im], -1), torch.cat([a_im, a_re], -1)], -2) @ torch.cat([b_re, b_im], -2)
    return torch.complex(*real.chunk(2, -2))


class _ChunkCarry(torch.autograd.Function):
    """``carry_scan``'s recurrence stepped one chunk at a time, for FFM's CPU path.

    Each chunk costs one small fused multiply-add over [B, m, c], forwards and backwards (the adjoint:
    G_n = dL/dS_n + conj(A_{n+1}) G_{n+1}, dL/dX_n = G_n, dL/dA = sum_n G_n conj(S_{n-1}) where not cut),
    so fewer flops than ``carry_scan``'s matmuls, in T/L steps (each a kernel launch on a GPU). A backward
    with ``create_graph`` (double backward) differentiates ``carry_scan`` instead.
    """

    @staticmethod
    def decays(decay: torch.Tensor, cut: torch.Tensor | None, shape: torch.Size) -> torch.Tensor:
        """A_n for every step [N, B, m, c]: the decay, zero where cut."""
        return decay.expand(shape) if cut is None else decay * ~cut[:, :, None, None]

    @staticmethod
    def forward(ctx, x: torch.Tensor, log_decay: torch.Tensor, cut: torch.Tensor | None) -> torch.Tensor:
        decay = torch.exp(log_decay)
        decays = _ChunkCarry.decays(decay, cut, x.shape)
        states = x.clone()
        for n in range(1, len(x)):
            states[n].addcmul_(decays[n], states[n - 1])
        ctx.save_for_backward(x, log_decay, cut, decay, states)
        return states

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, log_decay, cut, decay, states = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: gradients that are themselves differentiable
            return differentiable_backward(carry_scan, (x, log_decay, cut), grad, ctx.needs_input_grad)
        grad_x = grad.clone()
        decays_conj = _ChunkCarry.decays(decay, cut, x.shape).conj()
        for n in range(len(grad) - 2, -1, -1):
            grad_x[n].addcmul_(decays_conj[n + 1], grad_x[n + 1])
        if not ctx.needs_input_grad[1]:
            return grad_x, None, None
        terms = grad_x[1:] * states[:-1].conj()
        if cut is not None:
            terms = terms * ~cut[1:, :, None, None]
        return grad_x, terms.sum((0, 1)) * decay.conj(), None  # dL/dlog_decay = dL/dA conj(dA/dlog_decay)


def differentiable_backward(
    function, inputs: tuple[torch.Tensor | None, ...], grad: torch.Tensor, needs_grad: tuple[bool, ...]
) -> tuple[torch.Tensor | None, ...]:
    """A custom Function's backward under ``create_graph``: the gradients of ``function(*inputs)`` (the same
    values in plain differentiable ops) with respect to the inputs that need them, as a graph. Each input is
    differentiated through an alias (a view), so that where one input depends on another (x and the scan's
    inputs made from it), each gets its own partial derivative and autograd adds the paths once."""
    with torch.enable_grad():
        aliases = tuple(
            tensor.view_as(tensor) if needed else tensor for tensor, needed in zip(inputs, needs_grad, strict=True)
        )
        wanted = [alias for alias, needed in zip(aliases, needs_grad, strict=True) if needed]
        grads = iter(torch.autograd.grad(function(*aliases), wanted, grad, create_graph=True, allow_unused=True))
    return tuple(next(grads) if needed else None for needed in needs_grad)


def _cut_at_resets(local: torch.Tensor, powers: torch.Tensor, resets: torch.Tensor) -> torch.Tensor:
    """Remove from zero-started chunk states what came before the last reset at or before t.

    With s that reset's position: S_t = L_t - gamma^(t-s+1) L_{s-1}, L the chunk states from zero and
    L_{-1} = 0 (a reset at s = 0, or none, removes nothing here).
    """
    length = resets.shape[1]
    position = torch.arange(length, device=resets.device)
    start = torch.where(resets, position, 0).cummax(-1).values  # [rows, L]
    states = torch.view_as_complex(local)  # [m, rows, L, c]
    shifted = torch.nn.functional.pad(states, (0, 0, 1, 0))  # index s holds L_{s-1}
    before = torch.take_along_dim(shifted, start[None, :, :, None], dim=2)
    decay = powers[position - start].permute(2, 0, 1, 3)  # gamma^(t-s+1): [m, rows, L, c]
    return torch.view_as_real(states - decay * before)
