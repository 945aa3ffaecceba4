"""Fast and Forgetful Memory (Morad et al., NeurIPS 2023) and its torch.nn.GRU-compatible wrapper."""

import torch
from torch import nn

from ffm.aggregator import FFA


class FFM(nn.Module):
    """Fast and Forgetful Memory.

    Per step, for x_t in R^input_size (paper, Section 4):

        u_t = W1 x_t * sigmoid(W2 x_t)                                    input gate, u_t in R^m
        S_t = gamma * S_{t-1} + u_t 1_c^T                                 FFA (see FFA), S_t in C^{m x c}
        z_t = W3 [Re S_t, Im S_t]                                         mix, 2mc -> output_size
        y_t = LN(z_t) * sigmoid(W4 x_t) + W5 x_t * (1 - sigmoid(W4 x_t))  output gate, LN without affine

    W1, W2, W4 and W5 are one Linear (``pre``), W3 is ``mix``. ``input_gate=False`` uses u_t = W1 x_t,
    ``output_gate=False`` uses y_t = LN(z_t) + W5 x_t; the other ablation flags are FFA's.

    Args:
        input_size: features of x_t.
        hidden_size: width of the gated input u_t, one decay trace per unit: the paper's m, unless
            ``memory_size`` sets m (the authors' signature has both; ``memory_size`` defaults to it).
        context_size: c, the oscillation frequencies each trace is read at.
        output_size: features of y_t.
        memory_size: m; defaults to ``hidden_size``.
        min_period, max_period: range of the initial decay and oscillation periods, in steps.

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
        oscillate: bool = True,
        learn_oscillate: bool = True,
        decay: bool = True,
        learn_decay: bool = True,
        input_gate: bool = True,
        output_gate: bool = True,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.output_size = output_size
        self.memory_size = hidden_size if memory_size is None else memory_size
        self.context_size = context_size
        self.input_gate = input_gate
        self.output_gate = output_gate
        self._split = [self.memory_size] * (1 + input_gate) + [output_size] * (1 + output_gate)
        self.pre = nn.Linear(input_size, sum(self._split))
        self.ffa = FFA(
            self.memory_size,
            context_size,
            min_period=min_period,
            max_period=max_period,
            oscillate=oscillate,
            learn_oscillate=learn_oscillate,
            decay=decay,
            learn_decay=learn_decay,
        )
        self.mix = nn.Linear(2 * self.memory_size * context_size, output_size)
        self.norm = nn.LayerNorm(output_size, elementwise_affine=False)

    @property
    def state_shape(self) -> tuple[int, int]:
        return (self.memory_size, self.context_size)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Zero state [batch_size, m, c], complex64 (complex128 for a float64 module)."""
        return self.ffa.initial_state(batch_size, device)

    def forward(
        self,
        x: torch.Tensor,
        state: torch.Tensor | None = None,
        resets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        unbatched = x.dim() == 2
        if x.dim() not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"expected x of shape [B, T, {self.input_size}] or [T, {self.input_size}], got {list(x.shape)}"
            )
        dtype = self.pre.weight.dtype.to_complex()
        if unbatched:
            x = x[None]
            state = None if state is None else _check_state(state, self.state_shape, dtype)[None]
            resets = None if resets is None else _check_resets(resets, x.shape[1:2], "[T]")[None]
        batch, steps = x.shape[:2]
        if state is None:
            state = self.initial_state(batch, x.device)
        state = _check_state(state, (batch, *self.state_shape), dtype)
        if resets is not None:
            resets = _check_resets(resets, (batch, steps), "[B, T]")
        y, state = self._forward(x, state, resets)
        return (y[0], state[0]) if unbatched else (y, state)

    def _forward(
        self, x: torch.Tensor, state: torch.Tensor, resets: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        parts = list(self.pre(x).split(self._split, dim=-1))
        u = parts.pop(0)
        if self.input_gate:
            u = u * torch.sigmoid(parts.pop(0))
        skip = parts.pop(0)
        states = self.ffa(u, state, resets)
        z = self.norm(self.mix(torch.view_as_real(states).flatten(-3)))
        if self.output_gate:
            gate = torch.sigmoid(parts.pop(0))
            y = z * gate + skip * (1 - gate)
        else:
            y = z + skip
        return y, states[:, -1].clone()


def _check_state(state: torch.Tensor, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    if not torch.is_tensor(state) or tuple(state.shape) != tuple(shape) or state.dtype != dtype:
        got = f"{list(state.shape)} {state.dtype}" if torch.is_tensor(state) else type(state).__name__
        raise ValueError(f"expected state of shape {list(shape)} and dtype {dtype}, got {got}")
    return state


def _check_resets(resets: torch.Tensor, shape: tuple[int, ...], names: str) -> torch.Tensor:
    if not torch.is_tensor(resets) or tuple(resets.shape) != tuple(shape) or resets.dtype != torch.bool:
        got = f"{list(resets.shape)} {resets.dtype}" if torch.is_tensor(resets) else type(resets).__name__
        raise ValueError(f"expected resets {names} = {list(shape)} of dtype torch.bool, got {got}")
    return resets


class DropInFFM(nn.Module):
    """FFM behind the torch.nn.GRU contract, so code written for a GRU works unchanged.

    ``DropInFFM(input_size, hidden_size, batch_first=False)`` takes input [T, B, F] ([B, T, F] with
    batch_first, or unbatched [T, F]) and an optional h0 [1, B, state_size] ([1, state_size] unbatched),
    and returns (output [.., hidden_size], h_n [1, B, state_size]). h_n is a real float tensor holding the
    real and imaginary parts of FFM's complex state (state_size = 2 * memory_size * context_size), so
    replay buffers, masking and ``h * (1 - done)`` work as for a GRU's hidden state. Unlike a GRU's, h_n is
    not the last output. ``forward`` also takes optional bool ``resets`` shaped like the input without
    its feature dimension, True where an episode starts.

    GRU arguments FFM has no equivalent for must keep their defaults (num_layers=1, bias=True,
    dropout=0, bidirectional=False). Defaults for the memory follow the paper's drop-in experiments
    (memory_size=32, context_size=4); other keyword arguments go to FFM.
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
        **ffm_kwargs,
    ) -> None:
        super().__init__()
        unsupported = {"num_layers": (num_layers, 1), "bias": (bias, True), "dropout": (dropout, 0.0)}
        unsupported["bidirectional"] = (bidirectional, False)
        for name, (value, default) in unsupported.items():
            if value != default:
                raise ValueError(f"DropInFFM supports only {name}={default!r}, got {value!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.batch_first = batch_first
        self.ffm = FFM(
            input_size,
            memory_size,
            context_size,
            hidden_size,
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
            raise ValueError(
                f"expected input {layout} or [T, F] with F = {self.input_size}, got {list(input.shape)}"
            )
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
