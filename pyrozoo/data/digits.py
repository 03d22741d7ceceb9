"""scikit-learn's bundled 8x8 digits (1797 images): the offline default for quick runs."""

import torch

#: Sizes of the fixed split (train, validation, test); they add up to 1797.
SPLIT = (1197, 300, 300)


def load_digits_tensors(seed=0):
    """Images in [0, 1] as float ``(1797, 1, 8, 8)`` and labels ``(1797,)``, shuffled by a fixed seed.

    The original pixel values 0..16 are divided by 16. The first ``SPLIT[0]`` rows are the
    training set, the next ``SPLIT[1]`` validation and the last ``SPLIT[2]`` test.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    labels = torch.as_tensor(bunch.target, dtype=torch.long)
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    return images[perm], labels[perm]
