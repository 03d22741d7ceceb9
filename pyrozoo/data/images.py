"""Image data sets on disk: MNIST, Fashion-MNIST and CIFAR-10 through ``torchvision.datasets``.

The data root is, in order: the ``data_dir`` argument (``--data-dir``), the environment
variable ``PYROZOO_DATA``, or ``~/.cache/pyrozoo/data``. Nothing is downloaded unless
``download=True`` and the files are missing.
"""

import gzip
import os
import shutil
from pathlib import Path

import torch

_RAW_FILES = {
    "MNIST": ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
    "FashionMNIST": ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                     "t10k-labels-idx1-ubyte"],
}
_CIFAR_FOLDER = "cifar-10-batches-py"


class DataNotFoundError(FileNotFoundError):
    """Raised when a data set's files are missing and downloading was not allowed."""


def data_root(data_dir=None):
    """The data root as a ``Path``: ``data_dir``, else ``$PYROZOO_DATA``, else ``~/.cache/pyrozoo/data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("PYROZOO_DATA"):
        return Path(os.environ["PYROZOO_DATA"]).expanduser()
    return Path.home() / ".cache" / "pyrozoo" / "data"


def _decompress_raw(root, folder):
    """Decompress ``*-ubyte.gz`` files next to themselves when only the archives exist.

    Returns True when every raw file is then present. Writes through a temporary file and a
    rename, so an interrupted run never leaves a truncated file behind.
    """
    raw = Path(root) / folder / "raw"
    ok = True
    for name in _RAW_FILES[folder]:
        target = raw / name
        if target.exists():
            continue
        archive = raw / (name + ".gz")
        if not archive.exists():
            ok = False
            continue
        tmp = raw / (name + ".tmp")
        with gzip.open(archive, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        os.replace(tmp, target)
    return ok


def load_torchvision(folder, root, train, download=False):
    """Images and labels of one official split as tensors.

    ``folder`` is ``"MNIST"``, ``"FashionMNIST"`` or ``"CIFAR10"``. Returns ``(images, labels)``
    with images as uint8 ``(N, C, H, W)`` and labels as int64 ``(N,)``.
    """
    import torchvision.datasets as tvd

    root = Path(root)
    if folder in _RAW_FILES:
        present = _decompress_raw(root, folder)
        if not present and not download:
            expected = root / folder / "raw"
            raise DataNotFoundError(
                f"{folder} files not found: expected {', '.join(_RAW_FILES[folder])} (or their .gz archives) "
                f"in {expected}. Pass --data-dir/set PYROZOO_DATA to the folder that holds {folder}/, "
                f"or pass --download to fetch them.")
        cls = tvd.MNIST if folder == "MNIST" else tvd.FashionMNIST
        ds = cls(str(root), train=train, download=download and not present)
        images = ds.data.unsqueeze(1)
        labels = ds.targets.long()
    elif folder == "CIFAR10":
        present = (root / _CIFAR_FOLDER).is_dir()
        if not present and not download:
            raise DataNotFoundError(
                f"CIFAR10 files not found: expected the folder {root / _CIFAR_FOLDER}. "
                f"Pass --data-dir/set PYROZOO_DATA, or pass --download to fetch it.")
        ds = tvd.CIFAR10(str(root), train=train, download=download and not present)
        images = torch.as_tensor(ds.data).permute(0, 3, 1, 2).contiguous()
        labels = torch.as_tensor(ds.targets).long()
    else:
        raise ValueError(f"unknown image folder {folder!r}")
    return images, labels
