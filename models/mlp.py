"""Memory-free baselines from POPGym (Morad et al., ICLR 2023): "BasicMLP" and "MLP".

POPGym's core for both is the same two-layer perceptron ``input -> hidden -> hidden`` with LeakyReLU after each
layer (popgym/baselines/ray_models/ray_mlp.py, default torch init). "MLP" differs from "BasicMLP" only in its
``"embedding": "sine"`` config: before the memory core POPGym mixes a fixed sinusoidal encoding of the episode step
into the features (popgym/baselines/ray_models/base_model.py ``apply_embedding``, ``embedding_mode="add"``,
``scale_embedding=True``), so the otherwise memory-less policy knows how far into the episode it is.
"""

import torch
from torch import nn

from models.core import MemoryCore, State
from models.positional import SinePositionalEncoding


def two_layer_mlp(input_size: int, hidden_size: int) -> nn.Sequential:
    """POPGym's MLP block: ``LeakyReLU(W2 LeakyReLU(W1 x + b1) + b2)``."""
    return nn.Sequential(
        nn.Linear(input_size, hidden_size),
        nn.LeakyReLU(),
        nn.Linear(hidden_size, hidden_size),
        nn.LeakyReLU(),
    )


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
