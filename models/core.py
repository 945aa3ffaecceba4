"""The memory-core interface every registered model implements."""

from abc import ABC, abstractmethod

import torch
from torch import nn

State = dict[str, torch.Tensor]


class MemoryCore(nn.Module, ABC):
    """A sequence model (x [B, T, input_size], state) -> (y [B, T, output_size], state).

    ``state`` is a dict of tensors with a leading batch dimension; ``initial_state()`` gives one
    unbatched copy of it (what RLlib stores per episode). State dtypes must survive RLlib's batching:
    float32, complex64, int32 or bool (RLlib narrows int64 and float64 silently). A core with no state
    returns ``{}`` and is called with an empty dict.

    Running a sequence in two chunks with the state carried must equal one pass over it, and the
    output at step t may depend only on steps <= t (RLlib pads sequences at the end).
    """

    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.output_size = output_size

    @abstractmethod
    def initial_state(self) -> State:
        """The state at the start of an episode, without batch dimension."""

    def batched_initial_state(self, batch_size: int) -> State:
        """initial_state() for a batch of batch_size episodes: tensors [batch_size, ...]."""
        return batched(self.initial_state(), batch_size)

    @abstractmethod
    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Outputs for every step of x [B, T, input_size] and the state after the last step."""

    def extra_repr(self) -> str:
        return f"input_size={self.input_size}, output_size={self.output_size}"


def batched(state: State, batch_size: int) -> State:
    """One episode's state (no batch dimension) repeated for batch_size episodes: tensors [batch_size, ...]."""
    return {key: value.expand(batch_size, *value.shape).clone() for key, value in state.items()}
