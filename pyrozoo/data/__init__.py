"""Data sets and transforms (layer 1): :func:`load` returns a :class:`Dataset` by name."""

from pyrozoo.data.core import DATASETS, Dataset, load
from pyrozoo.data.images import DataNotFoundError, data_root
from pyrozoo.data.toy2d import BOXES, sample_toy

__all__ = ["DATASETS", "Dataset", "load", "DataNotFoundError", "data_root", "BOXES", "sample_toy"]
