"""Priors, likelihoods and custom distributions as ``pyro.distributions`` objects (layer 2)."""

from pyrozoo.distributions import kl  # noqa: F401  (registers closed-form KLs)
from pyrozoo.distributions.bernoulli import BernoulliLogits
from pyrozoo.distributions.discretized_logistic import DiscretizedLogistic
from pyrozoo.distributions.flow_prior import ConditionalFlowPrior, Flip, FlowPrior, make_flow
from pyrozoo.distributions.intro_prior import (ClippedMixturePrior, EvalNormParams, RealVampPrior,
                                               normalized_entropy, responsibilities, soft_clip)
from pyrozoo.distributions.likelihoods import (LIKELIHOODS, BernoulliLikelihood, DiscretizedLogisticLikelihood,
                                               GaussianLikelihood, Likelihood, make_likelihood)
from pyrozoo.distributions.mixtures import DiagonalGaussianMixture
from pyrozoo.distributions.priors import (HeatKernelPrior, MixtureOfGaussiansPrior, Prior, StandardNormalPrior,
                                         VampPrior)
from pyrozoo.distributions.stein_mixture import ComponentDraws, SteinMixture, mixture_log_prob

from pyrozoo.distributions.autoregressive import AutoregressiveImage
from pyrozoo.distributions.conditional import ConditionalGaussian
from pyrozoo.distributions.mixtures import ExpandedMixture
from pyrozoo.distributions.sequence import LayerSequence, SequenceLikelihood

__all__ = ["AutoregressiveImage", "ConditionalGaussian", "ExpandedMixture", "LayerSequence", "SequenceLikelihood",
           "HeatKernelPrior", "BernoulliLogits", "DiscretizedLogistic", "LIKELIHOODS", "BernoulliLikelihood",
           "DiscretizedLogisticLikelihood", "GaussianLikelihood", "Likelihood", "make_likelihood", "Prior",
           "StandardNormalPrior", "DiagonalGaussianMixture", "MixtureOfGaussiansPrior", "VampPrior",
           "ClippedMixturePrior", "EvalNormParams", "RealVampPrior", "normalized_entropy", "responsibilities", "soft_clip",
           "ComponentDraws", "SteinMixture", "mixture_log_prob", "ConditionalFlowPrior", "Flip", "FlowPrior",
           "make_flow"]
