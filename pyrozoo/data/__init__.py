"""Data sets and transforms (layer 1): :func:`load` returns a :class:`Dataset` by name."""

from pyrozoo.data.core import DATASETS, Dataset, load
from pyrozoo.data.images import DataFileError, DataNotFoundError, data_root
from pyrozoo.data.toy2d import BOXES, sample_toy

from pyrozoo.data.architectures import decode_types, load_architectures
from pyrozoo.data.table1 import TABLE1, NumpyUnpickler, load_table1

__all__ = ["decode_types", "load_architectures", "TABLE1", "NumpyUnpickler", "load_table1", "DATASETS", "Dataset",
           "load", "DataFileError", "DataNotFoundError", "data_root", "BOXES", "sample_toy"]
