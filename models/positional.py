"""POPGym's "sine" embedding of the episode step, mixed into a model's input features."""

import math

import torch
from torch import nn


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
