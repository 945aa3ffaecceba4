"""PPO's torch learner with each minibatch trimmed to its longest sequence, as RLlib 2.0 padded it."""

from typing import Any

import tree
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns

# the columns of a stateful module's train batch without a time axis
NO_TIME_AXIS = (Columns.STATE_IN, Columns.SEQ_LENS)


def trim_to_longest_sequence(batch: dict[str, Any]) -> dict[str, Any]:
    """The minibatch [B, max_seq_len, ...] cut to [B, T_mb, ...], T_mb = max(seq_lens).

    RLlib 2.60's learner connector pads every episode piece to max_seq_len
    (AddTimeDimToBatchAndZeroPad); RLlib 2.0, which produced the paper's numbers, padded a batch to its
    longest sequence. The steps cut off are padding after every sequence's end: masked out of the loss,
    and, for a causal core, without influence on any valid step. STATE_IN (one state per sequence) and
    SEQ_LENS have no time axis and are kept whole. Batches without SEQ_LENS (stateless modules) pass as
    they came.
    """
    if Columns.SEQ_LENS not in batch:
        return batch
    padded_length = batch[Columns.LOSS_MASK].shape[1]
    longest = int(batch[Columns.SEQ_LENS].max())
    if longest == padded_length:
        return batch
    trimmed = dict(batch)
    for column, value in batch.items():
        if column not in NO_TIME_AXIS:
            trimmed[column] = tree.map_structure(lambda leaf: leaf[:, :longest], value)
    return trimmed


class TrimmedPPOTorchLearner(PPOTorchLearner):
    """RLlib's PPOTorchLearner whose forward, loss and backward run on each minibatch trimmed to its
    longest sequence (``trim_to_longest_sequence``): the same env steps, minibatches, epochs and masked
    loss, without the learner's work on padding."""

    def _update(self, batch: dict[str, Any], **kwargs) -> tuple[Any, Any, Any]:
        trimmed = {module_id: trim_to_longest_sequence(module_batch) for module_id, module_batch in batch.items()}
        return super()._update(trimmed, **kwargs)
