"""FFM as a memory core (the standalone ffm.FFM, with the paper's POPGym sizes) and its aggregator switch."""

import inspect
import math

import torch

from aggregations import make_aggregation
from ffm import FFA, FFM
from ffm.aggregator import FASTEST_DECAY
from models.core import MemoryCore, State


class FFMCore(MemoryCore):
    """ffm.FFM with m = memory_size traces read at c = context_size frequencies (paper, POPGym: m=32, c=4).

    ``aggregation`` picks FFM's aggregator from aggregations.py: "ffa" (the paper's), "sum" or "max";
    the FFA flags (``oscillate``, ``learn_oscillate``, ``decay``, ``learn_decay``) apply to "ffa" only,
    the gate flags (``input_gate``, ``output_gate``) to all, and so do the initialisation and the floor
    of the decay rates (``min_period``, ``max_period``, ``fastest_decay``: the authors' values, see
    ffm.FFA). State: the aggregator's state, "S".
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        memory_size: int = 32,
        context_size: int = 4,
        min_period: float = 1,
        max_period: float = 1024,
        fastest_decay: float = FASTEST_DECAY,
        aggregation: str = "ffa",
        oscillate: bool = True,
        learn_oscillate: bool = True,
        decay: bool = True,
        learn_decay: bool = True,
        input_gate: bool = True,
        output_gate: bool = True,
    ) -> None:
        super().__init__(input_size, output_size)
        ffa_options = dict(
            min_period=min_period,
            max_period=max_period,
            fastest_decay=fastest_decay,
            oscillate=oscillate,
            learn_oscillate=learn_oscillate,
            decay=decay,
            learn_decay=learn_decay,
        )
        if aggregation != "ffa":
            defaults = inspect.signature(FFA).parameters
            changed = sorted(name for name, value in ffa_options.items() if value != defaults[name].default)
            if changed:
                raise ValueError(f"{changed} are FFA options, but aggregation={aggregation!r}")
            ffa_options = {}
        self.ffm = FFM(
            input_size,
            memory_size,
            context_size,
            output_size,
            input_gate=input_gate,
            output_gate=output_gate,
            aggregator=make_aggregation(aggregation, memory_size, context_size, **ffa_options),
        )

    def initial_state(self) -> State:
        return {"S": self.ffm.initial_state(1, self.ffm.mix.weight.device)[0]}

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        y, final = self.ffm(x, state["S"])
        return y, {"S": final}


def ffm_internals(ffm: FFM, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """What FFM has learnt and how it uses it on inputs x [B, T, input_size] (for logging).

    - decay_time: steps until each trace falls to 1%, ln(0.01) / a with a as used (clamped), [m];
    - period: steps per turn of each oscillation, 2 pi / |w| (inf where w = 0), [c];
    - input_gate, output_gate: the gate values over x (flattened), where the gate exists;
    - state_magnitude: |S_t| over every step, trace and frequency (flattened).
    FFA parameters are reported only when the aggregator is an FFA.
    """
    internals = {}
    if isinstance(ffm.aggregator, FFA):
        internals["decay_time"] = math.log(0.01) / ffm.aggregator.decay_rates().detach()
        internals["period"] = 2 * torch.pi / ffm.aggregator.w.detach().abs()
    states = []
    hook = ffm.aggregator.register_forward_hook(lambda module, inputs, output: states.append(output.detach()))
    try:
        with torch.no_grad():
            gates = ffm.gates(x)
            ffm(x)
    finally:
        hook.remove()
    internals |= {f"{name}_gate": value.flatten() for name, value in gates.items()}
    internals["state_magnitude"] = states[0].abs().flatten()
    return internals
