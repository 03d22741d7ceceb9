"""The registry of named presets: each wires parts (prior, encoder, decoder, likelihood) into a model.

``presets()`` lists them; ``build(name, event_shape=..., **options)`` returns the model object
(a ``PyroModule`` with ``model`` and ``guide``). One module per source document:

==========================  ===========================================================================
``zoo/classic.py``           VAE notes (003): ``vae``, ``vae-fullcov``, ``vae-planar``, ``vae-iaf``,
                             ``beta-vae``, ``vae-freebits``, ``iwae``, ``seq-vae``
``zoo/vampprior.py``         VampPrior (004): ``vampprior``, ``vae-mog``, ``vampprior-data``, ``hvae``,
                             ``hvae-vampprior``, ``convhvae-vampprior``, ``pixelhvae-vampprior``
``zoo/riemannian.py``        Riemannian Brownian-motion prior (002): ``rvae``, ``vae-rbf``, ``vampprior-rbf``
``zoo/intro.py``             Soft-IntroVAE with a learned prior (001): ``sintrovae``, ``sintrovae-mog``,
                             ``sintrovae-prior``, and :func:`intro_config`
``zoo/stein.py``             Stein-learned hyperprior (000): ``stein-hyperprior``, ``vae-flowprior``
==========================  ===========================================================================
"""

from pyrozoo.zoo.registry import build, needs_data, presets, register, train_defaults, with_prior
from pyrozoo.zoo.classic import mlp_vae
from pyrozoo.zoo.vampprior import PRIORS, convhvae, gated_vae, hvae, make_prior
from pyrozoo.zoo.riemannian import riemannian_vae
from pyrozoo.zoo.intro import INTRO_BETAS, INTRO_PRIORS, intro_config, intro_vae
from pyrozoo.zoo.stein import flow_prior_vae, stein_hyperprior_vae

__all__ = ["build", "needs_data", "presets", "register", "train_defaults", "with_prior", "mlp_vae", "PRIORS",
           "make_prior", "gated_vae", "hvae", "convhvae", "riemannian_vae", "INTRO_BETAS", "INTRO_PRIORS",
           "intro_config", "intro_vae", "stein_hyperprior_vae", "flow_prior_vae"]
