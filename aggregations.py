"""Aggregators: the recurrent core of FFM and the simple alternatives the paper compares it with.

An aggregation folds inputs into a state, s_n = s_{n-1} (+) x_n, and must compute the whole sequence
(x_{k..n}, s_{k-1}) -> s_{k..n} at once. Every class here has the same interface as ffm.FFA, so any of
them can replace FFA inside ffm.FFM: ``FFM(..., aggregator=make_aggregation("sum", m, c))``.

- ``forward(x [B, T, m], state [B, *state_shape], resets [B, T] | None) -> states [B, T, *state_shape]``,
  resets (True where an episode starts) restarting from the initial state before x_t is added;
- ``step(x [B, m], state) -> state``: the single-step form;
- ``initial_state(batch_size, device)``.
"""

from abc import ABC, abstractmethod

import torch
from torch import nn

from ffm import FFA


class Aggregation(nn.Module, ABC):
    """(x_{k..n}, s_{k-1}) -> s_{k..n} over the time dimension of x [B, T, m]."""

    @abstractmethod
    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """s_{-1}: the state before an episode's first input."""

    @abstractmethod
    def forward(self, x: torch.Tensor, state: torch.Tensor, resets: torch.Tensor | None = None) -> torch.Tensor:
        """States s_k..s_n [B, T, *state_shape] from x [B, T, m] and s_{k-1} [B, *state_shape]."""

    def step(self, x: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """s_n from x_n [B, m] and s_{n-1}."""
        return self(x[:, None], state)[:, 0]


class FFAAggregation(FFA, Aggregation):
    """FFM's aggregator, ffm.FFA: s_n = gamma * s_{n-1} + x_n 1_c^T, complex [m, c] (see ffm.FFA)."""


class SumAggregation(Aggregation):
    """s_n = s_{n-1} + x_n: the unweighted sum of linear attention / fast-weight models, real [m]."""

    def __init__(self, memory_size: int) -> None:
        super().__init__()
        self.memory_size = memory_size

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.zeros(batch_size, self.memory_size, device=device)

    def forward(self, x: torch.Tensor, state: torch.Tensor, resets: torch.Tensor | None = None) -> torch.Tensor:
        """Cumulative sum; at a reset, the sum of everything before it is subtracted again."""
        totals = x.cumsum(1) + state[:, None]
        if resets is None:
            return totals
        before = totals - x
        last_reset = _last_reset_index(resets)
        offset = before.gather(1, last_reset.clamp(min=0)[..., None].expand_as(x))
        return totals - offset * (last_reset >= 0)[..., None]

    def extra_repr(self) -> str:
        return f"memory_size={self.memory_size}"


class MaxAggregation(Aggregation):
    """s_n = max(s_{n-1}, x_n), elementwise, real [m]; the initial state is -inf (max's identity)."""

    def __init__(self, memory_size: int) -> None:
        super().__init__()
        self.memory_size = memory_size

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        return torch.full((batch_size, self.memory_size), -torch.inf, device=device)

    def forward(self, x: torch.Tensor, state: torch.Tensor, resets: torch.Tensor | None = None) -> torch.Tensor:
        """Cumulative max; with resets, step by step (max has no inverse to undo a segment with)."""
        if resets is None:
            return torch.maximum(x, state[:, None]).cummax(1).values
        states = []
        for t in range(x.shape[1]):
            state = torch.where(resets[:, t, None], x[:, t], torch.maximum(state, x[:, t]))
            states.append(state)
        return torch.stack(states, 1)

    def extra_repr(self) -> str:
        return f"memory_size={self.memory_size}"


def _last_reset_index(resets: torch.Tensor) -> torch.Tensor:
    """For every t, the index of the latest reset at or before t, -1 if none: [B, T] int64."""
    steps = torch.arange(resets.shape[1], device=resets.device).expand_as(resets)
    return torch.where(resets, steps, -1).cummax(1).values


AGGREGATIONS = {"ffa": FFAAggregation, "sum": SumAggregation, "max": MaxAggregation}


def make_aggregation(name: str, memory_size: int, context_size: int, **ffa_kwargs) -> Aggregation:
    """The aggregation called ``name`` for m = memory_size (context_size and ffa_kwargs are FFA's)."""
    if name not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {name!r}; expected one of {sorted(AGGREGATIONS)}")
    if name == "ffa":
        return FFAAggregation(memory_size, context_size, **ffa_kwargs)
    if ffa_kwargs:
        raise ValueError(f"aggregation {name!r} takes no FFA options, got {sorted(ffa_kwargs)}")
    return AGGREGATIONS[name](memory_size)
