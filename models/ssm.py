"""State-space memory cores: the Legendre Memory Unit (LMU) and the diagonal state space model (S4D).

Both follow the POPGym baselines (Morad et al., ICLR 2023) in sizes, initialisation and layout; each
class docstring says which choices are POPGym's.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.core import MemoryCore, State


def legendre_zoh(order: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-order-hold discretisation (step 1) of the LMU's Legendre delay system, in float64.

    Continuous system (Voelker et al. 2019, eq. 2), for i, j = 0..order-1:
        A_ij = (2i + 1) / theta * (-1 if i < j else (-1)^(i - j + 1)),   B_i = (2i + 1) / theta * (-1)^i.
    ZOH: expm([[A, B], [0, 0]]) = [[Abar, Bbar], [0, 1]].
    Returns Abar [order, order] and Bbar [order].
    """
    q = torch.arange(order, dtype=torch.float64)
    r = (2 * q + 1) / theta
    i, j = q[:, None], q[None, :]
    a = r[:, None] * torch.where(i < j, -1.0, (-1.0) ** (i - j + 1))
    b = r * (-1.0) ** q
    augmented = torch.zeros(order + 1, order + 1, dtype=torch.float64)
    augmented[:order, :order] = a
    augmented[:order, order] = b
    discrete = torch.linalg.matrix_exp(augmented)
    return discrete[:order, :order], discrete[:order, order]


class LMUCore(MemoryCore):
    """Legendre Memory Unit (Voelker, Kajić, Eliasmith, NeurIPS 2019), the recurrent cell of the paper.

    Per step (eqs. 4, 6, 7 of the paper), with a scalar memory input u_t:
        u_t = e_x^T x_t + e_h^T h_{t-1} + e_m^T m_{t-1}
        m_t = Abar m_{t-1} + Bbar u_t                   (Legendre (A, B), zero-order hold, step 1)
        h_t = tanh(W_x x_t + W_h h_{t-1} + W_m m_t)     (y_t = h_t)

    POPGym's choices, matched (popgym 1.0.7, baselines/ray_models/ray_lmu.py and models/lmu.py): the
    sequential cell, not the parallel LMU-FFT variant of Chilkuri & Eliasmith 2021; hidden size = memory
    order d = hidden_size (256, here ``output_size``); theta = 64; Abar, Bbar fixed (learn_a = learn_b =
    False); no biases; e_x, e_h LeCun-uniform, e_m zero, W_x, W_h, W_m Xavier-normal.

    The hidden state feeds back into the memory input, so the model is inherently sequential: the
    input projections run in parallel over T and the recurrence is a loop over T.
    State: ``h`` [output_size] and ``m`` [memory_size], float32.
    """

    def __init__(self, input_size: int, output_size: int, *, memory_size: int | None = None, theta: float = 64.0):
        super().__init__(input_size, output_size)
        self.memory_size = output_size if memory_size is None else memory_size
        self.theta = theta
        a_bar, b_bar = legendre_zoh(self.memory_size, theta)
        self.register_buffer("a_bar", a_bar.float())
        self.register_buffer("b_bar", b_bar.float())
        self.e_x = nn.Linear(input_size, 1, bias=False)
        self.e_h = nn.Linear(output_size, 1, bias=False)
        self.e_m = nn.Linear(self.memory_size, 1, bias=False)
        self.w_x = nn.Linear(input_size, output_size, bias=False)
        self.w_h = nn.Linear(output_size, output_size, bias=False)
        self.w_m = nn.Linear(self.memory_size, output_size, bias=False)
        for encoder in (self.e_x, self.e_h):
            bound = math.sqrt(3.0 / encoder.in_features)  # LeCun uniform
            nn.init.uniform_(encoder.weight, -bound, bound)
        nn.init.zeros_(self.e_m.weight)
        for kernel in (self.w_x, self.w_h, self.w_m):
            nn.init.xavier_normal_(kernel.weight)

    def initial_state(self) -> State:
        device = self.a_bar.device
        return {"h": torch.zeros(self.output_size, device=device), "m": torch.zeros(self.memory_size, device=device)}

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h, m = state["h"], state["m"]
        u_x, h_x = self.e_x(x), self.w_x(x)  # input terms of u_t and h_t for all steps at once
        outputs = []
        for t in range(x.shape[1]):
            u = u_x[:, t] + self.e_h(h) + self.e_m(m)  # [B, 1]
            m = F.linear(m, self.a_bar) + u * self.b_bar
            h = torch.tanh(h_x[:, t] + self.w_h(h) + self.w_m(m))
            outputs.append(h)
        return torch.stack(outputs, dim=1), {"h": h, "m": m}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, memory_size={self.memory_size}, theta={self.theta}"


class S4DCore(MemoryCore):
    """Diagonal state space model S4D (Gu, Gupta, Goel, Ré 2022), laid out as POPGym's "S4D" baseline.

    With H = output_size channels, each an independent single-input SSM of N/2 complex modes
    (conjugate pairs folded: y = 2 Re(C s)), step size dt_h = exp(log_dt_h) and ZOH discretisation:
        u_t   = W_in x_t + b_in                                  ([H], POPGym's input map)
        Abar  = exp(dt A),  Bbar = (exp(dt A) - 1) / A * B         (A complex diagonal, Re A = -exp(.) < 0)
        s_t   = Abar s_{t-1} + Bbar u_t                           (state, complex [H, N/2])
        v_t   = 2 Re(C s_t) + D u_t
        y_t   = GLU(W_out GELU(v_t) + b_out)                      (W_out: H -> 2 output_size)

    POPGym's choices, matched (popgym 1.0.7, baselines/ray_models/ray_s4d.py and models/s4d.py): a linear
    map input -> hidden_size (256, here ``output_size``), then ONE S4 block (no residual, no LayerNorm, no
    dropout) with d_model = hidden_size, d_state N = round(sqrt(hidden_size) / 2) * 2 = 16 (so 8 complex
    modes per channel), mode "diag", measure "diag-lin" (S4D-Lin: A_n = -1/2 + i pi n), ZOH, real part
    parameterised as -exp(.), B = 1 (learned), C ~ complex normal (learned), D ~ normal, log dt ~
    U[log 1e-3, log 1e-1], activation GELU and output GLU (the S4 block's defaults), one SSM per channel.
    POPGym's training path ignores the carried-in state; here it is included, so chunked runs equal one pass.

    Training path (T > 1) is parallel over T: the causal kernel K_l = 2 Re(C Abar^l Bbar) is applied by FFT
    convolution, the carried-in state adds 2 Re(C Abar^{t+1} s_0), and the final state is
    Abar^T s_0 + sum_k Abar^{T-1-k} Bbar u_k. T = 1 is the direct recurrence.
    State: ``s`` complex64 [output_size, N/2].
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        *,
        d_state: int | None = None,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
    ):
        super().__init__(input_size, output_size)
        hidden = output_size
        self.d_state = round(math.sqrt(hidden) / 2) * 2 if d_state is None else d_state
        modes = self.d_state // 2
        self.map = nn.Linear(input_size, hidden)
        self.log_dt = nn.Parameter(torch.empty(hidden).uniform_(math.log(dt_min), math.log(dt_max)))
        self.log_neg_a_real = nn.Parameter(torch.full((hidden, modes), math.log(0.5)))
        self.a_imag = nn.Parameter(math.pi * torch.arange(modes, dtype=torch.float32).expand(hidden, modes).clone())
        # Complex B and C kept as real (re, im) pairs: optimisers and RLlib only see real parameters.
        self.b = nn.Parameter(torch.view_as_real(torch.ones(hidden, modes, dtype=torch.complex64)).clone())
        self.c = nn.Parameter(torch.view_as_real(torch.randn(hidden, modes, dtype=torch.complex64)).clone())
        self.d = nn.Parameter(torch.randn(hidden))
        self.out = nn.Linear(hidden, 2 * output_size)

    def initial_state(self) -> State:
        return {"s": torch.zeros(self.output_size, self.d_state // 2, dtype=torch.complex64, device=self.d.device)}

    def discretise(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """ZOH-discretised diagonal (A, B) and dt * A, each complex [H, N/2]."""
        a = torch.complex(-torch.exp(self.log_neg_a_real), self.a_imag)
        dt_a = a * torch.exp(self.log_dt)[:, None]
        a_bar = torch.exp(dt_a)
        return a_bar, (a_bar - 1) / a * torch.view_as_complex(self.b), dt_a

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        u = self.map(x)  # [B, T, H]
        s0 = state["s"]  # [B, H, N/2]
        c = torch.view_as_complex(self.c)
        a_bar, b_bar, dt_a = self.discretise()
        steps = x.shape[1]
        if steps == 1:
            s = a_bar * s0 + b_bar * u[:, 0, :, None]
            v = 2 * (c * s).sum(-1).real[:, None] + self.d * u
        else:
            lags = torch.arange(steps, device=x.device)
            # Abar^l = exp(l dt A) as magnitude and phase (much faster than a complex exp on CPU), [H, N/2, T]
            powers = torch.polar(torch.exp(dt_a.real[..., None] * lags), dt_a.imag[..., None] * lags)
            kernel = 2 * torch.einsum("hn,hnl->hl", c * b_bar, powers).real  # K_l, [H, T]
            u_ch = u.transpose(1, 2)  # [B, H, T]
            n_fft = 2 * steps  # zero padding makes the circular convolution causal
            spectrum = torch.fft.rfft(u_ch, n=n_fft) * torch.fft.rfft(kernel, n=n_fft)
            conv = torch.fft.irfft(spectrum, n=n_fft)[..., :steps]  # sum_k K_{t-k} u_k
            from_state = 2 * torch.einsum("bhn,hnl->bhl", s0 * c * a_bar, powers).real  # 2 Re(C Abar^{t+1} s_0)
            v = (conv + from_state).transpose(1, 2) + self.d * u
            driven = torch.einsum("bhl,hnl->bhn", u_ch.flip(-1).to(powers.dtype), powers)  # sum_k Abar^{T-1-k} u_k
            s = a_bar * powers[..., -1] * s0 + b_bar * driven
        return F.glu(self.out(F.gelu(v)), dim=-1), {"s": s}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, d_state={self.d_state}"
