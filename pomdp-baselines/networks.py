"""Recurrent actor and twin-Q critic, each with its own memory (pomdp-baselines' separate architecture).

All tensors are time-major [T, B, ...]. At step t the memory reads the embedded history input
x_t = [ReLU(W_a a_{t-1}), ReLU(W_r r_{t-1}), ReLU(W_o o_t)] (a_{-1} = 0, r_{-1} = 0) and outputs h_t.
"""

import torch
from torch import nn

from config import Config
from memory import make_memory


def mlp(input_size: int, hidden: tuple[int, ...], output_size: int) -> nn.Sequential:
    """Linear-ReLU layers of the ``hidden`` widths, then a Linear output."""
    layers, width = [], input_size
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    return nn.Sequential(*layers, nn.Linear(width, output_size))


def embedding(input_size: int, output_size: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(input_size, output_size), nn.ReLU())


class History(nn.Module):
    """h_t = memory(x_0..x_t) for x_t = [emb(a_{t-1}), emb(r_{t-1}), emb(o_t)], the memory chosen by name."""

    def __init__(self, obs_dim: int, action_dim: int, config: Config) -> None:
        super().__init__()
        self.action = embedding(action_dim, config.action_embed)
        self.reward = embedding(1, config.reward_embed)
        self.obs = embedding(obs_dim, config.obs_embed)
        self.input_size = config.action_embed + config.reward_embed + config.obs_embed
        self.memory = make_memory(
            config.memory,
            self.input_size,
            config.memory_hidden,
            ffm_memory_size=config.ffm_memory_size,
            ffm_context_size=config.ffm_context_size,
            ffm_max_period=config.ffm_max_period,
        )

    def forward(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        state: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """obs [T, B, O], prev_action [T, B, A], prev_reward [T, B], state (None: zero) -> h [T, B, H], state."""
        x = torch.cat([self.action(prev_action), self.reward(prev_reward[..., None]), self.obs(obs)], -1)
        return self.memory(x, state)


class Actor(nn.Module):
    """head(h_t, ReLU(W o_t)): an MLP giving 2|A| outputs (SAC: Gaussian mean and log std) or |A| (TD3)."""

    def __init__(self, obs_dim: int, action_dim: int, config: Config, outputs: int) -> None:
        super().__init__()
        self.history = History(obs_dim, action_dim, config)
        self.current_obs = embedding(obs_dim, config.obs_embed)
        self.head = mlp(config.memory_hidden + config.obs_embed, config.mlp_hidden, outputs)

    def forward(
        self,
        obs: torch.Tensor,
        prev_action: torch.Tensor,
        prev_reward: torch.Tensor,
        state: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> head outputs [T, B, outputs], the memory's final state."""
        h, state = self.history(obs, prev_action, prev_reward, state)
        return self.head(torch.cat([h, self.current_obs(obs)], -1)), state


class Critic(nn.Module):
    """Q_i(h_t, o_t, a) = MLP_i([h_t, ReLU(W [o_t, a])]), i = 1, 2, sharing the critic's memory."""

    def __init__(self, obs_dim: int, action_dim: int, config: Config) -> None:
        super().__init__()
        self.history = History(obs_dim, action_dim, config)
        self.shortcut = embedding(obs_dim + action_dim, self.history.input_size)
        width = config.memory_hidden + self.history.input_size
        self.q1 = mlp(width, config.mlp_hidden, 1)
        self.q2 = mlp(width, config.mlp_hidden, 1)

    def q(self, h: torch.Tensor, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q1, Q2) [T, B] for memory outputs h [T, B, H], observations and actions."""
        joint = torch.cat([h, self.shortcut(torch.cat([obs, action], -1))], -1)
        return self.q1(joint)[..., 0], self.q2(joint)[..., 0]
