"""Objectives, the training loops and checkpoints (layer 4)."""

from pyrozoo.inference.annealing import (SCHEDULES, LatentScaleMessenger, cyclical, kl_weight, linear_warmup,
                                        scale_latents)
from pyrozoo.inference.checkpoint import load_checkpoint, save_checkpoint
from pyrozoo.inference.freebits import FreeBitsELBO, free_bits_kl
from pyrozoo.inference.introspective import (IntroConfig, IntroLossSettings, IntroTrainer, decoder_loss, encoder_loss,
                                             vae_loss)
from pyrozoo.inference.kernels import (KERNELS, IMQKernel, Kernel, ProbabilityProductKernel, RBFKernel, kernel_matrix,
                                       make_kernel, median_bandwidth, stein_force)
from pyrozoo.inference.objectives import ELBO, IWAE, OBJECTIVES, elbo_from_traces, log_weights, make_objective
from pyrozoo.inference.smi import SMI, stein_param_groups
from pyrozoo.inference.trainer import TrainConfig, Trainer, TrainingDiverged, mean_elbo

__all__ = ["SCHEDULES", "cyclical", "kl_weight", "FreeBitsELBO", "free_bits_kl", "LatentScaleMessenger",
           "linear_warmup", "scale_latents", "load_checkpoint", "save_checkpoint", "ELBO", "IWAE", "OBJECTIVES",
           "elbo_from_traces", "log_weights", "make_objective", "TrainConfig", "Trainer", "TrainingDiverged",
           "mean_elbo", "IntroConfig", "IntroLossSettings", "IntroTrainer", "decoder_loss", "encoder_loss", "vae_loss",
           "KERNELS", "IMQKernel", "Kernel", "ProbabilityProductKernel", "RBFKernel", "kernel_matrix", "make_kernel",
           "median_bandwidth", "stein_force", "SMI", "stein_param_groups"]
