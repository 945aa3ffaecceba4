"""The agents' memory, chosen by name behind torch.nn.GRU's contract: ``gru`` (torch.nn.GRU) or ``ffm`` (DropInFFM).

Both are time-major: ``forward(x [T, B, input_size], h0 [1, B, S] or None) -> (y [T, B, hidden_size],
h_n [1, B, S])``, h0 None meaning a zero state. S is hidden_size for the GRU and 2 m c for FFM.
"""

from torch import nn

from ffm import DropInFFM

MEMORIES = ("gru", "ffm")


def make_memory(
    name: str,
    input_size: int,
    hidden_size: int,
    ffm_memory_size: int = 32,
    ffm_context_size: int = 4,
    ffm_max_period: float = 128,
) -> nn.Module:
    """The memory ``name``; the GRU gets orthogonal weights and zero biases, FFM keeps its own initialisation.

    FFM as the authors hooked it into pomdp-baselines: DropInFFM with output width hidden_size (128, its
    default), m = 32, c = 4, max_period 128, and FFA's defaults for the decay rates (their effective values).
    """
    if name == "gru":
        gru = nn.GRU(input_size, hidden_size)
        for parameter_name, parameter in gru.named_parameters():
            if parameter_name.startswith("weight"):
                nn.init.orthogonal_(parameter)
            else:
                nn.init.zeros_(parameter)
        return gru
    if name == "ffm":
        return DropInFFM(
            input_size,
            hidden_size,
            memory_size=ffm_memory_size,
            context_size=ffm_context_size,
            max_period=ffm_max_period,
        )
    raise ValueError(f"expected a memory out of {', '.join(MEMORIES)}; got {name!r}")
