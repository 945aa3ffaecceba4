"""RLlib RLModules of FFM, its ablations and POPGym's memory baselines, by registry name.

``get_model(name)`` returns the RLModule class registered as ``name`` (the names are the interface of
ppo.py and benchmark.py); ``MODELS`` maps every name to its class.
"""

from models.attention import FastWeightProgrammerCore, LinearAttentionCore
from models.base import MemoryModule
from models.dnc import DiffNCCore
from models.ffm import FFMCore
from models.mlp import BasicMLPCore, PositionalMLPCore
from models.rnn import ElmanCore, GRUCore, IndRNNCore, LSTMCore
from models.ssm import LMUCore, S4DCore
from models.window import FrameconvCore, FramestackCore


class RayFFM(MemoryModule):
    """Fast and Forgetful Memory (Morad et al., 2023): m=32 traces, c=4 frequencies, output 256."""

    core_class = FFMCore


class RayFFMNoOscillate(RayFFM):
    """FFM ablation: no oscillation (w fixed at 0, real traces)."""

    core_defaults = {"oscillate": False}


class RayFFMNoLearnOscillate(RayFFM):
    """FFM ablation: oscillation frequencies w frozen at their initial values."""

    core_defaults = {"learn_oscillate": False}


class RayFFMNoDecay(RayFFM):
    """FFM ablation: no decay (a fixed at 0, nothing is forgotten)."""

    core_defaults = {"decay": False}


class RayFFMNoLearnDecay(RayFFM):
    """FFM ablation: decay rates a frozen at their initial values."""

    core_defaults = {"learn_decay": False}


class RayFFMNoInGate(RayFFM):
    """FFM ablation: no input gate (u = W1 x)."""

    core_defaults = {"input_gate": False}


class RayFFMNoOutGate(RayFFM):
    """FFM ablation: no output gate (y = LN(z) + W5 x)."""

    core_defaults = {"output_gate": False}


class BasicMLP(MemoryModule):
    """No memory: an MLP on the current observation only."""

    core_class = BasicMLPCore


class MLP(MemoryModule):
    """MLP with a positional encoding of the episode step."""

    core_class = PositionalMLPCore


class Framestack(MemoryModule):
    """MLP over a window of the latest observations."""

    core_class = FramestackCore


class Frameconv(MemoryModule):
    """Temporal convolutional network over a window of the latest observations."""

    core_class = FrameconvCore


class Elman(MemoryModule):
    """Elman RNN."""

    core_class = ElmanCore


class LSTM(MemoryModule):
    """Long short-term memory."""

    core_class = LSTMCore


class GRU(MemoryModule):
    """Gated recurrent unit."""

    core_class = GRUCore


class IndRNN(MemoryModule):
    """Independently recurrent neural network."""

    core_class = IndRNNCore


class LinearAttention(MemoryModule):
    """Linear transformer (FART in POPGym)."""

    core_class = LinearAttentionCore


class FastWeightProgrammer(MemoryModule):
    """Fast weight programmer (FWP)."""

    core_class = FastWeightProgrammerCore


class LMU(MemoryModule):
    """Legendre memory unit."""

    core_class = LMUCore


class S4D(MemoryModule):
    """Diagonal structured state space model."""

    core_class = S4DCore


class DiffNC(MemoryModule):
    """Differentiable neural computer (DNC)."""

    core_class = DiffNCCore


FFM_MODELS = (
    RayFFM,
    RayFFMNoOscillate,
    RayFFMNoLearnOscillate,
    RayFFMNoDecay,
    RayFFMNoLearnDecay,
    RayFFMNoInGate,
    RayFFMNoOutGate,
)
BASELINES = (
    BasicMLP,
    MLP,
    Framestack,
    Frameconv,
    Elman,
    LSTM,
    GRU,
    IndRNN,
    LinearAttention,
    FastWeightProgrammer,
    LMU,
    S4D,
    DiffNC,
)
MODELS: dict[str, type[MemoryModule]] = {model.__name__: model for model in FFM_MODELS + BASELINES}


def get_model(name: str) -> type[MemoryModule]:
    """The RLModule class registered as ``name``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[name]
