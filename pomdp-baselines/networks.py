"""Recurrent actor and twin-Q critic, each with its own memory (pomdp-baselines' separate architecture).

All tensors are time-major [T, B, ...]. At step t the memory reads the embedded history input
x_t = [ReLU(W_a a_{t-1}), ReLU(W_r r_{t-1}), ReLU(W_o o_t)] (a_{-1} = 0, r_{-1} = 0) and outputs h_t.

Initialisation as pomdp-baselines (rlkit's torchkit): embeddings keep torch.nn.Linear's default; the MLP heads'
hidden layers get W ~ U(+-1/sqrt(fan)), fan = out_features (torchkit's fanin_init reads weight.size(0), which for
a Linear is its output width), and biases 0.1; their last layers get weight and bias ~ U(+-init), init 3e-3 for
the Q heads and 1e-3 for the policy (SAC's mean and log std, TD3's action), so Q starts near 0 and SAC's std
near 1.
"""

import math

import torch
from torch import nn

from config import Config
from memory import make_memory

Q_LAST_INIT = 3e-3
POLICY_LAST_INIT = 1e-3
HIDDEN_BIAS = 0.1


def hidden_linear(input_size: int, output_size: int) -> nn.Linear:
    """Linear with W ~ U(+-1/sqrt(output_size)) (torchkit's fan convention) and bias 0.1."""
    linear = nn.Linear(input_size, output_size)
    bound = 1 / math.sqrt(output_size)
    nn.init.uniform_(linear.weight, -bound, bound)
    nn.init.constant_(linear.bias, HIDDEN_BIAS)
    return linear


def last_linear(input_size: int, output_size: int, init: float) -> nn.Linear:
    """Linear with weight and bias ~ U(+-init)."""
    linear = nn.Linear(input_size, output_size)
    nn.init.uniform_(linear.weight, -init, init)
    nn.init.uniform_(linear.bias, -init, init)
    return linear


def mlp(input_size: int, hidden: tuple[int, ...], output_size: int, last_init: float) -> nn.Sequential:
    """hidden_linear-ReLU layers of the ``hidden`` widths, then last_linear(..., last_init)."""
    layers, width = [], input_size
    for size in hidden:
        layers += [hidden_linear(width, size), nn.ReLU()]
        width = size
    return nn.Sequential(*layers, last_linear(width, output_size, last_init))


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
        self.head = mlp(config.memory_hidden + config.obs_embed, config.mlp_hidden, outputs, POLICY_LAST_INIT)

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
        self.q1 = mlp(width, config.mlp_hidden, 1, Q_LAST_INIT)
        self.q2 = mlp(width, config.mlp_hidden, 1, Q_LAST_INIT)

    def q(self, h: torch.Tensor, obs: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q1, Q2) [T, B] for memory outputs h [T, B, H], observations and actions."""
        joint = torch.cat([h, self.shortcut(torch.cat([obs, action], -1))], -1)
        return self.q1(joint)[..., 0], self.q2(joint)[..., 0]
