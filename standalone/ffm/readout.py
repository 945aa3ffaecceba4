"""FFM's readout, from FFA's chunk rows to the layer's output, one block of rows at a time.

    z_t = W3 [Re S_t, Im S_t],    y_t = LN(z_t) * sigmoid(W4 x_t) + W5 x_t * (1 - sigmoid(W4 x_t))

The states S_t are the widest tensor of the layer ([B, T, m, c] complex: 2mc = 256 floats a step at
m = 32, c = 4). Here each block of about BLOCK_ROWS rows (whole sequences, or a run of chunks of one)
computes its states from its chunks' inputs and carried-in states (``ffm.scan.chunk_states``), mixes
them and writes its rows of y, so that the states and the output stage's temporaries are block-sized:
they stay in cache and their memory is reused, where whole-sequence temporaries are fresh memory every
step (on CPU, glibc returns large blocks to the kernel, and each comes back as page faults). Training
keeps z, the projection in the form backward needs ([LN(z) - W5 x, sigmoid(W4 x)], ``gated_norm``) and
LN's statistics, and recomputes a block's states in backward (one small matmul), so no [B, T, m, c]
tensor is ever stored. On CPU the kept tensors are the layer's ``Workspace``: the next training step
writes into them again instead of into fresh memory.
"""

import math
import threading
from collections.abc import Iterator

import torch

from ffm.scan import ChunkRows, chunk_states, differentiable_backward, rows_as_steps

BLOCK_ROWS = 2048
"""Rows (batch x steps) per block: a block's [rows, out] float32 temporaries are 2 MB at out = 256. On the
2-core development CPU (T = 1024, of 1024 to 16384): the fastest at B = 8 and the only one whose peak
training memory at B = 8 was not above the whole-sequence layer's. At B = 64, with the kept tensors reused
(``Workspace``), 4096 and 8192 were no faster (medians 680-760 ms for all three, alternating runs)."""


class Workspace:
    """The tensors one layer's training step keeps for backward, reused by its next step: z, the
    projection in ``gated_norm``'s kept form and LN's mean and rstd, 3 out + 2 floats per batch element and
    step (2 out + 2 without the output gate).

    On CPU, glibc maps every allocation above 32 MB afresh and returns it to the kernel when freed, so
    fresh kept tensors (192 MB at B = 64, T = 1024, out = 256) are written page fault by page fault. The
    workspace holds one buffer per kept tensor instead and hands out views of them again once nothing
    else refers to them: the step's graph has been run backward (without ``retain_graph``) or dropped. A
    step whose tensors fit (the same or fewer batch elements x steps) reuses them; a retained graph, a
    second forward before the first one's backward, or a larger step gets fresh buffers, which the
    workspace then holds instead. (Were a saved tensor ever written again, autograd's version check would
    raise instead of computing wrong gradients: the saved views share their buffer's version counter.)
    CUDA and ``torch.compile`` get fresh tensors every time (CUDA's caching allocator already reuses
    memory). Between steps the buffers stay allocated; a copied or pickled layer starts empty.
    """

    def __init__(self) -> None:
        self._buffers: list[torch.Tensor] = []
        self._lock = threading.Lock()

    def empty(self, shapes: list[tuple[int, ...]], like: torch.Tensor) -> list[torch.Tensor]:
        """Uninitialised tensors of ``shapes`` with like's dtype and device: views of the held buffers if
        they are large enough and free, else of fresh ones (held from now on, on CPU). A view keeps its
        buffer busy (referenced) until autograd lets go of it."""
        if like.device.type != "cpu" or torch.compiler.is_compiling():
            return [like.new_empty(shape) for shape in shapes]
        sizes = [math.prod(shape) for shape in shapes]
        with self._lock:
            if not self._fit(sizes, like):
                self._buffers = [like.new_empty(size) for size in sizes]
            return [buffer[:size].view(shape) for buffer, size, shape in zip(self._buffers, sizes, shapes, strict=True)]

    def _fit(self, sizes: list[int], like: torch.Tensor) -> bool:
        """Whether it holds one buffer of like's dtype per size, each at least as large, and nothing but the
        workspace refers to them (shorter sequences fit in a longer step's buffers)."""
        if len(self._buffers) != len(sizes):
            return False
        return all(
            buffer.dtype == like.dtype and buffer.numel() >= size and _referenced_once(buffer)
            for buffer, size in zip(self._buffers, sizes, strict=True)
        )

    def __deepcopy__(self, memo: dict) -> "Workspace":
        return Workspace()

    def __reduce__(self) -> tuple:
        return Workspace, ()


def _referenced_once(tensor: torch.Tensor) -> bool:
    """Whether only one reference holds the tensor (its views and autograd's saved copies are others); False
    on a torch without ``Tensor._use_count``, so nothing is reused there."""
    use_count = getattr(tensor, "_use_count", None)
    return use_count is not None and use_count() == 1


def readout(
    x: torch.Tensor,
    chunk_rows: ChunkRows,
    weight: torch.Tensor,
    bias: torch.Tensor,
    mix_weight: torch.Tensor,
    mix_bias: torch.Tensor,
    workspace: Workspace,
) -> torch.Tensor:
    """y [B, T, out] from x [B, T, in], FFA's chunk rows (``ffm.scan.ChunkRows``), the weight and bias of
    [W5; W4] (W5 alone without the output gate) and W3's; with autograd on, what backward needs is kept in
    the layer's ``workspace``. A backward with ``create_graph`` differentiates ``plain_readout``."""
    parameters = (weight, bias, mix_weight, mix_bias)
    if torch.is_grad_enabled():
        return _BlockwiseReadout.apply(workspace, x, *chunk_rows, *parameters)
    return _readout_forward(x, chunk_rows, *parameters)[0]


def _readout_forward(
    x: torch.Tensor,
    chunk_rows: ChunkRows,
    weight: torch.Tensor,
    bias: torch.Tensor,
    mix_weight: torch.Tensor,
    mix_bias: torch.Tensor,
    keep_in: Workspace | None = None,
) -> tuple[torch.Tensor, ...]:
    """y, and with a workspace what backward needs, in its tensors: z, the projection in ``gated_norm``'s
    kept form, LN's mean and rstd (all [B, T, ...])."""
    batch, steps, _ = x.shape
    out = mix_weight.shape[0]
    y = x.new_empty(batch, steps, out)
    keep = keep_in is not None
    kept = keep_in.empty([(batch, steps, size) for size in (out, weight.shape[0], 1, 1)], x) if keep else []
    for rows, sequences, time in _blocks(batch, steps, chunk_rows.inputs.shape[-1]):
        features = _block_features(chunk_rows.select(rows), sequences, time)
        block = [_block_of(tensor, sequences, time) for tensor in kept]
        z = torch.addmm(mix_bias, features, mix_weight.T, out=block[0] if keep else None)
        x_block = x[sequences, time].reshape(len(z), -1)
        projection = torch.addmm(bias, x_block, weight.T, out=block[1] if keep else None)
        _, mean, rstd = gated_norm(z, projection, out=_block_of(y, sequences, time), keep=keep)
        if keep:
            block[2].copy_(mean), block[3].copy_(rstd)
    return y, *kept


def plain_readout(
    x: torch.Tensor,
    chunk_rows: ChunkRows,
    weight: torch.Tensor,
    bias: torch.Tensor,
    mix_weight: torch.Tensor,
    mix_bias: torch.Tensor,
) -> torch.Tensor:
    """``readout``'s y from whole-sequence ops (the states [B, T, m, c] at once), plain autograd."""
    batch, steps, _ = x.shape
    states = rows_as_steps(chunk_states(chunk_rows), batch, steps)
    z = torch.nn.functional.linear(states, mix_weight, mix_bias)
    return output_gate(z, torch.nn.functional.linear(x, weight, bias))


def output_gate(z: torch.Tensor, projection: torch.Tensor) -> torch.Tensor:
    """y = LN(z) * sigmoid(g) + skip * (1 - sigmoid(g)), LN without affine, projection = [skip, g];
    y = LN(z) + skip for projection = skip (no output gate). Plain ops: autocast, torch.func and double
    backward apply (under autocast, y has LN's precision)."""
    normed = torch.nn.functional.layer_norm(z, z.shape[-1:])
    skip, *gate = projection.split(z.shape[-1], -1)
    if not gate:
        return normed + skip
    return torch.lerp(skip.to(normed.dtype), normed, torch.sigmoid(gate[0]).to(normed.dtype))


def _blocks(batch: int, steps: int, length: int) -> Iterator[tuple[slice, slice, slice]]:
    """(chunk rows, sequences, time steps) of each block: about BLOCK_ROWS rows, whole sequences where a
    sequence is shorter, else a run of whole chunks of one sequence; contiguous rows of [B, T, ...]."""
    chunks = -(-steps // length)
    sequences = BLOCK_ROWS // (chunks * length)
    if sequences:
        for b in range(0, batch, sequences):
            end = min(b + sequences, batch)
            yield slice(b * chunks, end * chunks), slice(b, end), slice(0, steps)
        return
    per_block = max(1, BLOCK_ROWS // length)
    for b in range(batch):
        for n in range(0, chunks, per_block):
            end = min(n + per_block, chunks)
            yield slice(b * chunks + n, b * chunks + end), slice(b, b + 1), slice(n * length, min(end * length, steps))


def _block_of(tensor: torch.Tensor, sequences: slice, time: slice) -> torch.Tensor:
    """A block's rows of a contiguous [B, T, F] tensor, as a [rows, F] view."""
    return tensor[sequences, time].view(-1, tensor.shape[-1])


def _block_features(chunk_rows: ChunkRows, sequences: slice, time: slice) -> torch.Tensor:
    """A block's states as W3's input rows, real [rows, 2mc], from its chunk rows."""
    states = chunk_states(chunk_rows)
    block_steps = time.stop - time.start
    return rows_as_steps(states, sequences.stop - sequences.start, block_steps).reshape(
        -1, states.shape[0] * states.shape[-1]
    )


class _BlockwiseReadout(torch.autograd.Function):
    """``readout`` with a blockwise backward: per block, the states again under autograd (for the scan's
    inputs and tables), the output stage's gradient (``gated_norm_backward``), and W3's and [W5; W4]'s
    gradients accumulated block by block. Under ``create_graph`` it differentiates ``plain_readout``."""

    @staticmethod
    def forward(ctx, workspace: Workspace, x: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        """The workspace, x, the tensors of ``ChunkRows``, then [W5; W4]'s weight and bias and W3's."""
        split = len(ChunkRows._fields)
        chunk_rows, (weight, bias, mix_weight, mix_bias) = ChunkRows(*args[:split]), args[split:]
        y, *kept = _readout_forward(x, chunk_rows, weight, bias, mix_weight, mix_bias, keep_in=workspace)
        ctx.save_for_backward(x, *chunk_rows, weight, bias, mix_weight, mix_bias, *kept)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, inputs, carried, within, carry_in, powers, resets, weight, bias, mix_weight, mix_bias, *kept = (
            ctx.saved_tensors
        )
        if torch.is_grad_enabled():  # create_graph: gradients that are themselves differentiable
            split = len(ChunkRows._fields)
            arguments = (x, inputs, carried, within, carry_in, powers, resets, weight, bias, mix_weight, mix_bias)
            grads = differentiable_backward(
                lambda x, *rest: plain_readout(x, ChunkRows(*rest[:split]), *rest[split:]),
                arguments,
                grad,
                ctx.needs_input_grad[1:],
            )
            return None, *grads
        batch, steps, _ = x.shape
        grad_x = torch.empty(x.shape, dtype=x.dtype, device=x.device) if ctx.needs_input_grad[1] else None
        grad_inputs, grad_carried = torch.empty_like(inputs), torch.empty_like(carried)
        grad_weight, grad_mix_weight = torch.zeros_like(weight), torch.zeros_like(mix_weight)
        grad_bias, grad_mix_bias = weight.new_zeros(weight.shape[0]), weight.new_zeros(mix_weight.shape[0])
        tables = [tensor.detach().requires_grad_() for tensor in (within, carry_in, powers)]
        grad_tables = [torch.zeros_like(tensor) for tensor in tables]
        differentiated = tables if resets is not None else tables[:2]  # powers enter only at resets
        chunk_rows = ChunkRows(inputs, carried, *tables, resets)
        for rows, sequences, time in _blocks(batch, steps, inputs.shape[-1]):
            block_rows = chunk_rows.select(rows)
            block_inputs = block_rows.inputs.detach().requires_grad_()
            block_carried = block_rows.carried.detach().requires_grad_()
            with torch.enable_grad():
                block_rows = block_rows._replace(inputs=block_inputs, carried=block_carried)
                features = _block_features(block_rows, sequences, time)
            block_grad = grad[sequences, time].reshape(len(features), -1)
            block = [_block_of(tensor, sequences, time) for tensor in kept]
            grad_z, grad_projection = gated_norm_backward(block_grad, *block)
            grad_mix_weight.addmm_(grad_z.T, features.detach())
            grad_mix_bias += grad_z.sum(0)
            grads = torch.autograd.grad(features, [block_inputs, block_carried, *differentiated], grad_z @ mix_weight)
            grad_inputs[:, rows], grad_carried[:, rows] = grads[:2]
            for total, part in zip(grad_tables, grads[2:], strict=False):
                total += part
            x_block = x[sequences, time].reshape(len(features), -1)
            grad_weight.addmm_(grad_projection.T, x_block)
            grad_bias += grad_projection.sum(0)
            if grad_x is not None:
                torch.mm(grad_projection, weight, out=_block_of(grad_x, sequences, time))
        grad_parameters = (grad_weight, grad_bias, grad_mix_weight, grad_mix_bias)
        return None, grad_x, grad_inputs, grad_carried, *grad_tables, None, *grad_parameters


def gated_norm(
    z: torch.Tensor, projection: torch.Tensor, out: torch.Tensor | None = None, keep: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """y = LN(z) * sigmoid(g) + skip * (1 - sigmoid(g)), LN without affine, projection = [skip, g];
    y = LN(z) + skip for projection = skip (no output gate). Returns y (in ``out`` if given), LN's
    mean and rstd. With ``keep``, the gated projection is overwritten by what backward needs,
    [LN(z) - skip, sigmoid(g)] (``gated_norm_backward``)."""
    width = z.shape[-1]
    normed, mean, rstd = torch.native_layer_norm(z, (width,), None, None, 1e-5)
    skip, *gate = projection.split(width, -1)
    if not gate:
        return torch.add(normed, skip, out=out), mean, rstd
    opened = torch.sigmoid(gate[0], out=gate[0] if keep else None)
    y = torch.lerp(skip, normed, opened, out=out)
    if keep:
        torch.sub(normed, skip, out=skip)
    return y, mean, rstd


def gated_norm_backward(
    grad: torch.Tensor, z: torch.Tensor, kept: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``gated_norm``'s gradients with respect to z and the projection, from the projection it kept
    ([LN(z) - skip, s], s = sigmoid(g); the skip alone without the output gate):

    dL/dskip = dy (1 - s),  dL/dg = dL/dskip s (LN(z) - skip),  dL/dz = LN'(dy s)
    """
    width = z.shape[-1]
    layer_norm_backward = torch.ops.aten.native_layer_norm_backward
    if kept.shape[-1] == width:  # y = LN(z) + skip
        return layer_norm_backward(grad, z, (width,), mean, rstd, None, None, [True, False, False])[0], grad
    difference, opened = kept.split(width, -1)
    grad_projection = torch.empty(kept.shape, dtype=grad.dtype, device=grad.device)
    grad_skip, grad_gate = grad_projection.split(width, -1)
    grad_normed = grad * opened
    torch.sub(grad, grad_normed, out=grad_skip)
    torch.mul(grad_skip, opened, out=grad_gate).mul_(difference)
    grad_z = layer_norm_backward(grad_normed, z, (width,), mean, rstd, None, None, [True, False, False])[0]
    return grad_z, grad_projection
