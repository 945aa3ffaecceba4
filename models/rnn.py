"""Recurrent baselines of POPGym: Elman RNN, LSTM, GRU (torch.nn) and IndRNN."""

import torch
from torch import nn

from models.core import MemoryCore, State


class _TorchRNNCore(MemoryCore):
    """A one-layer torch.nn recurrent network whose hidden size is the core's output size."""

    rnn: nn.RNNBase

    def initial_state(self) -> State:
        hidden = torch.zeros(self.output_size, device=self.rnn.weight_hh_l0.device)
        return {"h": hidden} if not isinstance(self.rnn, nn.LSTM) else {"h": hidden, "c": hidden.clone()}

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        if isinstance(self.rnn, nn.LSTM):
            y, (h, c) = self.rnn(x, (state["h"][None], state["c"][None]))
            return y, {"h": h[0], "c": c[0]}
        y, h = self.rnn(x, state["h"][None])
        return y, {"h": h[0]}


class ElmanCore(_TorchRNNCore):
    """Elman RNN: h_t = tanh(W_x x_t + W_h h_{t-1} + b), y_t = h_t."""

    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__(input_size, output_size)
        self.rnn = nn.RNN(input_size, output_size, batch_first=True)


class LSTMCore(_TorchRNNCore):
    """LSTM (Hochreiter & Schmidhuber, 1997), torch.nn.LSTM; y_t = h_t, state (h, c)."""

    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__(input_size, output_size)
        self.rnn = nn.LSTM(input_size, output_size, batch_first=True)


class GRUCore(_TorchRNNCore):
    """GRU (Cho et al., 2014), torch.nn.GRU; y_t = h_t."""

    def __init__(self, input_size: int, output_size: int) -> None:
        super().__init__(input_size, output_size)
        self.rnn = nn.GRU(input_size, output_size, batch_first=True)


class IndRNNCore(MemoryCore):
    """IndRNN (Li et al., 2018): h_t = relu(W x_t + b + u * h_{t-1} + beta), u a vector (each unit sees only itself).

    As POPGym at 689d89b (baselines/models/indrnn.py): two stacked IndRNN layers of width output_size, the
    second's output is the core's. Each layer has its input Linear (torch's default init, with its bias b)
    plus a per-unit bias beta ~ U(0, 1); u starts U(0, 1) and is used clamped to |u| <= 2^(1 / max_len)
    (the paper's bound that keeps a unit from growing by more than 2x over max_len steps; POPGym passes
    max_seq_len, 1024 in the paper). POPGym also defines an output Linear that its forward never applies;
    it is left out here (65,792 parameters that never train). Each layer's input projection runs over all
    steps at once; only the elementwise recurrence loops over T.
    """

    def __init__(self, input_size: int, output_size: int, layers: int = 2, max_len: int = 1024) -> None:
        super().__init__(input_size, output_size)
        sizes = [input_size] + [output_size] * layers
        self.input_maps = nn.ModuleList(nn.Linear(n_in, output_size) for n_in in sizes[:-1])
        self.recurrent_weights = nn.Parameter(torch.rand(layers, output_size))
        self.recurrent_biases = nn.Parameter(torch.rand(layers, output_size))
        self.weight_bound = 2 ** (1 / max_len)

    def initial_state(self) -> State:
        return {"h": torch.zeros_like(self.recurrent_weights)}

    def forward(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        recurrent = self.recurrent_weights.clamp(-self.weight_bound, self.weight_bound)
        finals = []
        for layer, input_map in enumerate(self.input_maps):
            drive, hidden, outputs = input_map(x) + self.recurrent_biases[layer], state["h"][:, layer], []
            for t in range(x.shape[1]):
                hidden = torch.relu(drive[:, t] + recurrent[layer] * hidden)
                outputs.append(hidden)
            x = torch.stack(outputs, 1)
            finals.append(hidden)
        return x, {"h": torch.stack(finals, 1)}
