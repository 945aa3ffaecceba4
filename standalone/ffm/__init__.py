"""Fast and Forgetful Memory (FFM) for PyTorch.

>>> import torch
>>> from ffm import FFM, DropInFFM
>>> ffm = FFM(input_size=2, hidden_size=32, context_size=4, output_size=16)
>>> y, state = ffm(torch.randn(8, 100, 2))  # [batch, time, features]
>>> y.shape, state.shape
(torch.Size([8, 100, 16]), torch.Size([8, 32, 4]))
>>> y_next, state = ffm(torch.randn(8, 1, 2), state)  # one more step, state carried
>>> gru_like = DropInFFM(input_size=2, hidden_size=16)  # the torch.nn.GRU contract
>>> output, h_n = gru_like(torch.randn(100, 8, 2))  # [time, batch, features]
>>> output.shape, h_n.shape
(torch.Size([100, 8, 16]), torch.Size([1, 8, 256]))
"""

from ffm.aggregator import FFA
from ffm.ffm import FFM, DropInFFM
from ffm.scan import chunked_scan

__all__ = ["FFA", "FFM", "DropInFFM", "chunked_scan"]
__version__ = "1.3.0"
