"""Discretised logistic distribution over grey levels in [0, 1] (Salimans et al. 2017)."""

import math

import torch
import torch.nn.functional as F
from pyro.distributions import TorchDistribution
from torch.distributions import constraints


class DiscretizedLogistic(TorchDistribution):
    """Logistic(loc, exp(log_scale)) discretised onto ``num_bins`` levels ``k/(num_bins-1)``.

    Bin k covers ``[x_k - h, x_k + h]`` with half-width ``h = 1/(2(num_bins-1))``; the first bin
    extends to −inf and the last to +inf, so the probabilities of the levels sum to one.
    ``log_prob(x)`` expects ``x`` on the grid (values are rounded to the nearest level).
    """

    arg_constraints = {"loc": constraints.real, "log_scale": constraints.real}
    support = constraints.unit_interval
    has_rsample = False

    def __init__(self, loc, log_scale, num_bins=256, validate_args=None):
        self.loc, self.log_scale = torch.broadcast_tensors(loc, log_scale)
        self.num_bins = int(num_bins)
        super().__init__(self.loc.shape, validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(DiscretizedLogistic, _instance)
        new.loc = self.loc.expand(batch_shape)
        new.log_scale = self.log_scale.expand(batch_shape)
        new.num_bins = self.num_bins
        super(DiscretizedLogistic, new).__init__(torch.Size(batch_shape), validate_args=False)
        new._validate_args = self._validate_args
        return new

    def log_prob(self, x):
        levels = self.num_bins - 1
        x = torch.round(x * levels) / levels
        half = 0.5 / levels
        inv_scale = torch.exp(-self.log_scale)
        plus = (x - self.loc + half) * inv_scale
        minus = (x - self.loc - half) * inv_scale
        log_cdf_plus = F.logsigmoid(plus)  # log sigma(plus), used at the first level
        log_one_minus_cdf_minus = -F.softplus(minus)  # log(1 - sigma(minus)), used at the last level
        # log(sigma(plus) - sigma(minus)) = log sigma(plus) + log(1 - exp(log sigma(minus) - log sigma(plus)))
        diff = F.logsigmoid(minus) - log_cdf_plus
        log_mid = log_cdf_plus + torch.log(-torch.expm1(diff.clamp(max=-1e-12)))
        # where the bin is far in a tail the difference underflows: use the density times the bin width
        centre = (x - self.loc) * inv_scale
        log_pdf = centre - self.log_scale - 2 * F.softplus(centre) + math.log(2 * half)
        log_mid = torch.where(diff > -1e-5, log_pdf, log_mid)
        out = torch.where(x < half, log_cdf_plus, torch.where(x > 1 - half, log_one_minus_cdf_minus, log_mid))
        return out

    @property
    def mean(self):
        """The logistic location clamped to [0, 1] (used for plots, not an exact mean)."""
        return self.loc.clamp(0, 1)

    def sample(self, sample_shape=torch.Size()):
        shape = self._extended_shape(sample_shape)
        with torch.no_grad():
            u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device).clamp(1e-6, 1 - 1e-6)
            y = self.loc.expand(shape) + torch.exp(self.log_scale).expand(shape) * (torch.log(u) - torch.log1p(-u))
            levels = self.num_bins - 1
            return (torch.round(y.clamp(0, 1) * levels) / levels)
