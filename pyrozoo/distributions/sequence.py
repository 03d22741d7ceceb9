"""The likelihood of a layer sequence in the sequence VAE of Pavesi (2024), "Variational Auto Encoders" (lecture
notes), §4.1: categorical layer types and one value per layer.

Data are padded tensors ``(N, T, K + 1)``: ``K`` one-hot type columns, then a value in [0, 1];
the last type column is the ``end`` token; rows after the first ``end`` are all-zero padding.
"""

import pyro.distributions as dist
import torch
from torch import nn
from torch.distributions import constraints

#: The fixed standard deviation of the value term (before truncation to [0, 1]).
VALUE_SCALE = 0.1


def _positions(x, end_index=-1):
    """Boolean mask ``(..., T)`` of the rows that count: non-padding rows up to and including the first end."""
    types = x[..., :-1]
    is_end = types[..., end_index] > 0.5
    ends_before = torch.cumsum(is_end.long(), -1) - is_end.long()
    return (ends_before == 0) & (types.sum(-1) > 0.5)


def truncated_normal_log_prob(v, loc, scale):
    """log N(v; loc, scale²) truncated to [0, 1], element-wise; ``loc`` should lie in [0, 1].

    log N(v; μ, σ) − log[Φ((1 − μ)/σ) − Φ(−μ/σ)]: a proper density on [0, 1].
    """
    z = (v - loc) / scale
    mass = torch.special.ndtr((1 - loc) / scale) - torch.special.ndtr(-loc / scale)
    log_norm = -0.5 * z ** 2 - torch.log(scale * torch.sqrt(torch.tensor(2 * torch.pi, dtype=v.dtype,
                                                                           device=v.device)))
    return log_norm - torch.log(mass.clamp(min=torch.finfo(v.dtype).tiny))


class LayerSequence(dist.TorchDistribution):
    """p(x) for a padded layer sequence ``x`` of event shape ``(T, K + 1)`` (Pavesi 2024 notes §4.1).

    log p(x) = Σ_{t ≤ t_end} [log Categorical(type_t; softmax(type_logits_t))
                              + log TruncNormal_[0,1](value_t; value_loc_t, value_scale)],

    summed over the rows up to and including the first ``end`` (type column ``end_index``);
    padding rows after it do not count. The value term is a Gaussian with a fixed scale (default
    0.1) on the decoder's sigmoid output, truncated to [0, 1], so the joint is a proper density
    over (type, value). At the last position only ``end`` has mass (its logits are masked), so
    every sequence ends within T rows and the distribution is normalised over padded sequences.

    ``valued`` (a bool tensor ``(K,)``, optional) names the types that carry a value; rows of the
    other types have value 0 (a point mass, no value term). By default every type carries one.

    ``type_logits`` ``(..., T, K)``, ``value_loc`` ``(..., T)`` in [0, 1]; batch shape ``(...)``.
    The conditional parameters depend on earlier rows (teacher forcing), so the distribution
    cannot sample by itself: ``draw`` (``(..., T, K + 1)``), a sample made by the autoregressive
    decoder with these very parameters, is what :meth:`sample` returns.
    """

    arg_constraints = {}
    support = constraints.independent(constraints.unit_interval, 2)

    def __init__(self, type_logits, value_loc, value_scale=VALUE_SCALE, valued=None, draw=None, end_index=-1,
                 validate_args=None):
        if type_logits.dim() < 2 or value_loc.dim() < 1 or type_logits.shape[-2] != value_loc.shape[-1]:
            raise ValueError(f"type_logits {tuple(type_logits.shape)} and value_loc {tuple(value_loc.shape)} "
                             "disagree on the sequence length")
        t, k = type_logits.shape[-2:]
        batch_shape = torch.broadcast_shapes(type_logits.shape[:-2], value_loc.shape[:-1])
        last = torch.zeros(t, k, dtype=torch.bool, device=type_logits.device)
        last[-1] = True
        last[-1, end_index] = False
        self.type_logits = type_logits.masked_fill(last, float("-inf")).expand(batch_shape + (t, k))
        self.value_loc = value_loc.expand(batch_shape + (t,))
        self.value_scale = float(value_scale)
        self.valued = valued
        self.end_index = end_index
        self.draw = None if draw is None else draw.expand(batch_shape + (t, k + 1))
        super().__init__(batch_shape, torch.Size((t, k + 1)), validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(LayerSequence, _instance)
        batch_shape = torch.Size(batch_shape)
        t, k = self.type_logits.shape[-2:]
        new.type_logits = self.type_logits.expand(batch_shape + (t, k))
        new.value_loc = self.value_loc.expand(batch_shape + (t,))
        new.value_scale, new.valued, new.end_index = self.value_scale, self.valued, self.end_index
        new.draw = None if self.draw is None else self.draw.expand(batch_shape + (t, k + 1))
        super(LayerSequence, new).__init__(batch_shape, self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def log_prob(self, x):
        """log p(x) for ``x`` ``(..., T, K + 1)`` broadcastable with the batch: ``(...)``."""
        keep = _positions(x, self.end_index)
        idx = x[..., :-1].argmax(-1, keepdim=True)
        logp = torch.log_softmax(self.type_logits, -1)
        logp = logp.expand(torch.broadcast_shapes(logp.shape[:-1], idx.shape[:-1]) + logp.shape[-1:])
        lp_type = logp.gather(-1, idx.expand(logp.shape[:-1] + (1,))).squeeze(-1)
        scale = torch.as_tensor(self.value_scale, dtype=self.value_loc.dtype, device=self.value_loc.device)
        lp_value = truncated_normal_log_prob(x[..., -1], self.value_loc, scale)
        if self.valued is not None:
            lp_value = torch.where(self.valued[idx.squeeze(-1)], lp_value, torch.zeros_like(lp_value))
        lp = torch.where(keep, lp_type + lp_value, torch.zeros((), dtype=lp_value.dtype, device=lp_value.device))
        return lp.sum(-1)

    def sample(self, sample_shape=torch.Size()):
        """The decoder's ``draw`` (batch shape ``(...)``); other sample shapes are not supported."""
        if self.draw is None:
            raise NotImplementedError("a LayerSequence cannot sample by itself (its parameters depend on earlier "
                                      "rows); build it with draw= from the autoregressive decoder")
        if len(sample_shape):
            raise NotImplementedError("LayerSequence holds one decoder draw; sample it with sample_shape=()")
        return self.draw


def truncated_normal_sample(loc, scale, generator=None):
    """One draw per element from N(loc, scale²) truncated to [0, 1] (inverse-CDF method)."""
    lo = torch.special.ndtr(-loc / scale)
    hi = torch.special.ndtr((1 - loc) / scale)
    u = lo + (hi - lo) * torch.rand(loc.shape, dtype=loc.dtype, device=loc.device, generator=generator)
    eps = torch.finfo(loc.dtype).eps
    return (loc + scale * torch.special.ndtri(u.clamp(eps, 1 - eps))).clamp(0, 1)


def validate(x, event_shape=None, end_index=-1, valued=None):
    """Raise ``ValueError`` naming the first problem of padded sequence data ``x`` ``(N, T, K + 1)``.

    Checks, in order: a tensor; three dims with K ≥ 1 (and ``event_shape`` = ``(T, K + 1)`` if
    given); no NaN/inf; every row one-hot in the type columns or an all-zero padding row (else an
    unknown layer type); values in [0, 1]; an ``end`` token in each sequence, no padding before
    it and only padding after it; with ``valued`` (bool ``(K,)``), value 0 in rows of the types
    that carry no value.
    """
    if not torch.is_tensor(x):
        raise ValueError(f"sequence data must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 3 or x.shape[-1] < 2:
        raise ValueError(f"sequence data must have shape (N, T, n_types + 1), got shape {tuple(x.shape)}")
    if event_shape is not None and tuple(x.shape[1:]) != tuple(event_shape):
        raise ValueError(f"data has shape {tuple(x.shape)}, expected (N, {', '.join(map(str, event_shape))})")
    if not torch.isfinite(x).all():
        bad = (~torch.isfinite(x)).flatten(1).any(1).nonzero()[:5].flatten().tolist()
        raise ValueError(f"data contains NaN or inf values (first sequences: {bad})")
    types, values = x[..., :-1], x[..., -1]
    binary = ((types == 0) | (types == 1)).all(-1)
    hot = types.sum(-1)
    padding = (hot == 0) & (values == 0)
    bad = ~binary | (hot > 1) | ((hot == 0) & (values != 0))
    if bad.any():
        i, t = bad.nonzero()[0].tolist()
        raise ValueError(f"unknown layer type in sequence {i} at position {t}: the row {x[i, t].tolist()} is "
                         "neither one-hot in the type columns nor an all-zero padding row")
    if (values < 0).any() or (values > 1).any():
        raise ValueError(f"layer values must lie in [0, 1]; got values in [{values.min().item():.3g}, "
                         f"{values.max().item():.3g}]")
    if valued is not None:
        valued = torch.as_tensor(valued, dtype=torch.bool, device=x.device)
        stray = (~valued)[types.argmax(-1)] & (hot == 1) & (values != 0)
        if stray.any():
            i, t = stray.nonzero()[0].tolist()
            raise ValueError(f"sequence {i}, position {t}: layer type {int(types[i, t].argmax())} carries no value "
                             f"but has value {values[i, t].item():.3g} (expected 0)")
    is_end = types[..., end_index] == 1
    missing = ~is_end.any(-1)
    if missing.any():
        raise ValueError(f"sequences without an end token (first: {missing.nonzero()[:5].flatten().tolist()})")
    before = torch.cumsum(is_end.long(), -1) - is_end.long() == 0
    after_bad = ~before & ~padding
    if after_bad.any():
        i, t = after_bad.nonzero()[0].tolist()
        raise ValueError(f"sequence {i} has a non-padding row at position {t}, after its end token")
    gap = before & padding
    if gap.any():
        i, t = gap.nonzero()[0].tolist()
        raise ValueError(f"sequence {i} has a padding row at position {t}, before its end token")


class SequenceLikelihood(nn.Module):
    """Likelihood part for layer sequences of event shape ``(T, K + 1)``.

    ``forward(out)`` maps the decoder's element-wise linear output ``(..., T, K + 1)`` (type
    logits, then a value logit) to :class:`LayerSequence` with value location sigmoid(value logit)
    (Pavesi 2024 notes §4.1: softmax on the types, sigmoid on the value). ``valued`` as in
    :class:`LayerSequence`.
    """

    support = "sequence"

    def __init__(self, event_shape, value_scale=VALUE_SCALE, valued=None):
        super().__init__()
        self.event_shape = tuple(int(s) for s in event_shape)
        if len(self.event_shape) != 2 or self.event_shape[1] < 2:
            raise ValueError(f"a sequence likelihood needs event_shape (T, n_types + 1), got {self.event_shape}")
        if not float(value_scale) > 0:
            raise ValueError(f"value_scale must be positive, got {value_scale}")
        self.value_scale = float(value_scale)
        k = self.event_shape[1] - 1
        valued = torch.ones(k, dtype=torch.bool) if valued is None else torch.as_tensor(valued, dtype=torch.bool)
        if valued.shape != (k,):
            raise ValueError(f"valued must have one flag per layer type ({k}), got shape {tuple(valued.shape)}")
        self.register_buffer("valued", valued)

    def forward(self, out, draw=None):
        """``out`` ``(..., T, K + 1)`` -> :class:`LayerSequence` with batch shape ``(...)``."""
        return LayerSequence(out[..., :-1], torch.sigmoid(out[..., -1]), self.value_scale, valued=self.valued,
                             draw=draw)

    def validate(self, x):
        """See :func:`validate`, with this likelihood's event shape and valued types."""
        validate(x, self.event_shape, valued=self.valued)
