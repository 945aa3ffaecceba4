"""FFM, its ablations and POPGym's memory baselines by registry name, in plain torch.

``MODELS`` maps each name (the interface of ppo.py and benchmark.py) to a ``ModelSpec``: the memory
core, the core's defaults and whether POPGym mixes its sine step embedding into the inputs. They are the
paper's 20 (``PAPER_MODELS``: FFM, its six ablations, POPGym's 13 baselines) and the model of the authors'
discussion (``DISCUSSION_MODELS``) and a later POPGym's LinearAttention (``VARIANT_MODELS``);
``parse_names`` reads comma lists of names (models here, envs in ppo.py).
``models.network.MemoryNetwork`` builds any of them as POPGym's architecture (torch only);
``models.rllib.MemoryModule`` wraps that network as an RLlib RLModule. Nothing here imports ray.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from models.attention import FastWeightProgrammerCore, LinearAttentionCore
from models.core import MemoryCore
from models.dnc import DiffNCCore
from models.ffm import FFMCore
from models.mlp import BasicMLPCore
from models.rnn import ElmanCore, GRUCore, IndRNNCore, LSTMCore
from models.ssm import LMUCore, S4DCore
from models.window import FrameconvCore, FramestackCore


@dataclass(frozen=True)
class ModelSpec:
    """A registered memory model: its core class, the core's defaults, and whether POPGym's base model
    mixes the sine embedding of the episode step into its features (POPGym's ``"embedding": "sine"``)."""

    name: str
    description: str
    core: type[MemoryCore]
    core_defaults: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    positional: bool = False


def _ffm(name: str, description: str, **core_defaults: Any) -> ModelSpec:
    return ModelSpec(name, description, FFMCore, MappingProxyType(core_defaults))


FFM_MODELS = (
    _ffm("RayFFM", "Fast and Forgetful Memory (Morad et al., 2023): m=32 traces, c=4 frequencies, output 256"),
    _ffm("RayFFMNoOscillate", "FFM ablation: no oscillation (w fixed at 0, real traces)", oscillate=False),
    _ffm("RayFFMNoLearnOscillate", "FFM ablation: w frozen at its initial values", learn_oscillate=False),
    _ffm("RayFFMNoDecay", "FFM ablation: no decay (a fixed at 0, nothing is forgotten)", decay=False),
    _ffm("RayFFMNoLearnDecay", "FFM ablation: decay rates a frozen at their initial values", learn_decay=False),
    _ffm("RayFFMNoInGate", "FFM ablation: no input gate (u = W1 x)", input_gate=False),
    _ffm("RayFFMNoOutGate", "FFM ablation: no output gate (y = LN(z) + W5 x)", output_gate=False),
)
BASELINES = (
    ModelSpec("BasicMLP", "No memory: an MLP on the current observation only", BasicMLPCore),
    ModelSpec("MLP", "The MLP with POPGym's sine embedding of the episode step", BasicMLPCore, positional=True),
    ModelSpec("Framestack", "MLP over a window of the latest 4 inputs", FramestackCore, positional=True),
    ModelSpec("Frameconv", "Temporal convolution over a window of the latest 4 inputs", FrameconvCore, positional=True),
    ModelSpec("Elman", "Elman RNN", ElmanCore),
    ModelSpec("LSTM", "Long short-term memory", LSTMCore),
    ModelSpec("GRU", "Gated recurrent unit", GRUCore),
    ModelSpec("IndRNN", "Independently recurrent neural network, two layers", IndRNNCore),
    ModelSpec("LinearAttention", "Linear transformer (FART in POPGym)", LinearAttentionCore, positional=True),
    ModelSpec("FastWeightProgrammer", "Fast weight programmer (FWP)", FastWeightProgrammerCore, positional=True),
    ModelSpec("LMU", "Legendre memory unit", LMUCore),
    ModelSpec("S4D", "Diagonal structured state space model", S4DCore),
    ModelSpec("DiffNC", "Differentiable neural computer (DNC)", DiffNCCore),
)
PAPER_MODELS = FFM_MODELS + BASELINES  # the paper's POPGym grid ("ALL" in ppo.py and benchmark.py)
# The authors' discussion of RepeatPrevious (their plotting/discussion.py, "FFM-32,104"); not in their committed
# models: RayFFM with its initial periods (and the slowest trace's 1% time) set to the env's time scales.
DISCUSSION_MODELS = (
    _ffm(
        "RayFFM_32_104",
        "RayFFM initialised at RepeatPrevious's time scales: periods 32 to 104, slowest trace at 1% after 104 steps",
        min_period=32,
        max_period=104,
    ),
)
# A paper model with one formula as a later POPGym has it (FIDELITY.md): LinearAttention's denominator as
# phi(q) . z (popgym 1.0.7, d7b0b42) instead of the product of sums that POPGym 689d89b computed and the paper ran.
VARIANT_MODELS = (
    ModelSpec(
        "LinearAttentionDot",
        "LinearAttention with popgym 1.0.7's denominator phi(q) . z (the paper ran (sum phi(q)) (sum z))",
        LinearAttentionCore,
        MappingProxyType({"denominator": "dot"}),
        positional=True,
    ),
)
MODELS: dict[str, ModelSpec] = {model.name: model for model in PAPER_MODELS + DISCUSSION_MODELS + VARIANT_MODELS}
MODEL_GROUPS = {"ALL": [model.name for model in PAPER_MODELS]}  # the group names parse_names takes for models


def get_model(name: str) -> ModelSpec:
    """The model registered as ``name``."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[name]


def parse_names(text: str, valid: list[str], groups: dict[str, list[str]], kind: str) -> list[str]:
    """Comma list of names or group names -> names, in order, without repeats; ValueError names the valid ones."""
    chosen = []
    for item in (part.strip() for part in text.split(",") if part.strip()):
        if item in groups:
            chosen += groups[item]
        elif item in valid:
            chosen.append(item)
        else:
            group_text = f"; groups: {', '.join(groups)}" if len(groups) > 1 else ""
            raise ValueError(f"unknown {kind} {item!r}; valid {kind}s: {', '.join(valid)}, or ALL{group_text}")
    if not chosen:
        raise ValueError(f"no {kind} given; valid {kind}s: {', '.join(valid)}")
    return list(dict.fromkeys(chosen))
