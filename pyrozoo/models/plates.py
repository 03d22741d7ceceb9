"""The data plate shared by every zoo model and guide."""

import pyro
import torch

#: The data plate sits at this dim; vectorised particles go to the left of it.
DATA_DIM = -1


def data_plate(batch_size, num_data=None, device=None):
    """``pyro.plate("data", size=num_data, subsample=arange(batch_size))`` at dim −1.

    With ``num_data`` (the data-set size N) the log-densities of local sites are scaled by
    N / batch_size, so the loss is an unbiased estimate of the full-data ELBO.
    """
    size = int(num_data) if num_data is not None else int(batch_size)
    if size < batch_size:
        raise ValueError(f"num_data={size} is smaller than the batch ({batch_size})")
    return pyro.plate("data", size=size, subsample=torch.arange(batch_size, device=device), dim=DATA_DIM)
