"""The Differentiable Neural Computer (POPGym's "DiffNC") as a memory core.

Graves et al., "Hybrid computing using a neural network with dynamic external memory", Nature 538 (2016),
Methods section. Equation names below follow the paper; sub-steps are module-level functions so the tests
can check each one against a direct float64 transcription.
"""

import torch
import torch.nn.functional as F
from torch import nn

from models.core import MemoryCore, State

_EPS = 1e-6


def content_weighting(memory: torch.Tensor, keys: torch.Tensor, strengths: torch.Tensor) -> torch.Tensor:
    """C(M, k, beta)[i] = softmax_i(beta * cos(k, M[i])).

    memory [B, N, W], keys [B, H, W], strengths [B, H] -> weightings [B, H, N].
    """
    cosine = F.normalize(keys, dim=-1, eps=_EPS) @ F.normalize(memory, dim=-1, eps=_EPS).transpose(-1, -2)
    return torch.softmax(strengths.unsqueeze(-1) * cosine, dim=-1)


def update_usage(
    usage: torch.Tensor, write_weights: torch.Tensor, read_weights: torch.Tensor, free_gates: torch.Tensor
) -> torch.Tensor:
    """psi_t = prod_i (1 - f^i_t w^{r,i}_{t-1});  u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} * w^w_{t-1}) * psi_t.

    usage [B, N], write_weights [B, N], read_weights [B, R, N], free_gates [B, R] -> usage [B, N].
    """
    retention = torch.prod(1 - free_gates.unsqueeze(-1) * read_weights, dim=-2)
    return (usage + write_weights - usage * write_weights) * retention


def allocation_weighting(usage: torch.Tensor) -> torch.Tensor:
    """phi_t = slots sorted by ascending usage;  a_t[phi_t[j]] = (1 - u_t[phi_t[j]]) prod_{i<j} u_t[phi_t[i]].

    usage [B, N] -> allocation weighting [B, N]. Ties keep slot order (stable sort).
    """
    sorted_usage, free_list = torch.sort(usage, dim=-1, stable=True)
    used_before = torch.cumprod(torch.cat([torch.ones_like(usage[..., :1]), sorted_usage[..., :-1]], dim=-1), dim=-1)
    return torch.zeros_like(usage).scatter(-1, free_list, (1 - sorted_usage) * used_before)


def update_link(link: torch.Tensor, precedence: torch.Tensor, write_weights: torch.Tensor) -> torch.Tensor:
    """L_t[i, j] = (1 - w^w_t[i] - w^w_t[j]) L_{t-1}[i, j] + w^w_t[i] p_{t-1}[j];  L_t[i, i] = 0.

    link [B, N, N], precedence [B, N] (p_{t-1}), write_weights [B, N] -> link [B, N, N].
    """
    w_i, w_j = write_weights.unsqueeze(-1), write_weights.unsqueeze(-2)
    link = (1 - w_i - w_j) * link + w_i * precedence.unsqueeze(-2)
    return link * (1 - torch.eye(link.shape[-1], dtype=link.dtype, device=link.device))


def update_precedence(precedence: torch.Tensor, write_weights: torch.Tensor) -> torch.Tensor:
    """p_t = (1 - sum_i w^w_t[i]) p_{t-1} + w^w_t.  precedence, write_weights [B, N] -> [B, N]."""
    return (1 - write_weights.sum(-1, keepdim=True)) * precedence + write_weights


class DiffNCCore(MemoryCore):
    """Differentiable Neural Computer (Graves et al., Nature 2016): POPGym's "DiffNC" baseline.

    POPGym wraps the ``dnc`` package (ixaxaar/pytorch-dnc) with hidden_size=256, one LSTM controller layer,
    read_heads=4, cell_size (word width) 16 and nr_cells = hidden_size // cell_size (16 slots); it replaces the
    package's output layer by Linear(hidden + R*W, hidden_size) (popgym/baselines/ray_models/ray_diffnc.py).
    Defaults here match: controller of ``output_size`` LSTM units, ``word_size`` 16, ``read_heads`` 4,
    ``num_slots`` = output_size // word_size, zero initial state. One write head, as in the paper.

    Per step t (x_t input, r_{t-1} the R read vectors of the previous step):
        h_t, c_t = LSTM([x_t, r_{t-1}], (h_{t-1}, c_{t-1}))
        xi_t     = W_xi h_t  -> read keys k^{r,i}, strengths beta^{r,i} = oneplus(.), write key k^w,
                   beta^w = oneplus(.), erase e = sigmoid(.), write vector v, free gates f^i = sigmoid(.),
                   allocation gate g^a = sigmoid(.), write gate g^w = sigmoid(.), read modes pi^i = softmax(.)
        u_t      = (u_{t-1} + w^w_{t-1} - u_{t-1} * w^w_{t-1}) * prod_i (1 - f^i w^{r,i}_{t-1})
        a_t      = allocation over slots sorted by ascending u_t
        w^w_t    = g^w (g^a a_t + (1 - g^a) C(M_{t-1}, k^w, beta^w))
        M_t      = M_{t-1} * (1 - w^w_t e^T) + w^w_t v^T
        L_t      = (1 - w^w_t[i] - w^w_t[j]) L_{t-1} + w^w_t[i] p_{t-1}[j], zero diagonal
        p_t      = (1 - sum w^w_t) p_{t-1} + w^w_t
        w^{r,i}_t = pi^i[0] L_t^T w^{r,i}_{t-1} + pi^i[1] C(M_t, k^{r,i}, beta^{r,i}) + pi^i[2] L_t w^{r,i}_{t-1}
        r^i_t    = M_t^T w^{r,i}_t
        y_t      = W_y [h_t, r_t]
    Every read depends on the previous write, so the model is a loop over T; only the output layer runs
    over all steps at once. Two departures from the package, both towards the paper: the controller sees
    r_{t-1} at every step (the package feeds the read vectors carried in from the previous call to every
    step of a sequence), and its clip of the controller output at +-20 is left out (it never binds on an
    LSTM's h in [-1, 1]).
    """

    def __init__(
        self,
        input_size: int,
        output_size: int,
        *,
        word_size: int = 16,
        read_heads: int = 4,
        num_slots: int | None = None,
    ) -> None:
        super().__init__(input_size, output_size)
        self.hidden_size = output_size
        self.word_size = word_size
        self.read_heads = read_heads
        self.num_slots = num_slots if num_slots is not None else output_size // word_size
        r, w = read_heads, word_size
        # read keys, read strengths, write key, write strength, erase, write vector, free gates,
        # allocation gate, write gate, read modes
        self.interface_sizes = [r * w, r, w, 1, w, w, r, 1, 1, 3 * r]
        self.controller = nn.LSTMCell(input_size + r * w, self.hidden_size)
        self.interface = nn.Linear(self.hidden_size, sum(self.interface_sizes))
        self.output = nn.Linear(self.hidden_size + r * w, output_size)

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Unbatched shape of each state tensor (all float32)."""
        n, w, r, h = self.num_slots, self.word_size, self.read_heads, self.hidden_size
        return {
            "h": (h,),
            "c": (h,),
            "memory": (n, w),
            "usage": (n,),
            "link": (n, n),
            "precedence": (n,),
            "read_weights": (r, n),
            "write_weights": (n,),
            "read_vectors": (r, w),
        }

    def initial_state(self) -> State:
        device = self.output.weight.device
        return {name: torch.zeros(shape, device=device) for name, shape in self.state_shapes().items()}

    def memory_step(self, xi: torch.Tensor, state: State) -> State:
        """One write then read of the memory, given the interface vector xi [B, |xi|]: the new memory state."""
        b, r, w = xi.shape[0], self.read_heads, self.word_size
        read_keys, read_beta, write_key, write_beta, erase, write_vec, free, alloc_gate, write_gate, modes = xi.split(
            self.interface_sizes, dim=-1
        )
        read_keys = read_keys.view(b, r, w)
        read_beta, write_beta = 1 + F.softplus(read_beta), 1 + F.softplus(write_beta)
        erase, free = erase.sigmoid(), free.sigmoid()
        alloc_gate, write_gate = alloc_gate.sigmoid(), write_gate.sigmoid()
        modes = torch.softmax(modes.view(b, r, 3), dim=-1)

        memory, read_weights = state["memory"], state["read_weights"]
        usage = update_usage(state["usage"], state["write_weights"], read_weights, free)
        write_content = content_weighting(memory, write_key.unsqueeze(1), write_beta).squeeze(1)
        write_weights = write_gate * (alloc_gate * allocation_weighting(usage) + (1 - alloc_gate) * write_content)
        write_column = write_weights.unsqueeze(-1)
        memory = memory * (1 - write_column * erase.unsqueeze(-2)) + write_column * write_vec.unsqueeze(-2)
        link = update_link(state["link"], state["precedence"], write_weights)
        precedence = update_precedence(state["precedence"], write_weights)

        backward = read_weights @ link  # b^i[j] = sum_k L[k, j] w^{r,i}[k]
        forward = read_weights @ link.transpose(-1, -2)  # f^i[j] = sum_k L[j, k] w^{r,i}[k]
        read_content = content_weighting(memory, read_keys, read_beta)
        read_weights = modes[..., :1] * backward + modes[..., 1:2] * read_content + modes[..., 2:] * forward
        return {
            "memory": memory,
            "usage": usage,
            "link": link,
            "precedence": precedence,
            "read_weights": read_weights,
            "write_weights": write_weights,
            "read_vectors": read_weights @ memory,
        }

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        h, c = state["h"], state["c"]
        memory_state = {k: v for k, v in state.items() if k not in ("h", "c")}
        hs, reads = [], []
        for x_t in x.unbind(1):
            h, c = self.controller(torch.cat([x_t, memory_state["read_vectors"].flatten(1)], dim=-1), (h, c))
            memory_state = self.memory_step(self.interface(h), memory_state)
            hs.append(h)
            reads.append(memory_state["read_vectors"].flatten(1))
        y = self.output(torch.cat([torch.stack(hs, 1), torch.stack(reads, 1)], dim=-1))
        return y, {"h": h, "c": c, **memory_state}

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, num_slots={self.num_slots}, word_size={self.word_size}, "
            f"read_heads={self.read_heads}"
        )
