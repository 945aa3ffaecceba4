"""FFA, the fast and forgetful aggregator: the recurrent core of FFM."""

import math

import torch
from torch import nn

from ffm.scan import chunked_scan


class FFA(nn.Module):
    """S_t = gamma * S_{t-1} + u_t 1_c^T with gamma = exp(a 1_c^T + i 1_m w^T) (paper, Eq. 2).

    a in R^m (a <= 0) sets how fast each of the m traces forgets, w in R^c the c oscillation
    frequencies every trace is read at. Initialisation: trace j falls to 1% after between min_period
    and max_period steps, a = linspace(ln(0.01) / min_period, ln(0.01) / max_period, m), and
    w = 2 pi / linspace(min_period, max_period, c). a is used as min(a, 0) (a trace never grows), with
    no lower bound: any decay can be learnt, the parallel scan stays exact (see ffm.scan).

    Ablations: ``decay=False`` fixes a = 0 (no forgetting), ``oscillate=False`` fixes w = 0 (real
    traces), ``learn_decay=False`` / ``learn_oscillate=False`` freeze a / w at their initial values.
    """

    def __init__(
        self,
        memory_size: int,
        context_size: int,
        min_period: float = 1,
        max_period: float = 1024,
        oscillate: bool = True,
        learn_oscillate: bool = True,
        decay: bool = True,
        learn_decay: bool = True,
    ) -> None:
        super().__init__()
        if memory_size < 1 or context_size < 1:
            raise ValueError(f"memory_size and context_size must be >= 1, got {memory_size} and {context_size}")
        if not 0 < min_period <= max_period:
            raise ValueError(
                f"expected 0 < min_period <= max_period, got min_period={min_period}, max_period={max_period}"
            )
        self.memory_size = memory_size
        self.context_size = context_size
        a = torch.linspace(math.log(0.01) / min_period, math.log(0.01) / max_period, memory_size)
        w = 2 * math.pi / torch.linspace(min_period, max_period, context_size)
        self._register("a", a if decay else torch.zeros(memory_size), decay and learn_decay)
        self._register("w", w if oscillate else torch.zeros(context_size), oscillate and learn_oscillate)
        self._gamma_key: tuple | None = None  # gamma() cache for inference, see there

    def _register(self, name: str, value: torch.Tensor, learnable: bool) -> None:
        if learnable:
            self.register_parameter(name, nn.Parameter(value))
        else:
            self.register_buffer(name, value)

    def log_gamma(self) -> torch.Tensor:
        """a 1_c^T + i 1_m w^T as complex128 [m, c] (float64 keeps w * t exact for long sequences)."""
        a = self.a.clamp(max=0).double()
        return torch.complex(
            a[:, None].expand(-1, self.context_size), self.w.double()[None].expand(self.memory_size, -1)
        )

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Zero state [batch_size, m, c], complex64 (complex128 for a float64 module)."""
        shape = (batch_size, self.memory_size, self.context_size)
        return torch.zeros(shape, dtype=self.a.dtype.to_complex(), device=self.a.device if device is None else device)

    def forward(self, u: torch.Tensor, state: torch.Tensor, resets: torch.Tensor | None = None) -> torch.Tensor:
        """States S_0..S_{T-1}, complex [B, T, m, c], from u [B, T, m], state [B, m, c], resets [B, T].

        T = 1 takes a single-step path (S = gamma * S_prev + u 1_c^T); longer sequences the parallel
        chunked scan.
        """
        if u.shape[1] > 1:
            return chunked_scan(u, self.log_gamma(), state, resets)
        if resets is not None:
            state = state * ~resets[:, :, None]
        return (self.gamma() * state[:, None]).add_(u[:, :, :, None])

    def gamma(self) -> torch.Tensor:
        """exp(a 1_c^T + i 1_m w^T), [m, c] complex of the parameters' precision.

        Without autograd (acting in an environment) it is cached until a or w change: their version
        counters move with every in-place update (optimizer steps, load_state_dict).
        """
        if torch.is_grad_enabled():
            return self._gamma()
        key = (self.a.data_ptr(), self.w.data_ptr(), self.a._version, self.w._version, self.a.dtype, self.a.device)
        if key != self._gamma_key:
            self._gamma_key, self._gamma_cached = key, self._gamma()
        return self._gamma_cached

    def _gamma(self) -> torch.Tensor:
        return torch.polar(torch.exp(self.a.clamp(max=0))[:, None], self.w[None, :])

    def extra_repr(self) -> str:
        return f"memory_size={self.memory_size}, context_size={self.context_size}"
