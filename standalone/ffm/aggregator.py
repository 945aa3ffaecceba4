"""FFA, the fast and forgetful aggregator: the recurrent core of FFM."""

import math

import torch
from torch import nn

from ffm.scan import chunked_scan

FASTEST_DECAY = math.log(torch.finfo(torch.float64).max) / 1024 - 0.01
"""The authors' floor on -a, 0.683147: ln(float64 max) / max_len - 0.01 with max_len = 1024, the bound
that kept their exp(-a t) rescaling finite over a 1024-step chunk in float64. A trace at the floor falls
to 1% in 6.7 steps."""
SLOWEST_DECAY = 1e-8
"""The authors' ceiling on a: a <= -1e-8, so a trace never grows (1% after 4.6e8 steps at the ceiling)."""
INITIAL_MARGIN = 0.01
"""How far inside the floor the fastest trace starts (the authors' fudge factor)."""


class FFA(nn.Module):
    """S_t = gamma * S_{t-1} + u_t 1_c^T with gamma = exp(a 1_c^T + i 1_m w^T) (paper, Eq. 2).

    a in R^m (a < 0) sets how fast each of the m traces forgets, w in R^c the c oscillation
    frequencies every trace is read at. As the authors' code (proroklab/ffm b3f94d2, aggregations.py):

        a_0 = linspace(a_first, max(ln(0.01) / max_period, a_first), m)   the last trace: 1% after max_period
        a_first = -(min(fastest_decay, 0.683147) - 0.01)                   0.01 inside the floor
        w_0 = 2 pi / linspace(min_period, max_period, c)
        a used = clamp(a, -fastest_decay, -1e-8)                           zero gradient outside

    With the default floor, fastest_decay = ln(float64 max) / 1024 - 0.01 = 0.683147 (``FASTEST_DECAY``),
    a_0 = linspace(-0.673147, -0.004497, 32) for m = 32: the fastest trace starts at 6.8 steps to 1%.
    The floor was the authors' guard against overflow in their rescaled scan; ours has no rescaling and is
    exact for any a (see ffm.scan), so ``fastest_decay=math.inf`` lifts it (any decay can then be learnt;
    a_0 still starts at -0.673147, the fastest trace never starts beyond the authors' value).

    Ablations: ``decay=False`` fixes a = 0 (used as -1e-8: nothing is forgotten), ``oscillate=False``
    fixes w = 0 (real traces), ``learn_decay=False`` / ``learn_oscillate=False`` freeze a / w at their
    initial values.
    """

    def __init__(
        self,
        memory_size: int,
        context_size: int,
        min_period: float = 1,
        max_period: float = 1024,
        fastest_decay: float = FASTEST_DECAY,
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
        if not fastest_decay > INITIAL_MARGIN:
            raise ValueError(f"expected fastest_decay > {INITIAL_MARGIN}, got {fastest_decay}")
        self.memory_size = memory_size
        self.context_size = context_size
        self.fastest_decay = fastest_decay
        fastest_initial = -(min(fastest_decay, FASTEST_DECAY) - INITIAL_MARGIN)
        slowest_initial = max(math.log(0.01) / max_period, fastest_initial)
        a = torch.linspace(fastest_initial, slowest_initial, memory_size)
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
        a = self.decay_rates().double()
        return torch.complex(
            a[:, None].expand(-1, self.context_size), self.w.double()[None].expand(self.memory_size, -1)
        )

    def decay_rates(self) -> torch.Tensor:
        """a as used: clamped to [-fastest_decay, -1e-8], zero gradient outside (the authors' clamp)."""
        return self.a.clamp(-self.fastest_decay, -SLOWEST_DECAY)

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> torch.Tensor:
        """Zero state [batch_size, m, c], complex64 (complex128 for a float64 module)."""
        shape = (batch_size, self.memory_size, self.context_size)
        return torch.zeros(
            shape,
            dtype=torch.promote_types(self.a.dtype, torch.complex64),
            device=self.a.device if device is None else device,
        )

    def forward(self, u: torch.Tensor, state: torch.Tensor, resets: torch.Tensor | None = None) -> torch.Tensor:
        """States S_0..S_{T-1}, complex [B, T, m, c], from u [B, T, m], state [B, m, c], resets [B, T].

        T = 1 takes a single-step path (S = gamma * S_prev + u 1_c^T); other lengths the parallel chunked
        scan.
        """
        if u.shape[1] != 1:
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
        return torch.polar(torch.exp(self.decay_rates())[:, None], self.w[None, :])

    def extra_repr(self) -> str:
        return (
            f"memory_size={self.memory_size}, context_size={self.context_size}, fastest_decay={self.fastest_decay:.6g}"
        )
