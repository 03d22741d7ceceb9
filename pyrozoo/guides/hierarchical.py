"""Encoder parts conditioned on data and on a higher latent: q(z1|x, z2) of the two-level VAE (Tomczak & Welling
(2018), "VAE with a VampPrior", AISTATS, arXiv:1705.07120, eq. 14)."""

from pyrozoo.distributions.conditional import GaussianHead
from pyrozoo.guides.encoders import broadcast_cat, flatten_event


class JointGaussianEncoder(GaussianHead):
    """q(z1|x, z2) = N(mu(x, z2), diag sigma²(x, z2)) (Tomczak & Welling 2018, eq. 14).

    ``x_net`` maps flattened data ``(..., D)`` to ``(..., hx)``, ``z_net`` maps z2 ``(..., z2_dim)``
    to ``(..., hz)``; ``joint_net`` maps their concatenation to ``(..., hidden_dim)``, followed by
    linear mu and log-variance heads (log-variance through hardtanh(``logvar_bounds``) if given).
    z2 may carry extra leading (particle) dims: the data features are broadcast to them.
    """

    def __init__(self, x_net, z_net, joint_net, hidden_dim, z_dim, event_dim=1, logvar_bounds=None):
        super().__init__(hidden_dim, z_dim, logvar_bounds)
        self.x_net, self.z_net, self.joint_net = x_net, z_net, joint_net
        self.event_dim = int(event_dim)

    def params(self, x, z2):
        """(mu, logvar) ``(..., z_dim)`` with ``...`` = broadcast of x's batch and z2's batch dims."""
        h = self.joint_net(broadcast_cat(self.x_net(flatten_event(x, self.event_dim)), self.z_net(z2)))
        return self.heads(h)
