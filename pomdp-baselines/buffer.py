"""Episodic replay: whole episodes stored, sub-sequences of fixed length sampled inside one episode."""

from typing import NamedTuple

import numpy as np


class Batch(NamedTuple):
    """B sequences of K steps, time-major. obs[t] is o_{s+t} for t = 0..K (o_{s+K} the last step's next
    observation); action, reward, terminal [K, B(, A)] belong to steps s..s+K-1; mask[t] is 1 for real steps,
    0 for padding after the end of an episode shorter than K (padded steps repeat the episode's last step)."""

    obs: np.ndarray  # [K + 1, B, O]
    action: np.ndarray  # [K, B, A]
    reward: np.ndarray  # [K, B]
    terminal: np.ndarray  # [K, B], 1 only at a true termination (never at the time limit)
    mask: np.ndarray  # [K, B]


FIELDS = ("obs", "action", "reward", "next_obs", "terminal")


class EpisodicBuffer:
    """Flat storage of ``capacity`` transitions holding whole episodes, oldest overwritten first.

    An episode of length L is written contiguously (it wraps to index 0 when it does not fit at the end) and
    evicts every stored episode it overlaps. A sampled sequence of ``seq_len`` = K steps starts at step
    s in {0, ..., max(L - K, 0)} of a stored episode, uniformly over all such valid starts of all episodes,
    so it never crosses an episode boundary; an episode shorter than K gives one padded, masked sequence.
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, seq_len: int) -> None:
        self.capacity = capacity
        self.seq_len = seq_len
        self.data = {
            "obs": np.zeros((capacity, obs_dim), np.float32),
            "action": np.zeros((capacity, action_dim), np.float32),
            "reward": np.zeros(capacity, np.float32),
            "next_obs": np.zeros((capacity, obs_dim), np.float32),
            "terminal": np.zeros(capacity, np.float32),
        }
        self.starts = np.zeros(0, np.int64)  # each stored episode's first index, oldest first
        self.lengths = np.zeros(0, np.int64)
        self.position = 0  # where the next episode is written

    def __len__(self) -> int:
        """Stored transitions."""
        return int(self.lengths.sum())

    @property
    def num_episodes(self) -> int:
        return len(self.starts)

    def add_episode(self, **episode: np.ndarray) -> None:
        """Stores one whole episode: obs, action, reward, next_obs, terminal, each [L, ...]."""
        if sorted(episode) != sorted(FIELDS):
            raise ValueError(f"expected an episode with fields {', '.join(FIELDS)}, got {', '.join(sorted(episode))}")
        length = len(episode["obs"])
        if any(len(values) != length for values in episode.values()) or not 0 < length <= self.capacity:
            lengths = {name: len(values) for name, values in episode.items()}
            raise ValueError(f"expected fields of one length in [1, {self.capacity}], got lengths {lengths}")
        if self.position + length > self.capacity:
            self.position = 0
        end = self.position + length
        kept = (self.starts >= end) | (self.starts + self.lengths <= self.position)
        self.starts = np.append(self.starts[kept], self.position)
        self.lengths = np.append(self.lengths[kept], length)
        for name, values in episode.items():
            self.data[name][self.position : end] = values
        self.position = end

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        """``batch_size`` sequences, starts uniform over the valid starts (see the class docstring)."""
        if not self.num_episodes:
            raise ValueError("expected a buffer holding at least one episode, got an empty one")
        k = self.seq_len
        valid = np.maximum(self.lengths - k, 0) + 1  # valid starts per episode
        ends = np.cumsum(valid)
        draw = rng.integers(ends[-1], size=batch_size)
        episode = np.searchsorted(ends, draw, side="right")
        offset = draw - (ends[episode] - valid[episode])  # s, the start inside its episode
        steps = np.minimum(k, self.lengths[episode] - offset)  # real steps of each sequence
        t = np.arange(k)
        index = (self.starts[episode] + offset)[:, None] + np.minimum(t, steps[:, None] - 1)  # [B, K]
        index = index.T  # time-major [K, B]
        obs = np.concatenate([self.data["obs"][index[:1]], self.data["next_obs"][index]])
        mask = (t[:, None] < steps[None]).astype(np.float32)
        return Batch(obs, self.data["action"][index], self.data["reward"][index], self.data["terminal"][index], mask)

    def state_dict(self) -> dict[str, np.ndarray]:
        """The stored part only (cheap to save while the buffer is far from full)."""
        used = int((self.starts + self.lengths).max()) if self.num_episodes else 0
        state = {name: values[:used] for name, values in self.data.items()}
        return state | {"starts": self.starts, "lengths": self.lengths, "position": np.array(self.position)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for name in FIELDS:
            self.data[name][: len(state[name])] = state[name]
        self.starts, self.lengths = state["starts"], state["lengths"]
        self.position = int(state["position"])
