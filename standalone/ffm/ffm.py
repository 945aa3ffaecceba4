"""Fast and Forgetful Memory (Morad et al., NeurIPS 2023) and its torch.nn.GRU-compatible wrapper."""

import inspect

import torch
from torch import nn

from ffm.aggregator import FASTEST_DECAY, FFA
from ffm.readout import Workspace, output_gate, readout
from ffm.scan import CPU_CHUNK_SIZE, ChunkRows, carried_states, chunk_inputs, chunk_states, scan_tables


class FFM(nn.Module):
    """Fast and Forgetful Memory.

    Per step, for x_t in R^input_size (paper, Section 4):

        u_t = W1 x_t * sigmoid(W2 x_t)                                    input gate, u_t in R^m
        S_t = gamma * S_{t-1} + u_t 1_c^T                                 FFA (see FFA), S_t in C^{m x c}
        z_t = W3 [Re S_t, Im S_t]                                         mix, 2mc -> output_size
        y_t = LN(z_t) * sigmoid(W4 x_t) + W5 x_t * (1 - sigmoid(W4 x_t))  output gate, LN without affine

    W1, W2, W5 and W4 are one Linear (``pre``, output blocks in that order), W3 is ``mix``.
    ``input_gate=False`` uses u_t = W1 x_t, ``output_gate=False`` uses y_t = LN(z_t) + W5 x_t; the other
    ablation flags are FFA's.

    ``aggregator`` replaces FFA by another module with the same contract (e.g. a running sum or max):
    ``initial_state(batch_size, device)`` -> state [B, m, ...] (real or complex) and
    ``forward(u [B, T, m], state, resets)`` -> states [B, T, m, ...]; W3 then mixes its real features.

    Args:
        input_size: features of x_t.
        hidden_size: width of the gated input u_t, one decay trace per unit: the paper's m, unless
            ``memory_size`` sets m (the authors' signature has both; ``memory_size`` defaults to it).
        context_size: c, the oscillation frequencies each trace is read at.
        output_size: features of y_t.
        memory_size: m; defaults to ``hidden_size``.
        min_period, max_period: range of the initial oscillation periods, in steps; the slowest trace
            starts at 1% after max_period steps.
        fastest_decay: the floor on -a (FFA's; default the authors' 0.683147, ``math.inf`` lifts it).
        blockwise: on CPU, read FFA's sequences out block by block (``ffm.readout``: faster and leaner there)
            where that path is valid: no autocast, no torch.func transform, not under torch.compile, the
            aggregator unhooked. False: always the plain path (one set of whole-tensor ops, as on CUDA).

    ``forward(x, state=None, resets=None)`` takes x [B, T, input_size] (or unbatched [T, input_size]),
    an optional complex64 state [B, m, c] (zeros if None) and optional bool resets [B, T] (True: a new
    episode starts at t, the state is zeroed before u_t is added), and returns (y [B, T, output_size],
    final state [B, m, c]). Sequences are processed in parallel; T = 1 takes a cheap single-step path.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        context_size: int,
        output_size: int,
        memory_size: int | None = None,
        min_period: float = 1,
        max_period: float = 1024,
        fastest_decay: float = FASTEST_DECAY,
        oscillate: bool = True,
        learn_oscillate: bool = True,
        decay: bool = True,
        learn_decay: bool = True,
        input_gate: bool = True,
        output_gate: bool = True,
        aggregator: nn.Module | None = None,
        blockwise: bool = True,
    ) -> None:
        super().__init__()
        self.blockwise = blockwise
        self.input_size = input_size
        self.output_size = output_size
        self.memory_size = hidden_size if memory_size is None else memory_size
        self.context_size = context_size
        self.input_gate = input_gate
        self.output_gate = output_gate
        self.pre = nn.Linear(input_size, self.memory_size * (1 + input_gate) + output_size * (1 + output_gate))
        if aggregator is None:
            aggregator = FFA(
                self.memory_size,
                context_size,
                min_period=min_period,
                max_period=max_period,
                fastest_decay=fastest_decay,
                oscillate=oscillate,
                learn_oscillate=learn_oscillate,
                decay=decay,
                learn_decay=learn_decay,
            )
        self.aggregator = aggregator
        probe = aggregator.initial_state(1, "meta")[0]
        if probe.shape[0] != self.memory_size:
            raise ValueError(f"expected an aggregator state [m={self.memory_size}, ...], got {list(probe.shape)}")
        self.state_shape = tuple(probe.shape)
        self.complex_state = probe.is_complex()
        self.mix = nn.Linear(probe.numel() * (2 if self.complex_state else 1), output_size)
        self.workspace = Workspace()  # what FFA's training steps keep for backward (ffm.readout)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """The aggregator's initial state [batch_size, *state_shape]: FFA's is zero, complex64."""
        return self.aggregator.initial_state(batch_size, device)

    def forward(
        self,
        x: torch.Tensor,
        state: torch.Tensor | None = None,
        resets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() == 2 and x.shape[-1] == self.input_size:  # unbatched: [T, F], state [m, c], resets [T]
            if state is not None:
                _check(state, self.state_shape, self._state_dtype(x), "state")
            if resets is not None:
                _check(resets, x.shape[:1], torch.bool, "resets [T]")
            y, state = self(x[None], None if state is None else state[None], None if resets is None else resets[None])
            return y[0], state[0]
        if x.dim() != 3 or x.shape[-1] != self.input_size:
            raise ValueError(
                f"expected x of shape [B, T, {self.input_size}] or [T, {self.input_size}], got {list(x.shape)}"
            )
        batch, steps = x.shape[:2]
        if state is None:
            state = self.initial_state(batch, x.device)
        else:
            _check(state, (batch, *self.state_shape), self._state_dtype(x), "state")
        if resets is not None:
            _check(resets, (batch, steps), torch.bool, "resets [B, T]")
        return self._forward(x, state, resets)

    def _forward(
        self, x: torch.Tensor, state: torch.Tensor, resets: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self._takes_blockwise_path(x):
            return self._forward_blockwise(x, state, resets)
        gated_input, projection = self._projections(x)
        u = nn.functional.glu(gated_input) if self.input_gate else gated_input  # W1 x * sigmoid(W2 x)
        states = self.aggregator(u, state, resets)
        features = torch.view_as_real(states) if states.is_complex() else states
        y = output_gate(self.mix(features.flatten(2)), projection)
        steps = x.shape[1]
        if steps == 0:
            return y, state.clone()
        final = states[:, -1]
        return y, final if steps == 1 else final.clone()  # a view would keep all T states alive

    def _takes_blockwise_path(self, x: torch.Tensor) -> bool:
        """Whether FFA's sequences are read out block by block (``blockwise``, CPU only): its custom autograd
        Functions have no autocast, torch.func or compile rules, and a hooked aggregator sees the states."""
        if torch.compiler.is_compiling() or not self.blockwise or x.device.type != "cpu" or x.shape[1] < 2:
            return False
        hooked = self.aggregator._forward_hooks or self.aggregator._forward_pre_hooks  # they see the states whole
        transformed = torch._C._functorch.peek_interpreter_stack() is not None  # torch.func.grad, vmap, ...
        return (
            isinstance(self.aggregator, FFA) and not hooked and not transformed and not torch.is_autocast_enabled("cpu")
        )

    def _forward_blockwise(
        self, x: torch.Tensor, state: torch.Tensor, resets: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """FFA's sequences without a [B, T, m, c] tensor: u and the states carried into each chunk first
        (small, stepped one chunk at a time), then the states, mix and output stage block by block
        (``ffm.readout``)."""
        gated, projection = self._pre_blocks()
        gated_input = nn.functional.linear(x, *gated)
        u = nn.functional.glu(gated_input) if self.input_gate else gated_input  # W1 x * sigmoid(W2 x)
        tables = scan_tables(self.aggregator.log_gamma(), CPU_CHUNK_SIZE, u.dtype)
        inputs, resets = chunk_inputs(u, resets, CPU_CHUNK_SIZE)
        carried = carried_states(inputs, tables, state, resets, sequential=True)
        chunk_rows = ChunkRows(inputs, carried, tables.within, tables.carry_in, tables.powers, resets)
        y = readout(x, chunk_rows, *projection, self.mix.weight, self.mix.bias, self.workspace)
        return y, self._final_state(chunk_rows, x.shape[0], x.shape[1])

    @staticmethod
    def _final_state(chunk_rows: ChunkRows, batch: int, steps: int) -> torch.Tensor:
        """S_{T-1}, complex [B, m, c], from the rows of each sequence's last chunk."""
        chunks = chunk_rows.inputs.shape[1] // batch
        states = chunk_states(chunk_rows.select(slice(chunks - 1, None, chunks)))
        final = states[:, :, (steps - 1) % states.shape[2]].transpose(0, 1)  # [B, m, 2c]
        return torch.view_as_complex(final.unflatten(-1, (-1, 2)).contiguous())

    def _projections(self, x: torch.Tensor) -> list[torch.Tensor]:
        """pre's output as [W1 x (, W2 x)] and [W5 x (, W4 x)] (one matmul)."""
        width = self.memory_size * (1 + self.input_gate)
        return list(self.pre(x).split([width, self.pre.out_features - width], -1))

    def _pre_blocks(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """pre's (weight, bias) as the input side [W1 (; W2)] and the output side [W5 (; W4)]."""
        width = self.memory_size * (1 + self.input_gate)
        weight, bias = self.pre.weight, self.pre.bias
        return [(weight[:width], bias[:width]), (weight[width:], bias[width:])]

    @property
    def _projection_sizes(self) -> list[int]:
        """Widths of pre's output blocks: [W1 x (, W2 x)], W5 x (, W4 x)."""
        m, out = self.memory_size, self.output_size
        return [m * (1 + self.input_gate), out, out][: 2 + self.output_gate]

    def gates(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The gate values for x [..., input_size]: "input" sigmoid(W2 x) [..., m] and "output"
        sigmoid(W4 x) [..., output_size] (the share of LN(z) in y), each only if that gate is on."""
        gated_input, _, *out_gate = self.pre(x).split(self._projection_sizes, -1)
        gates = {"input": torch.sigmoid(gated_input[..., self.memory_size :])} if self.input_gate else {}
        return gates | ({"output": torch.sigmoid(out_gate[0])} if self.output_gate else {})

    def _state_dtype(self, x: torch.Tensor) -> torch.dtype:
        """The state's dtype for inputs x: their complex counterpart for a complex aggregator (FFA)."""
        return torch.promote_types(x.dtype, torch.complex64) if self.complex_state else x.dtype


def _check(tensor: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype, name: str) -> None:
    if not torch.is_tensor(tensor) or tensor.shape != shape or tensor.dtype != dtype:
        got = f"{list(tensor.shape)} {tensor.dtype}" if torch.is_tensor(tensor) else type(tensor).__name__
        raise ValueError(f"expected {name} of shape {list(shape)} and dtype {dtype}, got {got}")


class DropInFFM(nn.Module):
    """FFM behind the torch.nn.GRU contract, so code written for a GRU works unchanged.

    ``DropInFFM(input_size, hidden_size, batch_first=False)`` takes input [T, B, F] ([B, T, F] with
    batch_first, or unbatched [T, F]) and an optional h0 [1, B, state_size] ([1, state_size] unbatched),
    and returns (output [.., output_size], h_n [1, B, state_size]); output_size defaults to hidden_size,
    the output width of nn.GRU. h_n is a real float tensor holding the
    real and imaginary parts of FFM's complex state (state_size = 2 * memory_size * context_size), so
    replay buffers, masking and ``h * (1 - done)`` work as for a GRU's hidden state. Unlike a GRU's, h_n is
    not the last output. ``forward`` also takes optional bool ``resets`` shaped like the input without
    its feature dimension, True where an episode starts.

    GRU arguments FFM has no equivalent for must keep their defaults (num_layers=1, bias=True,
    dropout=0, bidirectional=False). The authors' keywords work as in their README:
    ``DropInFFM(input_size=16, hidden_size=32, context_size=4, output_size=3, batch_first=False)``.
    Defaults for the memory follow the paper's drop-in experiments (memory_size=32, context_size=4);
    FFM's other keyword arguments (``max_period``, ``fastest_decay``, the ablation flags) pass through,
    anything else is an error naming the valid ones.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        memory_size: int = 32,
        context_size: int = 4,
        output_size: int | None = None,
        **ffm_kwargs,
    ) -> None:
        super().__init__()
        unsupported = {"num_layers": (num_layers, 1), "bias": (bias, True), "dropout": (dropout, 0.0)}
        unsupported["bidirectional"] = (bidirectional, False)
        for name, (value, default) in unsupported.items():
            if value != default:
                raise ValueError(f"DropInFFM supports only {name}={default!r}, got {value!r}")
        if "aggregator" in ffm_kwargs:
            raise ValueError("DropInFFM packs FFA's complex state into h_n; use FFM for other aggregators")
        unknown = sorted(set(ffm_kwargs) - set(_FFM_PASS_THROUGH))
        if unknown:
            valid = [*inspect.signature(DropInFFM).parameters][:-1] + list(_FFM_PASS_THROUGH)
            raise TypeError(f"DropInFFM got unknown keyword arguments {unknown}; valid: {', '.join(valid)}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.output_size = hidden_size if output_size is None else output_size
        self.batch_first = batch_first
        self.ffm = FFM(
            input_size,
            memory_size,
            context_size,
            self.output_size,
            memory_size=memory_size,
            **ffm_kwargs,
        )
        self.state_size = 2 * memory_size * context_size

    def forward(
        self,
        input: torch.Tensor,
        h0: torch.Tensor | None = None,
        resets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(input, nn.utils.rnn.PackedSequence):
            raise TypeError("DropInFFM takes padded tensors, not PackedSequence; pass resets to pack episodes")
        if input.dim() not in (2, 3) or input.shape[-1] != self.input_size:
            layout = "[B, T, F]" if self.batch_first else "[T, B, F]"
            raise ValueError(f"expected input {layout} or [T, F] with F = {self.input_size}, got {list(input.shape)}")
        unbatched = input.dim() == 2
        x = input[None] if unbatched else (input if self.batch_first else input.transpose(0, 1))
        batch = x.shape[0]
        if resets is not None and not unbatched and not self.batch_first:
            resets = resets.transpose(0, 1)
        if resets is not None and unbatched:
            resets = resets[None]
        state = None
        if h0 is not None:
            expected = [1, self.state_size] if unbatched else [1, batch, self.state_size]
            if list(h0.shape) != expected or not h0.dtype.is_floating_point:
                raise ValueError(f"expected h0 of shape {expected} (real floats), got {list(h0.shape)} {h0.dtype}")
            real = self.ffm.pre.weight.dtype
            state = torch.view_as_complex(h0.reshape(batch, *self.ffm.state_shape, 2).to(real).contiguous())
        output, state = self.ffm(x, state, resets)
        h_n = torch.view_as_real(state).reshape(1, batch, self.state_size)
        if unbatched:
            return output[0], h_n[:, 0]
        return (output if self.batch_first else output.transpose(0, 1)), h_n


_FFM_PASS_THROUGH = tuple(
    name
    for name in inspect.signature(FFM).parameters
    if name not in ("input_size", "hidden_size", "context_size", "output_size", "memory_size", "aggregator")
)
