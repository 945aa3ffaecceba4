"""RLlib callback logging FFM's internals every training iteration (used by ppo.py)."""

from typing import Any

import numpy as np
import torch
import tree
from ray.rllib.callbacks.callbacks import RLlibCallback
from ray.rllib.utils.metrics.metrics_logger import MetricsLogger

from models.ffm import FFMCore, ffm_internals
from models.spaces import flatten

PREFIX = "ffm"
PER_UNIT = ("decay_time", "period")  # small vectors: one scalar per trace / frequency, kept in the CSV


class FFMInternalsCallback(RLlibCallback):
    """After each sample, log FFM's decay times-to-1%, oscillation periods, gate and state statistics.

    Runs on every env runner whose module has an FFM core: the module (weights of the latest iteration)
    is run over the longest sampled episode chunk. Scalars go to the metrics logger under ``ffm/...``
    (the result dict's ``env_runners/ffm/...``, hence Tune's CSV): per trace ``decay_time/00``..,
    per frequency ``period/0``.., and min / mean / max of each gate and of |S|. ppo.py turns the
    per-unit values into wandb histograms.
    """

    def on_sample_end(self, *, env_runner=None, metrics_logger: MetricsLogger | None = None, samples, **kwargs) -> None:
        module = getattr(env_runner, "module", None)
        network = getattr(module, "network", None)
        if metrics_logger is None or not isinstance(getattr(network, "core", None), FFMCore) or not samples:
            return
        episode = max(samples, key=len)
        observations = tree.map_structure(
            lambda column: torch.as_tensor(np.asarray(column))[None], episode.get_observations()
        )
        with torch.no_grad():
            features = network.preprocessor(network.feature_map(flatten(module.observation_space, observations)))
        for key, value in internal_scalars(ffm_internals(network.core.ffm, features)).items():
            metrics_logger.log_value(f"{PREFIX}/{key}", value, window=1)


def internal_scalars(internals: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Flat scalars: each entry of the per-unit vectors, min/mean/max of the distributions."""
    scalars = {}
    for name, values in internals.items():
        if name in PER_UNIT:
            digits = len(str(len(values) - 1))
            scalars |= {f"{name}/{i:0{digits}d}": float(value) for i, value in enumerate(values)}
        else:
            scalars |= {f"{name}/min": float(values.min()), f"{name}/mean": float(values.mean())}
            scalars[f"{name}/max"] = float(values.max())
    return scalars
