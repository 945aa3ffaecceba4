"""Fixed-window baselines from POPGym (Morad et al., ICLR 2023): "Framestack" and "Frameconv".

Both see only the last ``k`` inputs, ``k = stack_size = 4`` as POPGym's default
(popgym/baselines/ray_models/ray_framestack.py, ray_frameconv.py). The state is the previous ``k - 1`` inputs,
zero at the episode start, so the window is ``w_t = [x_{t-k+1}, ..., x_t]`` with ``x_{<0} = 0``. Training runs
all windows at once over ``[state ++ x]`` (``unfold`` / ``conv1d``), never a loop over time.

Both POPGym models also set ``"embedding": "sine"``: the base model (models.network) mixes the sinusoidal step
encoding into the features before the preprocessor, so the stored frames are preprocessed, embedded ones.
"""

import torch
from torch import nn
from torch.nn import functional as F

from models.core import MemoryCore, State
from models.mlp import two_layer_mlp


class _WindowCore(MemoryCore):
    """Shared window bookkeeping: the ``k - 1`` previous inputs as state."""

    def __init__(self, input_size: int, output_size: int, stack_size: int) -> None:
        super().__init__(input_size, output_size)
        self.stack_size = stack_size

    def initial_state(self) -> State:
        device = next(self.parameters()).device
        return {"frames": torch.zeros(self.stack_size - 1, self.input_size, device=device)}

    def _padded(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """``[state ++ x]`` [B, k - 1 + T, input_size] and the state after x (its last k - 1 frames)."""
        padded = torch.cat([state["frames"], x], dim=1)
        return padded, {"frames": padded[:, x.shape[1] :]}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, stack_size={self.stack_size}"


class FramestackCore(_WindowCore):
    """POPGym "Framestack" (frame stacking as in Mnih et al., Nature 2015), POPGym's layout:

    ``c_i = C x_i + b_C`` compresses each frame to ``output_size / k`` features (POPGym: so the stacked input is no
    larger than other models' hidden state), ``h_t = [c_{t-k+1}, ..., c_t]`` (oldest first, ``output_size``
    features) and ``y_t = LeakyReLU(W2 LeakyReLU(W1 h_t + b1) + b2)``, hidden width ``output_size`` (POPGym: 256).
    State: ``frames`` [k - 1, input_size] float32 (the uncompressed inputs, as POPGym).
    """

    def __init__(self, input_size: int, output_size: int, *, stack_size: int = 4) -> None:
        if output_size % stack_size:
            raise ValueError(f"output_size {output_size} must be divisible by stack_size {stack_size}")
        super().__init__(input_size, output_size, stack_size)
        self.compress = nn.Linear(input_size, output_size // stack_size)
        self.mlp = two_layer_mlp(output_size, output_size)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        B, T, _ = x.shape
        padded, state = self._padded(x, state)
        # compress each frame once, then gather the T windows: [B, T, c, k] -> [B, T, k, c] -> [B, T, k * c]
        windows = self.compress(padded).unfold(1, self.stack_size, 1)
        stacked = windows.transpose(2, 3).reshape(B, T, self.output_size)
        return self.mlp(stacked), state


class FrameconvCore(_WindowCore):
    """POPGym "Frameconv" (temporal convolution, after Bai et al. 2018), POPGym's layout: a single causal
    ``Conv1d(input_size, output_size, kernel_size=k)`` over the window and nothing else (no activation):

    ``y_t = b + sum_{j=0}^{k-1} W_j x_{t-k+1+j}``.

    State: ``frames`` [k - 1, input_size] float32.
    """

    def __init__(self, input_size: int, output_size: int, *, stack_size: int = 4) -> None:
        super().__init__(input_size, output_size, stack_size)
        self.conv = nn.Conv1d(input_size, output_size, kernel_size=stack_size)

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        padded, state = self._padded(x, state)  # [B, k - 1 + T, input_size]
        if x.shape[1] == 1:
            # one environment step, one window: the same sum as a single matmul, much cheaper than a conv call
            y = F.linear(padded.transpose(1, 2).flatten(1), self.conv.weight.flatten(1), self.conv.bias).unsqueeze(1)
        else:
            y = self.conv(padded.transpose(1, 2)).transpose(1, 2)
        return y, state
