"""POPGym's memory-model architecture, the one the paper trained, in plain torch (no RLlib)."""

import inspect
from typing import Any

import torch
from torch import nn

from models import ModelSpec, get_model
from models.core import MemoryCore, State, batched
from models.positional import SinePositionalEncoding

ARCHITECTURE_DEFAULTS = {"embedding_size": 128, "memory_output_size": 256, "head_size": 128, "positional_max_len": 1024}
STEP_KEY = "t"  # the state entry counting an episode's steps, for models with the sine embedding


class MemoryNetwork(nn.Module):
    """x -> Linear + LayerNorm -> [sine step embedding] -> Linear + LeakyReLU -> memory core -> actor, critic.

    POPGym's base model at 689d89b (baselines/ray_models/base_model.py) with the paper's sizes (the
    authors' ppo.py): a feature map Linear(input_size, 128) + LayerNorm without affine; for models with
    POPGym's ``"embedding": "sine"`` the step embedding x <- (1 - s) x + s pe(t) (learned strength s,
    see SinePositionalEncoding); a preprocessor Linear(128, 128) + LeakyReLU; the memory core
    (128 -> 256); actor and critic heads Linear(256, 128) + LeakyReLU + Linear(128, 128) + LeakyReLU +
    Linear (action_outputs; 1). POPGym's weight_init re-initialises only the weights of the feature
    map's, preprocessor's and heads' hidden Linears, orthogonally with gain 1; the final layers' weights
    are N(0, 0.01); every bias, and the core, keep torch's default initialisation.

    ``config`` holds ``embedding_size`` (128), ``memory_output_size`` (256), ``head_size`` (128),
    ``positional_max_len`` (1024, the embedding's base: POPGym's max_seq_len in the paper's runs) and the
    core's keyword arguments; anything else is an error naming the valid keys.
    """

    def __init__(self, model: ModelSpec | str, input_size: int, action_outputs: int, **config: Any) -> None:
        super().__init__()
        self.spec = get_model(model) if isinstance(model, str) else model
        valid = config_keys(self.spec)
        unknown = sorted(set(config) - set(valid))
        if unknown:
            raise ValueError(f"unknown model_config keys {unknown} for {self.spec.name}; valid: {sorted(valid)}")
        config = valid | config
        embedding, memory_output, head, max_len = (config.pop(key) for key in ARCHITECTURE_DEFAULTS)
        self.feature_map = nn.Sequential(
            _hidden_linear(input_size, embedding), nn.LayerNorm(embedding, elementwise_affine=False)
        )
        self.embedding = SinePositionalEncoding(embedding, max_len) if self.spec.positional else None
        self.preprocessor = nn.Sequential(_hidden_linear(embedding, embedding), nn.LeakyReLU())
        self.core: MemoryCore = self.spec.core(embedding, memory_output, **config)
        if STEP_KEY in self.core.initial_state():
            raise ValueError(f"{self.spec.core.__name__}'s state may not use the key {STEP_KEY!r}")
        self.actor = _head(memory_output, head, action_outputs)
        self.critic = _head(memory_output, head, 1)

    def initial_state(self) -> State:
        """The core's initial state, plus the step counter "t" (int32 [1]) for models with the embedding."""
        state = self.core.initial_state()
        if self.embedding is None:
            return state
        return state | {STEP_KEY: torch.zeros(1, dtype=torch.int32, device=self.embedding.strength.device)}

    def batched_initial_state(self, batch_size: int) -> State:
        """initial_state() for batch_size episodes: tensors [batch_size, ...]."""
        return batched(self.initial_state(), batch_size)

    def memory(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """Core outputs [B, T, memory_output_size] for flat inputs x [B, T, input_size], and the next state."""
        features = self.feature_map(x)
        steps = {}
        if self.embedding is not None:
            features = self.embedding(features, state[STEP_KEY][:, 0])
            steps = {STEP_KEY: state[STEP_KEY] + x.shape[1]}
        y, core_state = self.core(self.preprocessor(features), {k: v for k, v in state.items() if k != STEP_KEY})
        return y, core_state | steps

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, torch.Tensor, State]:
        """Actor outputs [B, T, action_outputs], values [B, T] and the next state for x [B, T, input_size]."""
        y, state = self.memory(x, state)
        return self.actor(y), self.critic(y).squeeze(-1), state


def config_keys(spec: ModelSpec) -> dict[str, Any]:
    """Every configuration key of model ``spec`` with its default: the architecture's and the core's."""
    core_parameters = list(inspect.signature(spec.core).parameters.values())[2:]
    return ARCHITECTURE_DEFAULTS | {p.name: p.default for p in core_parameters} | dict(spec.core_defaults)


def _hidden_linear(in_features: int, out_features: int) -> nn.Linear:
    """POPGym's hidden Linear: orthogonal weights (gain 1), torch's default bias."""
    layer = nn.Linear(in_features, out_features)
    nn.init.orthogonal_(layer.weight)
    return layer


def _head(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    """POPGym's actor or critic: two hidden Linear + LeakyReLU, then a final Linear with N(0, 0.01) weights."""
    final = nn.Linear(hidden, out_features)
    nn.init.normal_(final.weight, std=0.01)
    layers = [_hidden_linear(in_features, hidden), nn.LeakyReLU(), _hidden_linear(hidden, hidden), nn.LeakyReLU()]
    return nn.Sequential(*layers, final)
