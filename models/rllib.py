"""The registered memory models as one RLlib (new API stack) RLModule, for ppo.py."""

from dataclasses import fields
from typing import Any

import numpy as np
import torch
from ray.rllib.core.columns import Columns
from ray.rllib.core.models.catalog import Catalog
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
from ray.rllib.core.rl_module.rl_module import RLModuleSpec
from ray.rllib.core.rl_module.torch import TorchRLModule

from models import get_model
from models.core import State
from models.network import MemoryNetwork
from models.spaces import flat_size, flatten

MODEL_CONFIG_KEY = "memory_model"  # model_config entry naming the registered model
# keys RLlib itself puts into (or reads from) model_config; tolerated, ignored by the architecture
RLLIB_MODEL_KEYS = frozenset(field.name for field in fields(DefaultModelConfig))


class MemoryModule(TorchRLModule, ValueFunctionAPI):
    """The registered model ``model_config["memory_model"]`` as POPGym's architecture (MemoryNetwork).

    Observations are flattened (one-hot for discrete parts, see models.spaces); the actor's outputs are
    the inputs of RLlib's action distribution for the action space. The rest of ``model_config`` goes
    to MemoryNetwork (architecture sizes, the core's options); RLlib's own keys (max_seq_len, ...) are
    passed over.
    """

    def setup(self) -> None:
        config = {k: v for k, v in (self.model_config or {}).items() if k not in RLLIB_MODEL_KEYS}
        if MODEL_CONFIG_KEY not in config:
            raise ValueError(f"model_config must name the model as {MODEL_CONFIG_KEY!r} (see models.MODELS)")
        model = get_model(config.pop(MODEL_CONFIG_KEY))
        self.action_dist_cls = Catalog._get_dist_cls_from_action_space(self.action_space, framework="torch")
        action_outputs = self.action_dist_cls.required_input_dim(self.action_space)
        self.network = MemoryNetwork(model, flat_size(self.observation_space), action_outputs, **config)

    def get_initial_state(self) -> dict[str, np.ndarray]:
        return {key: value.detach().cpu().numpy() for key, value in self.network.initial_state().items()}

    def memory(self, batch: dict[str, Any]) -> tuple[torch.Tensor, State]:
        """Core outputs for the batch's observations ([B, T] if stateful, else [B]) and the final state."""
        x = flatten(self.observation_space, batch[Columns.OBS])
        if not self.is_stateful():
            return self.network.memory(x[:, None], {})[0][:, 0], {}
        return self.network.memory(x, batch[Columns.STATE_IN])

    def _forward(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        return self._outputs(batch, with_embeddings=False)

    def _forward_train(self, batch: dict[str, Any], **kwargs) -> dict[str, Any]:
        """As _forward, plus the core outputs as embeddings, so compute_values need not rerun the core."""
        return self._outputs(batch, with_embeddings=True)

    def _outputs(self, batch: dict[str, Any], with_embeddings: bool) -> dict[str, Any]:
        embeddings, state = self.memory(batch)
        output = {Columns.ACTION_DIST_INPUTS: self.network.actor(embeddings)}
        if with_embeddings:
            output[Columns.EMBEDDINGS] = embeddings
        return output | ({Columns.STATE_OUT: state} if state else {})

    def compute_values(self, batch: dict[str, Any], embeddings: torch.Tensor | None = None) -> torch.Tensor:
        if embeddings is None:
            embeddings, _ = self.memory(batch)
        return self.network.critic(embeddings).squeeze(-1)


def module_spec(name: str, **model_config: Any) -> RLModuleSpec:
    """The RLModuleSpec of the registered model ``name`` (model_config: MemoryNetwork's options)."""
    get_model(name)
    return RLModuleSpec(module_class=MemoryModule, model_config={MODEL_CONFIG_KEY: name} | model_config)
