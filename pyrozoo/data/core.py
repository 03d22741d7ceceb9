"""The ``Dataset`` container and :func:`load`, the one entry point to every data set."""

from dataclasses import dataclass, field

import torch

from pyrozoo.data.architectures import load_architectures
from pyrozoo.data.digits import SPLIT as DIGITS_SPLIT, load_digits_tensors
from pyrozoo.data.images import data_root, load_torchvision
from pyrozoo.data.table1 import TABLE1, TABLE1_ALIASES, load_table1
from pyrozoo.data.toy2d import BOXES, sample_toy

#: Seed of the one-off binarisation of validation and test images.
BINARIZE_SEED = 1234
#: Sizes (train, validation, test) of the generated 2D sets.
TOY_SPLIT = (20000, 5000, 5000)

_IMAGE_SETS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST", "cifar10": "CIFAR10"}
_ALIASES = {"fmnist": "fashion-mnist", "fashionmnist": "fashion-mnist", "cifar-10": "cifar10", **TABLE1_ALIASES}
DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10") + tuple(BOXES) + ("architectures",) + tuple(TABLE1)


@dataclass
class Dataset:
    """Train/validation/test tensors of one data set, shaped ``(N, *event_shape)``.

    ``binarize=True`` means the training images are intensities in [0, 1] that
    :meth:`batches` binarises afresh for every batch (dynamic binarisation), while the
    validation and test images were binarised once, with a fixed seed, at load time.
    ``support`` is ``"binary"``, ``"unit"`` ([0, 1]) or ``"real"``.
    """

    name: str
    train: torch.Tensor
    valid: torch.Tensor
    test: torch.Tensor
    support: str
    binarize: bool = False
    labels: dict = field(default_factory=dict)
    box: tuple = None
    levels: int = None  # number of grey levels of continuous images (17 for digits, 256 for 8-bit)

    @property
    def event_shape(self):
        """Shape of one data point, e.g. ``(1, 28, 28)`` or ``(2,)``."""
        return tuple(self.train.shape[1:])

    def split(self, name):
        """The tensor of split ``"train"``, ``"valid"`` or ``"test"``."""
        if name not in ("train", "valid", "test"):
            raise ValueError(f"unknown split {name!r}; choose from train, valid, test")
        return getattr(self, name)

    def to(self, device):
        """Move every tensor to ``device`` (returns ``self``)."""
        for name in ("train", "valid", "test"):
            setattr(self, name, getattr(self, name).to(device))
        self.labels = {k: v.to(device) for k, v in self.labels.items()}
        return self

    def batches(self, split, batch_size, shuffle=False, dynamic=True):
        """Yield mini-batches of ``split``; the last one may be smaller.

        Shuffling and dynamic binarisation (training split only, when ``self.binarize``)
        draw from the global torch RNG, so seeding and checkpointing it reproduces a run.
        """
        x = self.split(split)
        n = len(x)
        order = torch.randperm(n, device=x.device) if shuffle else None
        for start in range(0, n, batch_size):
            batch = x[order[start:start + batch_size]] if shuffle else x[start:start + batch_size]
            if dynamic and split == "train" and self.binarize:
                batch = torch.bernoulli(batch)
            yield batch


    def binarized(self, x, split="train"):
        """``x`` of ``split`` as the model sees it: a fresh Bernoulli draw of training images when
        the data set binarises dynamically (from the global torch RNG), else ``x`` itself."""
        return torch.bernoulli(x) if self.binarize and split == "train" else x

    def epoch_order(self, epoch, seed, split="train"):
        """The shuffled indices of ``split`` in ``epoch``: one permutation per (seed, epoch), drawn
        from its own generator, so every process of a distributed run sees the same order."""
        g = torch.Generator().manual_seed((int(seed) * 1_000_003 + int(epoch)) % (2 ** 63))
        return torch.randperm(len(self.split(split)), generator=g)

    def micro_batches(self, epoch, seed, batch_size, rank=0, world_size=1, accumulate=1, split="train"):
        """The micro-batches of one epoch that process ``rank`` of ``world_size`` computes.

        A global step takes ``batch_size * world_size * accumulate`` consecutive indices of
        :meth:`epoch_order` and splits them into micro-batches of ``batch_size``; micro-batch
        ``j = a * world_size + rank`` (``a < accumulate``) belongs to ``rank``. Yields
        ``(step, [(j, indices), ...])`` per global step, indices on the data's device. With one
        process and no accumulation the last batch may be smaller; otherwise an incomplete last
        global batch is dropped, so every micro-batch has the same size (and the averaged
        gradient is the global batch's)."""
        x = self.split(split)
        order = self.epoch_order(epoch, seed, split).to(x.device)
        parts = world_size * accumulate
        size = batch_size * parts
        steps = -(-len(order) // size) if parts == 1 else len(order) // size
        for step in range(steps):
            chunk = order[step * size:(step + 1) * size]
            yield step, [(j, chunk[j * batch_size:(j + 1) * batch_size])
                         for j in (a * world_size + rank for a in range(accumulate))]

    def steps_per_epoch(self, batch_size, world_size=1, accumulate=1, split="train"):
        """Global steps of :meth:`micro_batches` in one epoch."""
        n, parts = len(self.split(split)), world_size * accumulate
        return -(-n // batch_size) if parts == 1 else n // (batch_size * parts)


def _binarize_once(x, seed):
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))


def load(name, data_dir=None, download=False, binarize=None, seed=0):
    """Load a data set by name: one of :data:`DATASETS`.

    - ``digits``: scikit-learn's 8x8 digits in [0, 1], split 1197/300/300 by a fixed seed.
    - ``mnist``/``fashion-mnist``: 28x28 grey images; the last 10k official training images
      are the validation set (50k/10k/10k). ``cifar10``: 3x32x32, last 5k for validation.
    - ``8gaussians``, ``2spirals``, ``checkerboard``, ``rings``: generated 2D points
      (20k/5k/5k, the generator seeded by ``seed``).
    - ``static-mnist``, ``omniglot``, ``caltech101``, ``frey-faces``, ``histopathology``: the other
      data sets of Table 1 of Tomczak & Welling (2018), arXiv:1705.07120, read from their usual files under the
      data root (see :mod:`pyrozoo.data.table1`).
    - ``architectures``: generated neural-network descriptions as padded layer sequences
      ``(N, T, 9)`` (4000/500/500; see :mod:`pyrozoo.data.architectures`).

    ``binarize`` (default True for the grey image sets, False otherwise) selects dynamic
    binarisation of the training set and a fixed-seed binarisation of validation and test;
    ``binarize=False`` gives the continuous [0, 1] variant.
    """
    key = _ALIASES.get(name.lower(), name.lower()) if isinstance(name, str) else name
    if key not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose from {', '.join(DATASETS)}")
    if key in TABLE1:
        return load_table1(key, data_dir, download=download, binarize=binarize)
    if key == "architectures":
        if binarize:
            raise ValueError("architectures are layer sequences and cannot be binarised")
        return load_architectures(seed=seed)
    if key in BOXES:
        if binarize:
            raise ValueError(f"{key} is real-valued 2D data and cannot be binarised")
        g = torch.Generator().manual_seed(seed)
        parts = [sample_toy(key, n, generator=g) for n in TOY_SPLIT]
        return Dataset(key, *parts, support="real", box=BOXES[key])
    levels = 17 if key == "digits" else 256
    if key == "digits":
        images, labels = load_digits_tensors()
        a, b, _ = DIGITS_SPLIT
        parts = [images[:a], images[a:a + b], images[a + b:]]
        label_parts = [labels[:a], labels[a:a + b], labels[a + b:]]
    else:
        if key == "cifar10" and binarize:
            raise ValueError("cifar10 is a colour data set and cannot be binarised")
        root = data_root(data_dir)
        folder = _IMAGE_SETS[key]
        train_x, train_y = load_torchvision(folder, root, train=True, download=download)
        test_x, test_y = load_torchvision(folder, root, train=False, download=download)
        n_valid = 10000 if key != "cifar10" else 5000
        cut = len(train_x) - n_valid
        parts = [train_x[:cut], train_x[cut:], test_x]
        parts = [p.float() / 255.0 for p in parts]
        label_parts = [train_y[:cut], train_y[cut:], test_y]
    if binarize is None:
        binarize = key != "cifar10"
    labels = dict(zip(("train", "valid", "test"), label_parts))
    if binarize:
        parts[1] = _binarize_once(parts[1], BINARIZE_SEED)
        parts[2] = _binarize_once(parts[2], BINARIZE_SEED + 1)
    return Dataset(key, *parts, support="binary" if binarize else "unit", binarize=bool(binarize), labels=labels,
                   levels=levels)
