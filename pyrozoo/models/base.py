"""What every zoo model shares: the prior and decoder parts, data validation and the data plate."""

from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule
from torch import nn

from pyrozoo import checks
from pyrozoo.models.plates import data_plate


class ZooModel(PyroModule):
    """Base of the zoo's model/guide pairs.

    Subclasses hold a ``prior`` part (with ``z_dim``) and a ``decoder`` part (with ``likelihood``),
    and write ``model``/``guide`` with :meth:`plate`. ``max_plate_nesting = 1``: the data plate
    sits at dim −1 and vectorised particles go left of it.
    """

    max_plate_nesting = 1

    def __init__(self, decoder, prior):
        super().__init__()
        self.decoder = decoder
        self.prior = prior
        self.event_shape = decoder.likelihood.event_shape
        self.z_dim = prior.z_dim

    def _device(self):
        return next(self.decoder.parameters()).device

    def check_data(self, x, min_points=1, why="", support=True):
        """Raise ``ValueError`` naming the problem unless ``x`` is data this model takes:
        a tensor ``(N, *event_shape)`` with ``N >= min_points`` (``why`` says what needs them),
        of the dtype and on the device of the model's parameters, finite and (with ``support``)
        inside the likelihood's support. Nothing is converted; the message says how to convert.
        ``support=False`` suits the encoder alone (q(z|x) of grey images under a Bernoulli
        decoder, say). Returns ``x``."""
        checks.points(x, self.event_shape, like=next(self.parameters(), None), min_points=min_points, why=why)
        if support:
            self.decoder.likelihood.validate(x)  # one pass over the values: NaN/inf and support
        else:
            checks.finite("data", x)
        return x

    def check_count(self, n, name="n"):
        """``n`` if it is an integer >= 1 (a number of points to draw), else ``ValueError``."""
        return checks.count(name, n)

    def check_latent(self, z, n=None, name="z", dim=None):
        """Raise ``ValueError`` unless ``z`` is a tensor ``(n, dim)`` (default ``z_dim``) of the
        model's dtype and device, with at least one row and, if ``n`` is given, ``n`` rows.
        Returns ``z``."""
        checks.points(z, (self.z_dim if dim is None else dim,), like=next(self.parameters(), None), name=name)
        if n is not None and len(z) != n:
            raise ValueError(f"{name} holds {len(z)} rows but n={n!r} were asked for")
        return z

    def direct_elbo(self, x, num_data=None, beta=1.0, analytic_kl=True):
        """The (scaled) ELBO of ``model``/``guide`` on the batch ``x`` computed from the parts
        directly, without Pyro traces, or None where a model has no such path.
        :class:`pyrozoo.inference.ELBO` takes it when it is handed this model's own ``model`` and
        ``guide`` (optionally scaled by β) outside any Pyro handler; it must equal the traced
        ELBO (same random draws, same value and gradients; tests/test_direct.py checks)."""
        return None

    def numbers_per_sample(self, x) -> int:
        """How many numbers one importance sample of the batch ``x`` makes the decoder materialise (sizes
        the evaluation's chunks of samples, :func:`~pyrozoo.evaluation.likelihood.auto_chunk`): one output
        per data number, ``x.numel()``, times twice the widest convolution's channels where the decoder
        has convolutions (a gated convolution keeps two maps of that many channels per pixel); a recurrent
        decoder overrides it. Chunks sized this way halve the evaluation time of the convolutional and
        PixelCNN HVAEs on one CPU thread against chunks sized by the data alone."""
        convs = [m.out_channels for m in self.decoder.modules() if isinstance(m, nn.Conv2d)] \
            if isinstance(getattr(self, "decoder", None), nn.Module) else []
        return x.numel() * (2 * max(convs) if convs else 1)

    def direct_log_weights(self, x, num_samples):
        """log p(x, z_s) − log q(z_s|x) for ``num_samples`` draws per point ``(S, B)`` computed from
        the parts with one encoder pass per point, or None where a model has no such path."""
        return None

    def _direct_scale(self, x, num_data):
        """N / B of the data plate, after checking ``x`` when Pyro validation is on."""
        if is_validation_enabled():
            self.check_data(x)
        n = len(x)
        size = int(num_data) if num_data is not None else n
        if size < n:
            raise ValueError(f"num_data={size} is smaller than the batch ({n})")
        return size / n

    def plate(self, x=None, num_data=None, batch_size=None):
        """The data plate for ``x`` (validated first when Pyro validation is on) or, with ``x=None``,
        for ``batch_size`` (default 1) new points; ``num_data`` scales a mini-batch to the data set."""
        if x is not None and is_validation_enabled():
            self.check_data(x)
        n = len(x) if x is not None else int(batch_size or 1)
        return data_plate(n, num_data, device=x.device if x is not None else self._device())
