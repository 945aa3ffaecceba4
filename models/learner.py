"""PPO's torch learner without work on padding beyond the longest sequence, as RLlib 2.0 padded batches."""

from typing import Any

import tree
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.connectors.learner import GeneralAdvantageEstimation
from ray.rllib.core.columns import Columns

# the columns of a stateful module's train batch without a time axis
NO_TIME_AXIS = (Columns.STATE_IN, Columns.SEQ_LENS)


def trim_to_longest_sequence(batch: dict[str, Any]) -> dict[str, Any]:
    """A padded batch [B, T, ...] cut to [B, T', ...], T' = max(seq_lens), the longest sequence in it.

    RLlib 2.60's learner connector pads every episode piece to max_seq_len (AddTimeDimToBatchAndZeroPad);
    RLlib 2.0, which produced the paper's numbers, padded a batch to its longest sequence. What is cut
    off is padding after every sequence's end: masked out of the loss and, for a causal core, without
    influence on any valid step. STATE_IN (one state per sequence) and SEQ_LENS have no time axis. A
    batch without SEQ_LENS (a stateless module's) or without anything to cut is returned as it came.
    """
    if Columns.SEQ_LENS not in batch:
        return batch
    longest = int(batch[Columns.SEQ_LENS].max())
    columns = [column for column in batch if column not in NO_TIME_AXIS]
    if all(leaf.shape[1] <= longest for column in columns for leaf in tree.flatten(batch[column])):
        return batch
    trimmed = dict(batch)
    for column in columns:
        trimmed[column] = tree.map_structure(lambda leaf: leaf[:, :longest], batch[column])
    return trimmed


class TrimPadding(ConnectorV2):
    """Learner connector piece: each stateful module's train batch trimmed to its longest sequence."""

    def __call__(self, *, rl_module, batch: dict[str, Any], episodes, **kwargs) -> dict[str, Any]:
        for module_id, module_batch in batch.items():
            batch[module_id] = trim_to_longest_sequence(module_batch)
        return batch


class TrimmedPPOTorchLearner(PPOTorchLearner):
    """RLlib's PPOTorchLearner without work on padding beyond the longest sequence: in the value pass of
    GAE on the whole train batch (trimmed before it; the advantages and value targets GAE pads back to
    max_seq_len are trimmed after it), and in the forward, loss and backward of each minibatch (trimmed
    to its own longest sequence). The env steps, minibatches, epochs and the masked loss are RLlib's.
    """

    def build(self) -> None:
        super().build()
        self._learner_connector.insert_before(GeneralAdvantageEstimation, TrimPadding())
        self._learner_connector.append(TrimPadding())

    def _update(self, batch: dict[str, Any], **kwargs) -> tuple[Any, Any, Any]:
        trimmed = {module_id: trim_to_longest_sequence(module_batch) for module_id, module_batch in batch.items()}
        return super()._update(trimmed, **kwargs)
