"""POPGym's linear-attention memory baselines: LinearAttention (FART) and FastWeightProgrammer (FWP).

Both follow POPGym's single-layer block (popgym/baselines/models/{linear_attention,fwp}.py and
ray_models/ray_{linear_attention,fwp}.py, popgym 1.0.7), around a memory that differs per model:

    x  <- (1 - s) x + s pe(t)                   POPGym's default "sine" embedding of the episode step t
    x  <- LayerNorm(x)
    q, k, v = W_q x, W_k x, W_v x              [h] each, no bias
    a  = memory(q, k, v)                        [h]
    y  = unmap(ReLU(L2(ReLU(L1(a)))) + shortcut(x))     feed-forward + residual, unmap: h -> output_size

with POPGym's small attention width h (the memory state is about output_size floats) and torch's default
initialisation (POPGym applies its orthogonal init only outside the memory).
"""

import math
from abc import abstractmethod

import torch
from torch import nn
from torch.nn import functional as F

from models.core import MemoryCore, State
from models.positional import SinePositionalEncoding


def causal_linear_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, s0: torch.Tensor, chunk_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """y_t = q_t^T S_t with S_t = S_0 + sum_{s <= t} k_s v_s^T for every t at once, and the last S.

    q, k [B, T, dk], v [B, T, dv], s0 [B, dk, dv] -> y [B, T, dv], S_T [B, dk, dv]. Chunked: inside a
    chunk of C steps the causal sum is one masked matmul tril(q k^T) v; across chunks S is a cumulative
    sum of the chunks' k^T v, so no [T, dk, dv] tensor is built.
    """
    batch, steps, _ = q.shape
    if steps == 1:  # the environment step
        s = s0 + k.mT @ v
        return q @ s, s
    c = min(chunk_size, steps)
    pad = -steps % c
    if pad:  # zero keys and values add nothing to S
        q, k, v = (F.pad(a, (0, 0, 0, pad)) for a in (q, k, v))
    n = (steps + pad) // c
    q, k, v = (a.reshape(batch, n, c, a.shape[-1]) for a in (q, k, v))
    states = torch.cat([s0.unsqueeze(1), k.mT @ v], 1).cumsum(1)  # S before each chunk; S_T last
    y = (q @ k.mT).tril() @ v + q @ states[:, :-1]
    return y.reshape(batch, n * c, -1)[:, :steps], states[:, -1]


class _AttentionBlock(MemoryCore):
    """POPGym's block (module docstring) around ``attend``; state "t" [1] int32 is the episode step."""

    def __init__(self, input_size: int, output_size: int, hidden_size: int, positional: bool) -> None:
        super().__init__(input_size, output_size)
        self.hidden_size = hidden_size
        self.embedding = SinePositionalEncoding(input_size) if positional else None
        self.norm = nn.LayerNorm(input_size)
        self.qkv = nn.Linear(input_size, 3 * hidden_size, bias=False)  # POPGym's key, query, value in one
        self.ff = nn.Sequential(
            nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, hidden_size), nn.ReLU()
        )
        self.shortcut = nn.Linear(input_size, hidden_size)
        self.unmap = nn.Linear(hidden_size, output_size)

    def _zeros(self, *shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.zeros(shape, dtype=dtype, device=self.unmap.weight.device)

    def initial_state(self) -> State:
        return {"t": self._zeros(1, dtype=torch.int32)} if self.embedding is not None else {}

    @abstractmethod
    def attend(
        self, x: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: State
    ) -> tuple[torch.Tensor, State]:
        """The memory: (normalised input, q, k, v [B, T, h], state) -> (a [B, T, h], memory state)."""

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        new_state: State = {}
        if self.embedding is not None:
            x = self.embedding(x, state["t"][:, 0])
            new_state["t"] = state["t"] + x.shape[1]
        x = self.norm(x)
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        a, memory = self.attend(x, q, k, v, state)
        return self.unmap(self.ff(a) + self.shortcut(x)), {**memory, **new_state}


class LinearAttentionCore(_AttentionBlock):
    """POPGym's LinearAttention ("FART"): the linear transformer of Katharopoulos et al. 2020,
    "Transformers are RNNs", with phi(x) = elu(x) + 1, in POPGym's block (module docstring):

        S_t = S_{t-1} + phi(k_t) v_t^T        [h, h]
        z_t = z_{t-1} + phi(k_t)              [h]
        a_t = phi(q_t)^T S_t / (phi(q_t)^T z_t + 1e-5)

    h = round(sqrt(output_size) - 1) (15 for 256) as POPGym, so S and z hold about output_size floats.
    Parallel over T: z rides along as an extra value column of ones, and ``causal_linear_attention``
    computes both sums chunk by chunk.
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        *,
        hidden_size: int | None = None,
        positional: bool = True,
        chunk_size: int = 32,
    ) -> None:
        super().__init__(input_size, output_size, hidden_size or round(math.sqrt(output_size) - 1), positional)
        self.chunk_size = chunk_size

    def initial_state(self) -> State:
        h = self.hidden_size
        return {"S": self._zeros(h, h), "z": self._zeros(h), **super().initial_state()}

    def attend(
        self, x: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: State
    ) -> tuple[torch.Tensor, State]:
        q, k = F.elu(q) + 1.0, F.elu(k) + 1.0
        v1 = torch.cat([v, torch.ones_like(v[..., :1])], -1)  # [v, 1]: the last column sums z
        s0 = torch.cat([state["S"], state["z"].unsqueeze(-1)], -1)
        out, s = causal_linear_attention(q, k, v1, s0, self.chunk_size)
        return out[..., :-1] / (out[..., -1:] + 1e-5), {"S": s[..., :-1], "z": s[..., -1]}


class FastWeightProgrammerCore(_AttentionBlock):
    """POPGym's FastWeightProgrammer: Schlag, Irie, Schmidhuber 2021, "Linear Transformers Are Secretly
    Fast Weight Programmers", in POPGym's block (module docstring) and POPGym's variant of it, which
    (its docstring says) drops the delta rule and DPFP: phi(x) = ReLU(x) / (sum_i ReLU(x)_i + 1e-5)
    (the paper's sum normalisation) and the purely additive fast-weight update

        W_t = W_{t-1} + v_t phi(k_t)^T        [h, h]
        a_t = W_t phi(q_t)

    h = round(sqrt(output_size)) (16 for 256) as POPGym, so W holds output_size floats. Parallel over T
    via ``causal_linear_attention`` (with S = W^T).

    ``delta_rule=True`` gives the paper's delta-rule update instead (not POPGym's; same phi, a learned
    per-step write strength beta_t = sigmoid(w_beta^T x_t + b)), a loop over T:

        W_t = W_{t-1} + beta_t (v_t - W_{t-1} phi(k_t)) phi(k_t)^T
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        *,
        hidden_size: int | None = None,
        positional: bool = True,
        delta_rule: bool = False,
        chunk_size: int = 32,
    ) -> None:
        super().__init__(input_size, output_size, hidden_size or round(math.sqrt(output_size)), positional)
        self.beta = nn.Linear(input_size, 1) if delta_rule else None
        self.chunk_size = chunk_size

    def initial_state(self) -> State:
        return {"W": self._zeros(self.hidden_size, self.hidden_size), **super().initial_state()}

    @staticmethod
    def phi(x: torch.Tensor) -> torch.Tensor:
        x = x.relu()
        return x / (x.sum(-1, keepdim=True) + 1e-5)

    def attend(
        self, x: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: State
    ) -> tuple[torch.Tensor, State]:
        q, k = self.phi(q), self.phi(k)
        if self.beta is None:
            a, s = causal_linear_attention(q, k, v, state["W"].mT, self.chunk_size)
            return a, {"W": s.mT}
        beta = torch.sigmoid(self.beta(x))
        beta_v, beta_k, k_rows = (beta * v).unsqueeze(-1), (beta * k).unsqueeze(-1), k.unsqueeze(-2)
        w, ws = state["W"], []
        for beta_v_t, beta_k_t, k_row in zip(beta_v.unbind(1), beta_k.unbind(1), k_rows.unbind(1), strict=True):
            error = torch.baddbmm(beta_v_t, w, beta_k_t, alpha=-1.0)  # beta_t (v_t - W_{t-1} phi(k_t))  [B, h, 1]
            w = torch.baddbmm(w, error, k_row)  # W_t = W_{t-1} + error phi(k_t)^T
            ws.append(w)
        return torch.einsum("btij,btj->bti", torch.stack(ws, 1), q), {"W": w}
