"""Recurrent SAC and TD3 (Ni, Eysenbach, Salakhutdinov, 2022): updates on sampled sequences, acting step by step.

For a batch of sequences o_0..o_K with actions a_t, rewards r_t, terminals d_t and masks m_t (t < K), both
memories read the whole sequence from a zero state (a_{-1} = r_{-1} = 0), and per update (in this order):

    critic   y_t = r_t + gamma (1 - d_t) [min_i Q'_i(h'_{t+1}, o_{t+1}, a'_{t+1}) - alpha log pi(a'_{t+1})]
             L_Q = sum_t m_t sum_i (Q_i(h_t, o_t, a_t) - y_t)^2 / sum_t m_t
    actor    SAC: L_pi = mean_m[alpha log pi(a~_t) - min_i Q_i(h_t, o_t, a~_t)], a~_t ~ pi(. | history_t)
             TD3: L_pi = mean_m[-min_i Q_i(h_t, o_t, mu(history_t))]
    targets  theta' <- (1 - tau) theta' + tau theta (critic; TD3 also the actor)
    alpha    SAC: L_alpha = -alpha (mean_m[log pi(a~_t)] + target entropy), target entropy -|A|

SAC's a' comes from the current actor (no alpha term in TD3); TD3's a' = clip(mu'(history_{t+1}) + clip(eps,
-0.5, 0.5), -1, 1), eps ~ N(0, 0.2^2). Actions live in [-1, 1]: SAC squashes a Gaussian with tanh, TD3's mu is
tanh of its head and explores with N(0, 0.1^2) noise.
"""

import copy
import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from buffer import Batch
from config import Config
from networks import Actor, Critic

LOG_STD_RANGE = (-20.0, 2.0)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1)


def squashed_gaussian(head: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A sample a = tanh(u), u ~ N(mean, std^2), and log pi(a) = log N(u) - sum log(1 - tanh(u)^2)."""
    mean, log_std = head.chunk(2, -1)
    log_std = log_std.clamp(*LOG_STD_RANGE)
    u = mean + log_std.exp() * torch.randn_like(mean)
    log_normal = -0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)
    log_det = 2 * (math.log(2) - u - F.softplus(-2 * u))  # log(1 - tanh(u)^2), stable
    return torch.tanh(u), (log_normal - log_det).sum(-1)


class RecurrentAgent(nn.Module):
    """Actor and critic with separate memories, a target critic, and an Adam optimizer per network."""

    def __init__(self, obs_dim: int, action_dim: int, config: Config, actor_outputs: int) -> None:
        super().__init__()
        self.config = config
        self.actor = Actor(obs_dim, action_dim, config, actor_outputs)
        self.critic = Critic(obs_dim, action_dim, config)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.optimizers = {
            "actor": torch.optim.Adam(self.actor.parameters(), lr=config.lr),
            "critic": torch.optim.Adam(self.critic.parameters(), lr=config.lr),
        }

    def policy(self, head: torch.Tensor, explore: bool) -> torch.Tensor:
        """Actions in [-1, 1] from the actor's head outputs."""
        raise NotImplementedError

    @torch.no_grad()
    def act(
        self,
        obs: np.ndarray,
        prev_action: np.ndarray,
        prev_reward: float,
        state: torch.Tensor | None,
        explore: bool,
    ) -> tuple[np.ndarray, torch.Tensor]:
        """One step: the action for o_t given a_{t-1}, r_{t-1} and the actor's memory state (None at t = 0)."""
        device = next(self.parameters()).device
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=device).reshape(1, 1, -1)
        action_t = torch.as_tensor(prev_action, dtype=torch.float32, device=device).reshape(1, 1, -1)
        reward_t = torch.full((1, 1), float(prev_reward), device=device)
        head, state = self.actor(obs_t, action_t, reward_t, state)
        return self.policy(head, explore)[0, 0].cpu().numpy(), state

    def update(self, batch: Batch) -> dict[str, float]:
        """One gradient step of critic, actor (and alpha) on a batch; returns the losses."""
        raise NotImplementedError

    def _tensors(self, batch: Batch) -> tuple[torch.Tensor, ...]:
        """obs [K+1, B, O], prev_action [K+1, B, A], prev_reward [K+1, B], action, reward, terminal, mask."""
        device = next(self.parameters()).device
        obs, action, reward, terminal, mask = (torch.as_tensor(x, device=device) for x in batch)
        prev_action = torch.cat([torch.zeros_like(action[:1]), action])
        prev_reward = torch.cat([torch.zeros_like(reward[:1]), reward])
        return obs, prev_action, prev_reward, action, reward, terminal, mask

    def _critic_step(
        self,
        history: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
        action: torch.Tensor,
        target: torch.Tensor,
        mask: torch.Tensor,
    ) -> dict[str, float]:
        """One step on L_Q, for history = (obs, prev_action, prev_reward) over K + 1 steps."""
        obs = history[0]
        h, _ = self.critic.history(*(x[:-1] for x in history))
        q1, q2 = self.critic.q(h, obs[:-1], action)
        loss = masked_mean((q1 - target) ** 2 + (q2 - target) ** 2, mask)
        self._step("critic", loss)
        return {"critic_loss": loss.item(), "q": masked_mean(q1, mask).item()}

    def _q_of(self, history: tuple[torch.Tensor, ...], new_action: torch.Tensor) -> torch.Tensor:
        """min_i Q_i(h_t, o_t, new_action_t) for t < K; gradients flow to new_action, not into the critic's memory
        (the critic's other gradients from the actor loss are cleared before its next step)."""
        with torch.no_grad():
            h, _ = self.critic.history(*(x[:-1] for x in history))
        return torch.min(*self.critic.q(h, history[0][:-1], new_action))

    def _target_q(self, history: tuple[torch.Tensor, ...], next_action: torch.Tensor) -> torch.Tensor:
        """min_i Q'_i(h'_{t+1}, o_{t+1}, next_action_{t+1}) for t < K; next_action covers steps 0..K."""
        h, _ = self.critic_target.history(*history)
        return torch.min(*self.critic_target.q(h[1:], history[0][1:], next_action[1:]))

    def _step(self, name: str, loss: torch.Tensor) -> None:
        optimizer = self.optimizers[name]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    @torch.no_grad()
    def _soft_update(self, source: nn.Module, target: nn.Module) -> None:
        for p, p_target in zip(source.parameters(), target.parameters(), strict=True):
            p_target.lerp_(p, self.config.tau)


class SAC(RecurrentAgent):
    """Recurrent SAC with a tanh-Gaussian policy and automatic entropy tuning (alpha starts at 1)."""

    def __init__(self, obs_dim: int, action_dim: int, config: Config) -> None:
        super().__init__(obs_dim, action_dim, config, actor_outputs=2 * action_dim)
        self.log_alpha = nn.Parameter(torch.zeros(()))
        self.target_entropy = -float(action_dim)
        self.optimizers["alpha"] = torch.optim.Adam([self.log_alpha], lr=config.lr)

    def policy(self, head: torch.Tensor, explore: bool) -> torch.Tensor:
        return squashed_gaussian(head)[0] if explore else torch.tanh(head.chunk(2, -1)[0])

    def update(self, batch: Batch) -> dict[str, float]:
        obs, prev_action, prev_reward, action, reward, terminal, mask = self._tensors(batch)
        history = (obs, prev_action, prev_reward)
        alpha = self.log_alpha.exp().detach()
        # one actor pass over steps 0..K: a'_{t+1} for the target (detached) and a~_t for the actor loss; the
        # actor is unchanged by the critic step, so this equals pomdp-baselines' two passes
        new_action, log_prob = squashed_gaussian(self.actor(*history)[0])
        with torch.no_grad():
            next_value = self._target_q(history, new_action) - alpha * log_prob[1:]
            target = reward + self.config.gamma * (1 - terminal) * next_value
        logs = self._critic_step(history, action, target, mask)
        actor_loss = masked_mean(alpha * log_prob[:-1] - self._q_of(history, new_action[:-1]), mask)
        self._step("actor", actor_loss)
        self._soft_update(self.critic, self.critic_target)
        mean_log_prob = masked_mean(log_prob[:-1].detach(), mask)
        self._step("alpha", -self.log_alpha.exp() * (mean_log_prob + self.target_entropy))
        return logs | {"actor_loss": actor_loss.item(), "alpha": alpha.item(), "entropy": -mean_log_prob.item()}


class TD3(RecurrentAgent):
    """Recurrent TD3: deterministic tanh policy, target actor, target policy smoothing (actor updated every step)."""

    def __init__(self, obs_dim: int, action_dim: int, config: Config) -> None:
        super().__init__(obs_dim, action_dim, config, actor_outputs=action_dim)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)

    def policy(self, head: torch.Tensor, explore: bool) -> torch.Tensor:
        action = torch.tanh(head)
        if explore:
            action = (action + self.config.exploration_noise * torch.randn_like(action)).clamp(-1, 1)
        return action

    def update(self, batch: Batch) -> dict[str, float]:
        obs, prev_action, prev_reward, action, reward, terminal, mask = self._tensors(batch)
        history = (obs, prev_action, prev_reward)
        config = self.config
        with torch.no_grad():
            next_action = torch.tanh(self.actor_target(*history)[0])
            noise = (config.target_noise * torch.randn_like(next_action)).clamp(
                -config.target_noise_clip, config.target_noise_clip
            )
            next_value = self._target_q(history, (next_action + noise).clamp(-1, 1))
            target = reward + config.gamma * (1 - terminal) * next_value
        logs = self._critic_step(history, action, target, mask)
        new_action = torch.tanh(self.actor(*(x[:-1] for x in history))[0])
        actor_loss = masked_mean(-self._q_of(history, new_action), mask)
        self._step("actor", actor_loss)
        self._soft_update(self.critic, self.critic_target)
        self._soft_update(self.actor, self.actor_target)
        return logs | {"actor_loss": actor_loss.item()}


ALGORITHMS = {"sac": SAC, "td3": TD3}


def make_agent(algo: str, obs_dim: int, action_dim: int, config: Config) -> RecurrentAgent:
    if algo not in ALGORITHMS:
        raise ValueError(f"expected an algorithm out of {', '.join(ALGORITHMS)}; got {algo!r}")
    return ALGORITHMS[algo](obs_dim, action_dim, config)
