"""Objectives, the one training loop, its strategies, and run directories (layer 4).

- objectives: :class:`ELBO`, :class:`IWAE`, :class:`FreeBitsELBO`, β and KL schedules, Stein
  Mixture Inference (:class:`SMI`), the introspective losses;
- :class:`TrainingLoop` with the strategies :class:`SVIStrategy` (any objective, SMI included),
  :class:`TwoPhaseStrategy` and :class:`IntroStrategy`;
- :class:`RunDirectory`: locking, atomic files, safe checkpoint loading.
"""

from pyrozoo.inference.annealing import (SCHEDULES, LatentScaleMessenger, cyclical, epoch_warmup, kl_weight,
                                        linear_warmup, scale_latents)
from pyrozoo.inference.freebits import FreeBitsELBO, free_bits_kl
from pyrozoo.inference.game import IntroConfig, IntroStrategy, multistep_lr, switch_prior
from pyrozoo.inference.introspective import IntroLossSettings, decoder_loss, encoder_loss, vae_loss
from pyrozoo.inference.kernels import (KERNELS, IMQKernel, Kernel, ProbabilityProductKernel, RBFKernel, kernel_matrix,
                                       make_kernel, median_bandwidth, stein_force)
from pyrozoo.inference.loop import Logger, Strategy, TrainingDiverged, TrainingLoop, check_device
from pyrozoo.inference.objectives import ELBO, IWAE, OBJECTIVES, elbo_from_traces, log_weights, make_objective
from pyrozoo.inference.phases import TwoPhaseStrategy
from pyrozoo.inference.rundir import (CheckpointError, RunDirectory, RunDirectoryError, RunLocked, WriteError,
                                      load_checkpoint, save_checkpoint)
from pyrozoo.inference.smi import SMI, stein_param_groups
from pyrozoo.inference.svi import SVIStrategy, TrainConfig, mean_elbo, normalize_gradients

from pyrozoo.inference.introspective import kl_to_prior, prior_noise, sample_prior, stop_gradient
from pyrozoo.inference.loop import Progress, check_finite
from pyrozoo.inference.rundir import atomic_write, read_json, write_json
from pyrozoo.inference.traces import get_traces

__all__ = ["kl_to_prior", "prior_noise", "sample_prior", "stop_gradient", "Progress", "check_finite", "atomic_write",
           "read_json", "write_json", "get_traces", "SCHEDULES", "cyclical", "kl_weight", "FreeBitsELBO",
           "free_bits_kl", "LatentScaleMessenger", "linear_warmup", "epoch_warmup", "scale_latents", "load_checkpoint",
           "save_checkpoint", "ELBO", "IWAE", "OBJECTIVES", "elbo_from_traces", "log_weights", "make_objective",
           "TrainConfig", "SVIStrategy", "TrainingDiverged", "TrainingLoop", "Strategy", "Logger", "check_device",
           "mean_elbo", "normalize_gradients", "TwoPhaseStrategy", "IntroConfig", "IntroLossSettings", "IntroStrategy",
           "multistep_lr", "switch_prior", "decoder_loss", "encoder_loss", "vae_loss", "KERNELS", "IMQKernel",
           "Kernel", "ProbabilityProductKernel", "RBFKernel", "kernel_matrix", "make_kernel", "median_bandwidth",
           "stein_force", "SMI", "stein_param_groups", "RunDirectory", "RunDirectoryError", "RunLocked",
           "CheckpointError", "WriteError"]
