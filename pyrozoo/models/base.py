"""What every zoo model shares: the prior and decoder parts, data validation and the data plate."""

from pyro.infer.util import is_validation_enabled
from pyro.nn import PyroModule

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

    def check_data(self, x):
        """Raise ``ValueError`` naming the problem if ``x`` is not finite, mis-shaped or outside the
        likelihood's support."""
        self.decoder.likelihood.validate(x)

    def plate(self, x=None, num_data=None, batch_size=None):
        """The data plate for ``x`` (validated first when Pyro validation is on) or, with ``x=None``,
        for ``batch_size`` (default 1) new points; ``num_data`` scales a mini-batch to the data set."""
        if x is not None and is_validation_enabled():
            self.check_data(x)
        n = len(x) if x is not None else int(batch_size or 1)
        return data_plate(n, num_data, device=x.device if x is not None else self._device())
