"""The memory-free core of POPGym's "BasicMLP" and "MLP" (Morad et al., ICLR 2023).

POPGym's core for both is the same two-layer perceptron ``input -> hidden -> hidden`` with LeakyReLU after each
layer (popgym/baselines/ray_models/ray_mlp.py, default torch init). "MLP" differs from "BasicMLP" only in its
``"embedding": "sine"`` config, which the base model applies before the preprocessor (models.network), so the
otherwise memory-less policy knows how far into the episode it is.
"""

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


class BasicMLPCore(MemoryCore):
    """POPGym's "BasicMLP" and "MLP" core: no memory at all, ``y_t = LeakyReLU(W2 LeakyReLU(W1 x_t + b1) + b2)``.

    Hidden width = output_size (POPGym: ``hidden_size`` = 256). Stateless: ``initial_state() == {}``.
    """

    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__(input_size, output_size)
        self.mlp = two_layer_mlp(input_size, output_size)

    def initial_state(self) -> State:
        return {}

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        return self.mlp(x), {}
