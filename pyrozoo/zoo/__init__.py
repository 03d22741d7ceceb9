"""The preset registry (layer 6): each preset is a typed :class:`Recipe` that wires parts
(prior, encoder, decoder, likelihood) into a model and says how to train and evaluate it.

``presets()`` lists them; ``recipe(name)`` returns one; ``build(name, event_shape=..., **options)``
returns the model (a ``PyroModule`` with ``model`` and ``guide``). One module per paper:

==========================  ===========================================================================
``zoo/classic.py``           the classic family (Kingma & Welling 2014; Pavesi 2024 notes): ``vae``,
                             ``vae-fullcov``, ``vae-planar``, ``vae-iaf``, ``beta-vae``, ``vae-freebits``,
                             ``iwae``, ``seq-vae``
``zoo/vampprior.py``         Tomczak & Welling (2018), arXiv:1705.07120: ``vampprior``, ``vae-mog``,
                             ``vampprior-data``, ``hvae``, ``hvae-vampprior``, ``convhvae-vampprior``,
                             ``pixelhvae-vampprior``
``zoo/riemannian.py``        Kalatzis et al. (2020), arXiv:2002.05227: ``rvae``, ``vae-rbf``, ``vampprior-rbf``
``zoo/intro.py``             Athanasiadis et al. (2025), arXiv:2408.13805: ``sintrovae``, ``sintrovae-mog``,
                             ``sintrovae-prior``, and :func:`intro_config`
``zoo/stein.py``             the Stein-learned hyperprior (design card; SMI of Rønning et al. 2024,
                             arXiv:2410.22948): ``stein-hyperprior``, ``vae-flowprior``
==========================  ===========================================================================
"""

from pyrozoo.zoo.registry import (STANDARD_REPORT, Recipe, build, needs_data, presets, recipe, register,
                                  train_defaults, with_prior)
from pyrozoo.zoo.classic import mlp_vae
from pyrozoo.zoo.vampprior import PRIORS, convhvae, gated_vae, hvae, make_prior
from pyrozoo.zoo.riemannian import riemannian_vae
from pyrozoo.zoo.intro import INTRO_BETAS, INTRO_PRIORS, intro_config, intro_vae
from pyrozoo.zoo.stein import flow_prior_vae, stein_hyperprior_vae

__all__ = ["STANDARD_REPORT", "Recipe", "build", "needs_data", "presets", "recipe", "register", "train_defaults",
           "with_prior", "mlp_vae", "PRIORS", "make_prior", "gated_vae", "hvae", "convhvae", "riemannian_vae",
           "INTRO_BETAS", "INTRO_PRIORS", "intro_config", "intro_vae", "stein_hyperprior_vae", "flow_prior_vae"]
