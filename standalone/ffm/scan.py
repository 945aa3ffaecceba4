"""Parallel form of the FFM aggregator recurrence (the paper's FFA, Eq. 2 with resets).

    S_t = gamma * S_{t-1} * (1 - r_t) + u_t 1_c^T,    S_{-1} = s0,    gamma = exp(a 1_c^T + i 1_m w^T)

u_t is real [m], S_t and gamma complex [m, c]. All S_t are computed at once by a two-level scan:

1. Time is split into chunks of length L. Inside a chunk, the state started from zero is a matrix
   product with the lower-triangular decay matrix D[t, k] = gamma^(t-k), t >= k. |gamma| <= 1 and the
   lags are below L, so nothing overflows whatever the decay a: there is no gamma^(-t) rescaling.
2. The states carried into the chunks obey the same recurrence one level up: decay gamma^L (zero for a
   chunk holding a reset), chunk-end states as inputs. There are only T/L of them, L times fewer than
   the states, so they are stepped one chunk at a time (a fused multiply-add per chunk, and its
   adjoint backwards), in complex128: this level carries every long-range interaction (gradients
   with respect to w sum phase errors over the whole sequence). Products of decays only, never
   inverses.
3. The carried-in state's contribution gamma^(t+1) C_n enters the chunk product as extra columns, so
   without resets a chunk costs one real batched matmul; with resets, the part of each chunk state
   that predates the reset is subtracted (chunk-local, so the cancellation is bounded by L steps).

Complex numbers are handled as real (re, im) pairs so the heavy work is real BLAS; the small decay
tables are built in float64 (phases w * t lose precision in float32) and cast to float32.
"""

from typing import NamedTuple

import torch

CHUNK_SIZE = 16


def decay_powers(log_gamma: torch.Tensor, exponents: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """gamma^j as complex `dtype` [*exponents.shape, m, c] from complex128 log_gamma [m, c]."""
    j = exponents.to(dtype=torch.float64, device=log_gamma.device)
    return torch.exp(j[..., None, None] * log_gamma).to(dtype)


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
        state: complex [B, m, c] of u's precision, the state before the first step.
        resets: optional bool [B, T]; True zeroes the state before u_t is added.
        chunk_size: L.
    Returns:
        complex [B, T, m, c] of u's precision (complex64 for float32).
    """
    batch, steps, m = u.shape
    tables = scan_tables(log_gamma, chunk_size, u.dtype)
    inputs, resets = chunk_inputs(u, resets, chunk_size)
    carried = carried_states(inputs, tables, state, resets)
    states = chunk_states(ChunkRows(inputs, carried, tables.within, tables.carry_in, log_gamma, resets))
    return torch.view_as_complex(rows_as_steps(states, batch, steps).unflatten(-1, (m, -1, 2)))


class ScanTables(NamedTuple):
    """The decay tables of chunk length L, real (re, im) pairs of the states' precision but chunk_decay.

    within: [m, L, L 2c], row k: gamma^(t-k) at columns (t, c, re/im), zero for t < k.
    carry_in: [m, 2c, L 2c], the real matrix of C -> (gamma^(t+1) C for t < L), C a carried state as (c, re/im).
    chunk_decay: complex128 [m, c], gamma^L.
    """

    within: torch.Tensor
    carry_in: torch.Tensor
    chunk_decay: torch.Tensor


def scan_tables(log_gamma: torch.Tensor, length: int, dtype: torch.dtype) -> ScanTables:
    """The tables for complex128 log_gamma [m, c] and chunk length L; real ones in `dtype` (float32 or 64)."""
    m, c = log_gamma.shape
    complex_dtype = dtype.to_complex()
    position = torch.arange(length, device=log_gamma.device)
    lag = position[None, :] - position[:, None]  # [k, t] = t - k
    within = torch.view_as_real(decay_powers(log_gamma, lag.clamp(min=0), complex_dtype))  # [k, t, m, c, 2]
    within = (within * (lag >= 0)[:, :, None, None, None]).permute(2, 0, 1, 3, 4)
    carry_in = _complex_product_matrix(decay_powers(log_gamma, position + 1, complex_dtype))  # [t, m, 2c, 2c]
    return ScanTables(
        within.reshape(m, length, length * 2 * c),
        carry_in.permute(1, 2, 0, 3).reshape(m, 2 * c, length * 2 * c),
        decay_powers(log_gamma, torch.tensor(length), torch.complex128),
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
    inputs: torch.Tensor, tables: ScanTables, state: torch.Tensor, resets: torch.Tensor | None
) -> torch.Tensor:
    """States entering each chunk row, real [m, rows, 2c]: C_0 = s0, C_n = A_{n-1} C_{n-1} + E_{n-1}.

    E_n is chunk n's end state from zero (from its last reset on), A_n = gamma^L, or 0 if chunk n holds a
    reset. Inputs and resets are chunk rows (``chunk_inputs``), state complex [B, m, c].
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
    decays = tables.chunk_decay.expand(chunks, batch, m, c)  # step n decays by chunk n - 1's A_{n-1}
    if resets is not None:
        chunk_resets = resets.any(-1).view(batch, chunks).T
        decays = decays * ~chunk_resets.roll(1, 0)[:, :, None, None]  # (row 0 is never read)
    carried = _ChunkCarry.apply(steps, decays).to(state.dtype)
    return torch.view_as_real(carried).permute(2, 1, 0, 3, 4).reshape(m, rows, 2 * c)


class ChunkRows(NamedTuple):
    """Chunk rows (``chunk_inputs``) with all that their states need: inputs [m, rows, L], carried-in states
    [m, rows, 2c] (``carried_states``), the tables' within and carry_in, complex128 log_gamma [m, c] and
    resets [rows, L] or None. Each chunk row's states depend on its own row only (``chunk_states``)."""

    inputs: torch.Tensor
    carried: torch.Tensor
    within: torch.Tensor
    carry_in: torch.Tensor
    log_gamma: torch.Tensor
    resets: torch.Tensor | None

    def select(self, rows: slice) -> "ChunkRows":
        """The same for some of the rows."""
        resets = None if self.resets is None else self.resets[rows]
        return self._replace(inputs=self.inputs[:, rows], carried=self.carried[:, rows], resets=resets)


def chunk_states(chunk_rows: ChunkRows) -> torch.Tensor:
    """The states of some chunk rows, real [m, rows, L, 2c] (any run of rows: each chunk row is independent
    here)."""
    inputs, carried, within, carry_in, log_gamma, resets = chunk_rows
    m, rows, length = inputs.shape
    if resets is None:  # one matmul: the carried state enters as extra columns
        states = torch.bmm(torch.cat([inputs, carried], -1), torch.cat([within, carry_in], 1))
        return states.view(m, rows, length, -1)
    local = torch.bmm(inputs, within).view(m, rows, length, -1, 2)
    local = _cut_at_resets(local, log_gamma, resets)
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


class _ChunkCarry(torch.autograd.Function):
    """S_n = A_n * S_{n-1} + X_n along dim 0 (S_{-1} = 0), stepped one chunk at a time.

    Each chunk costs one small fused multiply-add over [B, m, c], forwards and backwards (the adjoint:
    G_n = dL/dS_n + conj(A_{n+1}) G_{n+1}, dL/dX_n = G_n, dL/dA_n = G_n conj(S_{n-1})). Measured on CPU
    at B = 64, T = 1024 (forward and backward): 6 ms, where a log-depth scan, ~5 log2(T/L) full passes
    over the chunk states, took 43 ms, as long as the rest of the aggregator. On a GPU each chunk is a
    kernel launch (T/L of them). Differentiable once.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, decay: torch.Tensor) -> torch.Tensor:
        states = x.clone()
        for n in range(1, len(x)):
            states[n].addcmul_(decay[n], states[n - 1])
        ctx.save_for_backward(decay, states)
        return states

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        decay, states = ctx.saved_tensors
        grad_x = grad.clone()
        decay_conj = decay.conj()
        for n in range(len(grad) - 2, -1, -1):
            grad_x[n].addcmul_(decay_conj[n + 1], grad_x[n + 1])
        if not ctx.needs_input_grad[1]:
            return grad_x, None
        grad_decay = torch.zeros(decay.shape, dtype=decay.dtype, device=decay.device)
        torch.mul(grad_x[1:], states[:-1].conj(), out=grad_decay[1:])
        return grad_x, grad_decay


def _cut_at_resets(local: torch.Tensor, log_gamma: torch.Tensor, resets: torch.Tensor) -> torch.Tensor:
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
    decay = decay_powers(log_gamma, position - start + 1, states.dtype).permute(2, 0, 1, 3)  # [m, rows, L, c]
    return torch.view_as_real(states - decay * before)
