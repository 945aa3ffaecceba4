"""POPGym's memory-model architecture as one RLlib (new API stack) RLModule; subclasses swap the core."""

import inspect
from dataclasses import fields
from typing import Any, ClassVar

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.catalog import Catalog
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.torch import TorchRLModule
from torch import nn

from models.core import MemoryCore, State
from models.spaces import flat_size, flatten

# keys RLlib itself puts into (or reads from) model_config; tolerated, ignored by the architecture
RLLIB_MODEL_KEYS = frozenset(field.name for field in fields(DefaultModelConfig))
ARCHITECTURE_DEFAULTS = {"embedding_size": 128, "memory_output_size": 256, "head_size": 128}


class MemoryModule(TorchRLModule, ValueFunctionAPI):
    """obs -> flatten -> Linear + LayerNorm -> Linear + LeakyReLU -> memory core -> actor / critic MLPs.

    POPGym's architecture (used by the paper): observations flattened (one-hot for discrete parts), a
    feature map Linear(obs, 128) + LayerNorm without affine, a preprocessor Linear(128, 128) + LeakyReLU,
    the memory core (128 -> 256), and actor and critic heads Linear(256, 128) + LeakyReLU +
    Linear(128, 128) + LeakyReLU + Linear (action-distribution inputs; 1 value). Hidden Linears are
    orthogonally initialised, the two final layers N(0, 0.01).

    ``model_config`` holds ``embedding_size`` (128), ``memory_output_size`` (256), ``head_size`` (128)
    and the core's own keyword arguments; RLlib's keys (max_seq_len, ...) pass through, anything else
    is an error. Subclasses set ``core_class`` and optionally ``core_defaults``.
    """

    core_class: ClassVar[type[MemoryCore]]
    core_defaults: ClassVar[dict[str, Any]] = {}

    @classmethod
    def config_keys(cls) -> dict[str, Any]:
        """Every key this model reads from model_config, with its default."""
        core_parameters = list(inspect.signature(cls.core_class).parameters.values())[2:]
        core_keys = {parameter.name: parameter.default for parameter in core_parameters}
        return ARCHITECTURE_DEFAULTS | core_keys | cls.core_defaults

    def setup(self) -> None:
        given = dict(self.model_config or {})
        valid = self.config_keys()
        unknown = sorted(set(given) - set(valid) - RLLIB_MODEL_KEYS)
        if unknown:
            raise ValueError(f"unknown model_config keys {unknown} for {type(self).__name__}; valid: {sorted(valid)}")
        config = valid | {key: value for key, value in given.items() if key in valid}
        embedding, memory_output, head = (config.pop(key) for key in ARCHITECTURE_DEFAULTS)
        self.feature_map = nn.Sequential(
            _hidden_linear(flat_size(self.observation_space), embedding),
            nn.LayerNorm(embedding, elementwise_affine=False),
        )
        self.preprocessor = nn.Sequential(_hidden_linear(embedding, embedding), nn.LeakyReLU())
        self.core = self.core_class(embedding, memory_output, **config)
        self.action_dist_cls = Catalog._get_dist_cls_from_action_space(self.action_space, framework="torch")
        self.actor = _head(memory_output, head, self.action_dist_cls.required_input_dim(self.action_space))
        self.critic = _head(memory_output, head, 1)

    def get_initial_state(self) -> dict[str, np.ndarray]:
        return {key: value.detach().cpu().numpy() for key, value in self.core.initial_state().items()}

    def memory(self, batch: dict[str, Any]) -> tuple[torch.Tensor, State]:
        """Core outputs for the batch's observations ([B, T] if stateful, else [B]) and the final state."""
        features = self.preprocessor(self.feature_map(flatten(self.observation_space, batch[Columns.OBS])))
        if not self.is_stateful():
            return self.core(features[:, None], {})[0][:, 0], {}
        return self.core(features, batch[Columns.STATE_IN])

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._outputs(batch, with_embeddings=False)

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        """As _forward, plus the core outputs as embeddings, so compute_values need not rerun the core."""
        return self._outputs(batch, with_embeddings=True)

    def _outputs(self, batch: dict[str, Any], with_embeddings: bool) -> dict[str, Any]:
        embeddings, state = self.memory(batch)
        output = {Columns.ACTION_DIST_INPUTS: self.actor(embeddings)}
        if with_embeddings:
            output[Columns.EMBEDDINGS] = embeddings
        return output | ({Columns.STATE_OUT: state} if state else {})

    def compute_values(self, batch: dict[str, Any], embeddings: torch.Tensor | None = None) -> torch.Tensor:
        if embeddings is None:
            embeddings, _ = self.memory(batch)
        return self.critic(embeddings).squeeze(-1)


def _hidden_linear(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    nn.init.orthogonal_(layer.weight, nn.init.calculate_gain("leaky_relu"))
    nn.init.zeros_(layer.bias)
    return layer


def _head(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    final = nn.Linear(hidden, out_features)
    nn.init.normal_(final.weight, std=0.01)
    nn.init.zeros_(final.bias)
    layers = [_hidden_linear(in_features, hidden), nn.LeakyReLU(), _hidden_linear(hidden, hidden), nn.LeakyReLU()]
    return nn.Sequential(*layers, final)
