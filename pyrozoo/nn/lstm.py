"""An LSTM reader of padded sequences, usable as the feature network of any encoder part."""

import torch
from torch import nn


class LSTMFeatures(nn.Module):
    """Read padded sequences and return the LSTM output at each sequence's last real row.

    Input: sequences flattened to ``(..., T * D)``, as the encoder parts pass data to their
    feature network; rows after the end of a sequence are all-zero padding,
    and a sequence's length is its number of non-zero rows. Output: ``(..., hidden)``. Padding
    never influences the result: the LSTM reads left to right and is read out before it.
    """

    def __init__(self, input_dim, hidden, max_len):
        super().__init__()
        self.input_dim, self.max_len = int(input_dim), int(max_len)
        self.lstm = nn.LSTM(self.input_dim, int(hidden), batch_first=True)

    def forward(self, x):
        batch = x.shape[:-1]
        flat = x.reshape((-1, self.max_len, self.input_dim))
        out, _ = self.lstm(flat)
        last = ((flat != 0).any(-1).sum(-1) - 1).clamp(min=0)
        h = out[torch.arange(len(flat), device=x.device), last]
        return h.reshape(batch + (h.shape[-1],))
