"""Image data sets on disk: MNIST, Fashion-MNIST and CIFAR-10 through ``torchvision.datasets``.

The data root is, in order: the ``data_dir`` argument (``--data-dir``), the environment
variable ``PYROZOO_DATA``, or ``~/.cache/pyrozoo/data``. Nothing is downloaded unless
``download=True`` and the files are missing.
"""

import gzip
import math
import os
import pickle
import shutil
import zlib
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


class DataFileError(ValueError):
    """Raised when a data set's file exists but is truncated or corrupt; the message names the file."""


#: Bytes per value of each IDX data type (the MNIST file format of LeCun et al.): ubyte, byte, short, int,
#: float, double.
_IDX_TYPES = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}


def _fix(folder, archive=False):
    """How to repair a broken file of ``folder``."""
    first = "" if archive else "delete it (pyrozoo decompresses it again from its .gz when that is there), or "
    return f"{first}copy the {folder} files again, or delete it and pass --download (download=True) to fetch them"


def check_idx_file(path, folder="MNIST"):
    """Raise :class:`DataFileError` naming ``path`` unless it is a complete IDX file: a valid header
    (magic number, data type, 1-3 dimensions) and exactly as many bytes as the header promises.
    Reads the header only."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
    ndim = head[3] if len(head) >= 4 else 0
    if len(head) < 4 or head[:2] != b"\0\0" or head[2] not in _IDX_TYPES or not 1 <= ndim <= 3 or \
            len(head) < 4 + 4 * ndim:
        raise DataFileError(f"{path} is not an IDX data file (bad or short header: {size} bytes); {_fix(folder)}")
    dims = [int.from_bytes(head[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + math.prod(dims) * _IDX_TYPES[head[2]]
    if size != expected:
        raise DataFileError(f"{path} is {'truncated' if size < expected else 'longer than its header says'}: "
                            f"{size} bytes, its header promises {expected} for {'x'.join(map(str, dims))} values; "
                            f"{_fix(folder)}")


def data_root(data_dir=None):
    """The data root as a ``Path``: ``data_dir``, else ``$PYROZOO_DATA``, else ``~/.cache/pyrozoo/data``."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    if os.environ.get("PYROZOO_DATA"):
        return Path(os.environ["PYROZOO_DATA"]).expanduser()
    return Path.home() / ".cache" / "pyrozoo" / "data"


def _decompress_raw(root, folder):
    """Decompress ``*-ubyte.gz`` files next to themselves when only the archives exist.

    Returns True when every raw file is then present. Writes through a temporary file of its own
    process and a rename, so an interrupted run never leaves a truncated file behind and processes
    that start together (the ranks of a distributed run) each put a whole file in place; a
    truncated or corrupt archive, or one that holds an incomplete file, raises
    :class:`DataFileError` naming it and leaves nothing behind. Raw files already there are
    checked by :func:`check_idx_file`.
    """
    raw = Path(root) / folder / "raw"
    ok = True
    for name in _RAW_FILES[folder]:
        target = raw / name
        if target.exists():
            check_idx_file(target, folder)
            continue
        archive = raw / (name + ".gz")
        if not archive.exists():
            ok = False
            continue
        tmp = raw / f"{name}.{os.getpid()}.tmp"  # one per process: ranks that start together never share one
        try:
            with gzip.open(archive, "rb") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            check_idx_file(tmp, folder)
            os.replace(tmp, target)
        except DataFileError:
            tmp.unlink(missing_ok=True)
            raise DataFileError(f"{archive} holds an incomplete {name}; {_fix(folder, True)}") from None
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:  # read errors of a broken archive
            tmp.unlink(missing_ok=True)
            raise DataFileError(f"{archive} is truncated or corrupt ({type(err).__name__}: {err}); "
                                f"{_fix(folder, True)}") from None
        except BaseException:  # a failed write (disk full, permissions) or Ctrl-C: no partial file stays
            tmp.unlink(missing_ok=True)
            raise
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
        try:
            ds = tvd.CIFAR10(str(root), train=train, download=download and not present)
        except (RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as err:
            raise DataFileError(f"the CIFAR10 files in {root / _CIFAR_FOLDER} are incomplete or corrupt "
                                f"({type(err).__name__}: {str(err)[:120]}); delete the folder and copy it again, "
                                f"or pass --download (download=True) to fetch it") from None
        images = torch.as_tensor(ds.data).permute(0, 3, 1, 2).contiguous()
        labels = torch.as_tensor(ds.targets).long()
    else:
        raise ValueError(f"unknown image folder {folder!r}")
    return images, labels
