"""Memory-free baselines from POPGym (Morad et al., ICLR 2023): "BasicMLP" and "MLP".

POPGym's core for both is the same two-layer perceptron ``input -> hidden -> hidden`` with LeakyReLU after each
layer (popgym/baselines/ray_models/ray_mlp.py, default torch init). "MLP" differs from "BasicMLP" only in its
``"embedding": "sine"`` config: before the memory core POPGym mixes a fixed sinusoidal encoding of the episode step
into the features (popgym/baselines/ray_models/base_model.py ``apply_embedding``, ``embedding_mode="add"``,
``scale_embedding=True``), so the otherwise memory-less policy knows how far into the episode it is.
"""

import math

import torch
from torch import nn

from models.core import MemoryCore, State


def two_layer_mlp(input_size: int, hidden_size: int) -> nn.Sequential:
    """POPGym's MLP block: ``LeakyReLU(W2 LeakyReLU(W1 x + b1) + b2)``."""
    return nn.Sequential(
        nn.Linear(input_size, hidden_size),
        nn.LeakyReLU(),
        nn.Linear(hidden_size, hidden_size),
        nn.LeakyReLU(),
    )


class SinePositionalEncoding(nn.Module):
    """POPGym's scaled sinusoidal step encoding, mixed into the features.

    ``pe(t)[2i] = sin(t / L^(2i/d))``, ``pe(t)[2i+1] = cos(t / L^(2i/d))`` with ``L = max_len`` (POPGym replaced
    the transformer's base 10000 by the maximum sequence length, 1024 in its PPO runs), and
    ``x' = (1 - s) x + s pe(t)`` with a learned strength ``s`` initialised to 0.5 and clamped to [0, 1].

    POPGym looks ``pe`` up in a table of ``max_len`` rows; here it is computed on the fly, so episodes longer than
    ``max_len`` keep a well-defined encoding. POPGym clamps ``s`` in place on every forward; here the clamp is
    applied functionally (same values while ``s`` stays in [0, 1], no parameter mutation inside ``forward``).
    """

    def __init__(self, size: int, max_len: int = 1024) -> None:
        super().__init__()
        self.size = size
        self.max_len = max_len
        # 1 / L^(2i/d) for i = 0 .. ceil(d/2) - 1
        self.register_buffer(
            "inv_freq", torch.exp(torch.arange(0, size, 2).float() * (-math.log(max_len) / size)), persistent=False
        )
        self.strength = nn.Parameter(torch.tensor(0.5))

    def encoding(self, t: torch.Tensor) -> torch.Tensor:
        """``pe(t)`` [..., size] for integer steps ``t`` [...]."""
        angle = t.float().unsqueeze(-1) * self.inv_freq
        # interleave: even features sin, odd features cos
        return torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(-2)[..., : self.size]

    def forward(self, x: torch.Tensor, t0: torch.Tensor) -> torch.Tensor:
        """Mix ``pe(t0 + j)`` into ``x`` [B, T, size] at each of its steps j; ``t0`` [B] is the first step."""
        t = t0.unsqueeze(1) + torch.arange(x.shape[1], device=x.device, dtype=t0.dtype)
        s = self.strength.clamp(0.0, 1.0)
        return (1.0 - s) * x + s * self.encoding(t)

    def extra_repr(self) -> str:
        return f"size={self.size}, max_len={self.max_len}"


class BasicMLPCore(MemoryCore):
    """POPGym "BasicMLP": no memory at all, ``y_t = LeakyReLU(W2 LeakyReLU(W1 x_t + b1) + b2)``.

    Hidden width = output_size (POPGym: ``hidden_size`` = 256). Stateless: ``initial_state() == {}``.
    """

    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__(input_size, output_size)
        self.mlp = two_layer_mlp(input_size, output_size)

    def initial_state(self) -> State:
        return {}

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return self.mlp(x), {}


class PositionalMLPCore(MemoryCore):
    """POPGym "MLP": the BasicMLP applied to features mixed with a sinusoidal encoding of the episode step.

    ``x'_t = (1 - s) x_t + s pe(t)`` (see :class:`SinePositionalEncoding`), ``y_t = MLP(x'_t)``; no other memory.
    State: ``{"t": int32 [1]}``, the number of steps already seen in the episode (0 at the start).
    """

    def __init__(self, input_size: int, output_size: int, *, max_len: int = 1024) -> None:
        super().__init__(input_size, output_size)
        self.position = SinePositionalEncoding(input_size, max_len)
        self.mlp = two_layer_mlp(input_size, output_size)

    def initial_state(self) -> State:
        return {"t": torch.zeros(1, dtype=torch.int32, device=self.position.inv_freq.device)}

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        t0 = state["t"][:, 0]
        y = self.mlp(self.position(x, t0))
        return y, {"t": state["t"] + x.shape[1]}
