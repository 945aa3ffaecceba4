"""POPGym's linear-attention memory baselines: LinearAttention (FART) and FastWeightProgrammer (FWP).

Both are POPGym's single block as the paper ran it (POPGym 689d89b: baselines/models/linear_attention.py,
fwp.py and ray_models/ray_linear_attention.py, ray_fwp.py), around a memory that differs per model:

    x  <- LayerNorm(x)                          (with affine parameters)
    q, k, v = W_q x, W_k x, W_v x              [h] each, no bias
    a  = memory(q, k, v)                        [h]
    y  = unmap(a)                               Linear(h, output_size)

with h = round(sqrt(output_size)) (16 for 256), so the memory holds about output_size floats, no
feed-forward or shortcut block (popgym 1.0.7 added both), and torch's default initialisation. The sine
embedding of the episode step is the base model's (models.network). Core parameters for 128 -> 256:
3 * 128 * 16 (q, k, v) + 2 * 128 (LayerNorm) + 16 * 256 + 256 (unmap) = 10,752, as POPGym's.
"""

import math
from abc import abstractmethod

import torch
from torch import nn
from torch.nn import functional as F

from models.core import MemoryCore, State


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
    """POPGym's block (module docstring) around ``attend``."""

    def __init__(
        self, input_size: int, output_size: int, *, hidden_size: int | None = None, chunk_size: int = 32
    ) -> None:
        super().__init__(input_size, output_size)
        self.hidden_size = hidden_size or round(math.sqrt(output_size))
        self.chunk_size = chunk_size
        self.norm = nn.LayerNorm(input_size)
        self.qkv = nn.Linear(input_size, 3 * self.hidden_size, bias=False)  # POPGym's query, key, value in one
        self.unmap = nn.Linear(self.hidden_size, output_size)

    def _zeros(self, *shape: int) -> torch.Tensor:
        return torch.zeros(shape, device=self.unmap.weight.device)

    @abstractmethod
    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """The memory: (q, k, v [B, T, h], state) -> (a [B, T, h], the state after the last step)."""

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        q, k, v = self.qkv(self.norm(x)).chunk(3, dim=-1)
        a, state = self.attend(q, k, v, state)
        return self.unmap(a), state

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, hidden_size={self.hidden_size}"


class LinearAttentionCore(_AttentionBlock):
    """POPGym's LinearAttention ("FART"): the linear transformer of Katharopoulos et al. 2020,
    "Transformers are RNNs", with phi(x) = elu(x) + 1, in POPGym's block (module docstring):

        S_t = S_{t-1} + phi(k_t) v_t^T        [h, h]
        z_t = z_{t-1} + phi(k_t)              [h]
        a_t = phi(q_t)^T S_t / (d_t + 1e-5)

    with the denominator d_t that ``denominator`` names:

    - ``"sums"`` (default): d_t = (sum_i phi(q_t)_i)(sum_l z_t,l), what POPGym 689d89b computed and the paper
      ran (``einsum("bti, btl -> bt", Q, Z)``: two different indices, so a product of two sums);
    - ``"dot"``: d_t = phi(q_t)^T z_t, the paper of Katharopoulos et al. and POPGym's fix (d7b0b42, 2024,
      in popgym 1.0.7), registered as ``LinearAttentionDot``.

    Parallel over T: z rides along as an extra value column of ones, and ``causal_linear_attention``
    computes both sums chunk by chunk. State: ``S`` [h, h], ``z`` [h].
    """

    DENOMINATORS = ("sums", "dot")

    def __init__(
        self,
        input_size: int,
        output_size: int,
        *,
        hidden_size: int | None = None,
        chunk_size: int = 32,
        denominator: str = "sums",
    ) -> None:
        if denominator not in self.DENOMINATORS:
            raise ValueError(f"denominator: expected one of {self.DENOMINATORS}, got {denominator!r}")
        super().__init__(input_size, output_size, hidden_size=hidden_size, chunk_size=chunk_size)
        self.denominator = denominator

    def initial_state(self) -> State:
        h = self.hidden_size
        return {"S": self._zeros(h, h), "z": self._zeros(h)}

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        q, k = F.elu(q) + 1.0, F.elu(k) + 1.0
        v1 = torch.cat([v, torch.ones_like(v[..., :1])], -1)  # [v, 1]: the last column sums z
        s0 = torch.cat([state["S"], state["z"].unsqueeze(-1)], -1)
        out, s = causal_linear_attention(q, k, v1, s0, self.chunk_size)
        if self.denominator == "dot":
            d = out[..., -1:]  # phi(q_t)^T z_t
        else:  # sum_l z_t,l = sum_l z_0,l + the running sum of sum_l phi(k_s)_l
            z_sum = state["z"].sum(-1, keepdim=True).unsqueeze(1) + k.sum(-1, keepdim=True).cumsum(1)
            d = q.sum(-1, keepdim=True) * z_sum
        return out[..., :-1] / (d + 1e-5), {"S": s[..., :-1], "z": s[..., -1]}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, denominator={self.denominator!r}"


class FastWeightProgrammerCore(_AttentionBlock):
    """POPGym's FastWeightProgrammer: Schlag, Irie, Schmidhuber 2021, "Linear Transformers Are Secretly
    Fast Weight Programmers", as POPGym implemented it (no delta rule, no DPFP; its docstring says so):
    phi(x) = ReLU(x) / (sum_i ReLU(x)_i + 1e-5) (the paper's sum normalisation), the additive fast-weight
    update and POPGym's readout, which reads W through its transpose:

        W_t = W_{t-1} + v_t phi(k_t)^T        [h, h]
        a_t = W_t^T phi(q_t)                  (the paper: W_t phi(q_t)); so a_t = sum_s phi(k_s) (v_s . phi(q_t))

    Parallel over T via ``causal_linear_attention`` with the roles of k and v swapped. State: ``W`` [h, h].
    """

    def initial_state(self) -> State:
        return {"W": self._zeros(self.hidden_size, self.hidden_size)}

    @staticmethod
    def phi(x: torch.Tensor) -> torch.Tensor:
        x = x.relu()
        return x / (x.sum(-1, keepdim=True) + 1e-5)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        a, w = causal_linear_attention(self.phi(q), v, self.phi(k), state["W"], self.chunk_size)
        return a, {"W": w}
