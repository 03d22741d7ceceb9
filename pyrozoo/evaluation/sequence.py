"""Reconstruction and validity metrics of the sequence VAE of Pavesi (2024), "Variational Auto Encoders" (lecture
notes), §4.1, Algorithms 1 and 2."""

import torch

from pyrozoo import checks
from pyrozoo.data.architectures import decode_types, is_valid, sequence_lengths


def _true_positions(x):
    """Mask ``(N, T)`` of each sequence's rows up to its true length (``end`` included)."""
    t = torch.arange(x.shape[-2], device=x.device)
    return t < sequence_lengths(x).unsqueeze(-1)


def _compare(pred, x):
    """Type accuracy and value MAE of predicted rows ``pred`` against ``x``, both ``(N, T, D)``, over
    the true positions. A predicted padding row (a missing layer) counts as a wrong type and as
    value error 1, the largest possible on [0, 1]."""
    keep = _true_positions(x)
    present = pred[..., :-1].sum(-1) > 0
    same = (pred[..., :-1].argmax(-1) == x[..., :-1].argmax(-1)) & present
    err = torch.where(present, (pred[..., -1] - x[..., -1]).abs(), torch.ones_like(x[..., -1]))
    return same[keep].float().mean().item(), err[keep].mean().item()


@torch.no_grad()
def sequence_metrics(model, x):
    """Reconstruction quality of a :class:`pyrozoo.models.seqvae.SequenceVAE` on ``x`` ``(N, T, D)``.

    Both decoders run at the encoder mean z = E_q[z|x]:

    - teacher-forced (Algorithm 1): the argmax type and value mean at each position given the true
      previous rows (``tf_type_accuracy``, ``tf_value_mae``);
    - free-running (Algorithm 2): greedy generation, compared position-wise up to the true length,
      a missing position counting as an error (``free_type_accuracy``, ``free_value_mae``), and the
      share of sequences whose type sequence is reproduced exactly (``free_exact_match``).

    Accuracies are shares of positions in [0, 1]; MAEs are in value units. Returns a dict of floats.
    """
    model.check_data(x)
    tf = model.teacher_forced(x)
    free = model.reconstruct(x, mean=True)
    tf_acc, tf_mae = _compare(tf, x)
    free_acc, free_mae = _compare(free, x)
    exact = sum(a == b for a, b in zip(decode_types(free), decode_types(x))) / len(x)
    return {"tf_type_accuracy": tf_acc, "tf_value_mae": tf_mae, "free_type_accuracy": free_acc,
            "free_value_mae": free_mae, "free_exact_match": exact}


@torch.no_grad()
def validity(model, n=1000):
    """Share of ``n`` greedy decodings of prior draws (``model.sample(n)``) whose layer types follow the
    architecture grammar (:func:`pyrozoo.data.architectures.is_valid`): a float in [0, 1]."""
    types = decode_types(model.sample(checks.count("n", n)))
    return sum(is_valid(t) for t in types) / len(types)
