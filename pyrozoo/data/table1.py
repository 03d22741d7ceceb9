"""The other image data sets of Table 1 of Tomczak & Welling (2018), "VAE with a VampPrior", AISTATS,
arXiv:1705.07120.

Static MNIST, OMNIGLOT, Caltech 101 Silhouettes, Frey Faces and Histopathology patches, read
from the files the VampPrior authors point to (their appendix, §8), each kept in its own
folder under the data root (see :func:`pyrozoo.data.images.data_root`):

==================  ==========================  =================================================================
name                folder                      files
==================  ==========================  =================================================================
``static-mnist``    ``MNIST_static/``           ``binarized_mnist_{train,valid,test}.amat``
``omniglot``        ``OMNIGLOT/``               ``chardata.mat``
``caltech101``      ``Caltech101Silhouettes/``  ``caltech101_silhouettes_28_split1.mat``
``frey-faces``      ``Freyfaces/``              ``frey_rawface.mat``
``histopathology``  ``HistopathologyGray/``     ``histopathology.pkl`` (or ``histopathology.pkl.tar.gz``)
==================  ==========================  =================================================================

The folder names are those of the ``datasets/`` folder of the authors' code, so that folder
can serve as the data root directly. Nothing is downloaded unless ``download=True`` and a file
is missing; otherwise a :class:`~pyrozoo.data.images.DataNotFoundError` names the expected
paths. A file that exists but is not in the expected format raises a ``ValueError``.

Every loader returns ``(train, valid, test, meta)``: three float32 tensors shaped
``(N, 1, H, W)`` (``H, W`` = 28, 28, except 28, 20 for Frey Faces) and a ``dict`` with the keys
``name``, ``support`` (``"binary"`` or ``"unit"``), ``binarize``, ``levels``, ``labels`` and
``files``. :func:`load_table1` wraps them into a :class:`pyrozoo.data.core.Dataset`.

``binarize=True`` follows the convention of :class:`~pyrozoo.data.core.Dataset`: the training
images stay intensities in [0, 1] (binarised afresh per batch by ``Dataset.batches``), and the
validation and test images are binarised once with the fixed seeds :data:`BINARIZE_SEED` and
``BINARIZE_SEED + 1`` (the seeds of :mod:`pyrozoo.data.core`).
"""

import importlib
import os
import pickle
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import torch

from pyrozoo.data.images import DataNotFoundError, data_root

#: Seed of the one-off binarisation of validation (this seed) and test (this seed + 1) images;
#: the same value as ``pyrozoo.data.core.BINARIZE_SEED``.
BINARIZE_SEED = 1234
#: Seed of the random splits (OMNIGLOT validation images, Frey Faces train/valid/test).
SPLIT_SEED = 0
#: Number of OMNIGLOT training images set aside for validation (VampPrior appendix: 1,345).
OMNIGLOT_VALID = 1345
#: Sizes of the Frey Faces validation and test sets (VampPrior appendix: 1,565/200/200 of the
#: 1,965 images); the training set is the rest.
FREY_VALID, FREY_TEST = 200, 200

FOLDERS = {
    "static-mnist": "MNIST_static",
    "omniglot": "OMNIGLOT",
    "caltech101": "Caltech101Silhouettes",
    "frey-faces": "Freyfaces",
    "histopathology": "HistopathologyGray",
}

_LAROCHELLE = "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/"
#: Download sources: file name -> URL (Larochelle's binarised MNIST, Burda et al.'s OMNIGLOT,
#: Marlin's Caltech 101 Silhouettes, Roweis' Frey Faces, Tomczak's histopathology patches).
URLS = {
    "binarized_mnist_train.amat": _LAROCHELLE + "binarized_mnist_train.amat",
    "binarized_mnist_valid.amat": _LAROCHELLE + "binarized_mnist_valid.amat",
    "binarized_mnist_test.amat": _LAROCHELLE + "binarized_mnist_test.amat",
    "chardata.mat": "https://raw.githubusercontent.com/yburda/iwae/master/datasets/OMNIGLOT/chardata.mat",
    "caltech101_silhouettes_28_split1.mat":
        "https://people.cs.umass.edu/~marlin/data/caltech101_silhouettes_28_split1.mat",
    "frey_rawface.mat": "https://cs.nyu.edu/~roweis/data/frey_rawface.mat",
    "histopathology.pkl.tar.gz": "https://github.com/jmtomczak/vae_householder_flow/raw/master/datasets/"
                                 "histopathologyGray/histopathology.pkl.tar.gz",
}

_MNIST_FILES = ("binarized_mnist_train.amat", "binarized_mnist_valid.amat", "binarized_mnist_test.amat")
_HISTO_PKL = "histopathology.pkl"
_HISTO_ARCHIVE = "histopathology.pkl.tar.gz"
_WHITESPACE = np.frombuffer(b" \t\n\r\x0b\x0c", np.uint8)


# ---------------------------------------------------------------------------------------------
# files: where they are expected, downloads
# ---------------------------------------------------------------------------------------------

def _download(url, target):
    """Fetch ``url`` into ``target`` through a temporary file and a rename (no partial files)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as src, open(tmp, "wb") as dst:
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                dst.write(chunk)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise DataNotFoundError(f"could not download {url} to {target}: {err}") from err
    os.replace(tmp, target)


def _require(key, files, root, download, hint=""):
    """Paths of ``files`` in ``<root>/<FOLDERS[key]>/``, downloading the missing ones if allowed.

    Raises :class:`DataNotFoundError` naming every missing path when ``download`` is False.
    """
    folder = data_root(root) / FOLDERS[key]
    paths = [folder / name for name in files]
    missing = [p for p in paths if not p.is_file()]
    if missing and not download:
        raise DataNotFoundError(
            f"{key} files not found: expected {', '.join(str(p) for p in missing)}{hint}. "
            f"Pass --data-dir/set PYROZOO_DATA to the folder that holds {FOLDERS[key]}/, "
            f"or pass --download to fetch them.")
    for p in missing:
        _download(URLS[p.name], p)
    return paths


def _histopathology_path(root, download):
    """Path of ``histopathology.pkl``, extracted from its ``.tar.gz`` archive if only that exists."""
    folder = data_root(root) / FOLDERS["histopathology"]
    target, archive = folder / _HISTO_PKL, folder / _HISTO_ARCHIVE
    if target.is_file():
        return target
    if not archive.is_file():
        if not download:
            raise DataNotFoundError(
                f"histopathology files not found: expected {target} (or the archive {archive}). "
                f"Pass --data-dir/set PYROZOO_DATA to the folder that holds {FOLDERS['histopathology']}/, "
                f"or pass --download to fetch them.")
        _download(URLS[_HISTO_ARCHIVE], archive)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and Path(m.name).name == _HISTO_PKL]
            if not members:
                raise ValueError(f"{archive} holds no file named {_HISTO_PKL}")
            tmp = target.with_name(target.name + ".part")
            with tar.extractfile(members[0]) as src, open(tmp, "wb") as dst:
                dst.write(src.read())
    except tarfile.TarError as err:
        raise ValueError(f"{archive} is not a readable tar archive: {err}") from err
    os.replace(tmp, target)
    return target


# ---------------------------------------------------------------------------------------------
# file formats
# ---------------------------------------------------------------------------------------------

def read_amat(path, width=784):
    """Read a binarised-MNIST ``.amat`` file (Larochelle's format) as a uint8 array ``(N, width)``.

    The format is plain text: one image per line, ``width`` whitespace-separated values 0 or 1
    (the pixels of a 28x28 image in row-major order); blank lines are ignored. Raises
    ``ValueError`` (naming the file and line) on a value that is not 0/1 or a line with the wrong
    number of values.
    """
    path = Path(path)
    lines = [(i + 1, line) for i, line in enumerate(path.read_bytes().splitlines()) if line.strip()]
    if not lines:
        raise ValueError(f"{path} holds no images")
    rows = []
    for start in range(0, len(lines), 2000):
        rows.append(_amat_chunk(lines[start:start + 2000], width, path))
    return np.concatenate(rows)


def _amat_chunk(lines, width, path):
    """Parse numbered non-blank ``.amat`` lines; vectorised when every token is a single 0/1."""
    buf = np.frombuffer(b"\n".join(line for _, line in lines) + b"\n", np.uint8)
    digit = (buf == ord("0")) | (buf == ord("1"))
    simple = (digit | np.isin(buf, _WHITESPACE)).all() and not (digit[:-1] & digit[1:]).any()
    if simple:
        counts = np.bincount(np.cumsum(buf == ord("\n"))[digit], minlength=len(lines))
        bad = np.flatnonzero(counts != width)
        if len(bad):
            no = lines[bad[0]][0]
            raise ValueError(f"{path}, line {no}: {counts[bad[0]]} values, expected {width}")
        return (buf[digit] - ord("0")).reshape(len(lines), width)
    out = np.empty((len(lines), width), np.uint8)
    for k, (no, line) in enumerate(lines):
        tokens = line.split()
        if len(tokens) != width:
            raise ValueError(f"{path}, line {no}: {len(tokens)} values, expected {width}")
        try:
            values = np.array([float(t) for t in tokens])
        except ValueError as err:
            raise ValueError(f"{path}, line {no}: not a number ({err})") from err
        if not np.isin(values, (0.0, 1.0)).all():
            raise ValueError(f"{path}, line {no}: values must be 0 or 1 (binarised MNIST)")
        out[k] = values
    return out


def read_mat(path, keys, optional=()):
    """Read the arrays ``keys`` of a MATLAB (v4/v5/v7) ``.mat`` file with ``scipy.io.loadmat``.

    Returns ``{key: ndarray}`` for ``keys`` and for those of ``optional`` that are present.
    Raises ``ValueError`` when the file is not a readable ``.mat`` file or one of ``keys`` is
    missing (listing the variables found).
    """
    from scipy.io import loadmat

    try:
        content = loadmat(str(path))
    except Exception as err:  # scipy raises ValueError, TypeError, NotImplementedError (v7.3) ...
        raise ValueError(f"{path} is not a readable MATLAB .mat file: {err}") from err
    missing = [k for k in keys if k not in content]
    if missing:
        found = sorted(k for k in content if not k.startswith("__"))
        raise ValueError(f"{path} lacks the variable(s) {', '.join(missing)}; found {', '.join(found) or 'none'}")
    return {k: np.asarray(content[k]) for k in (*keys, *optional) if k in content}


def _numpy_attr(modules, name):
    """Attribute ``name`` of the first importable module of ``modules`` (numpy 2 / numpy 1 paths)."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise pickle.UnpicklingError(f"numpy offers no {name}")


class NumpyUnpickler(pickle.Unpickler):
    """An unpickler that only rebuilds numpy arrays, numpy scalars and plain containers.

    Unpickling runs arbitrary code in general; this one refuses every global except numpy's
    array/dtype/scalar reconstruction functions, ``_codecs.encode`` (bytes in protocol-2 pickles)
    and ``collections.OrderedDict``. Dicts, lists, tuples, strings and numbers need no globals.
    Anything else raises ``pickle.UnpicklingError`` before it is called.
    """

    _ALLOWED = {
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"): ("multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"): ("multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"): ("numeric", "_frombuffer"),
        ("_codecs", "encode"): ("_codecs", "encode"),
        ("collections", "OrderedDict"): ("collections", "OrderedDict"),
    }
    _MODULES = {
        "numpy": ("numpy",),
        "multiarray": ("numpy._core.multiarray", "numpy.core.multiarray"),
        "numeric": ("numpy._core.numeric", "numpy.core.numeric"),
        "_codecs": ("_codecs",),
        "collections": ("collections",),
    }

    def find_class(self, module, name):
        """Resolve an allowed numpy/container global; refuse every other one."""
        where = self._ALLOWED.get((module, name))
        if where is None:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays may be unpickled")
        return _numpy_attr(self._MODULES[where[0]], where[1])


def read_numpy_pickle(path):
    """Unpickle ``path`` with :class:`NumpyUnpickler` (numpy arrays and containers only).

    Python 2 pickles are read with ``encoding="latin1"``, as numpy requires. Raises
    ``ValueError`` when the file is not such a pickle (including when it asks for any other
    global, e.g. a function to call).
    """
    try:
        with open(path, "rb") as f:
            return NumpyUnpickler(f, encoding="latin1").load()
    except Exception as err:  # UnpicklingError, EOFError, KeyError, TypeError, ... on a bad file
        raise ValueError(f"{path} is not a pickle of numpy arrays: {err}") from err


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _binarize_once(x, seed):
    """One Bernoulli draw of intensities ``x`` in [0, 1] (any shape) from a generator seeded by ``seed``."""
    return torch.bernoulli(x, generator=torch.Generator().manual_seed(seed))


def _as_images(flat, height, width, order, what):
    """``(N, height*width)`` rows -> float32 tensor ``(N, 1, height, width)``.

    ``order="F"`` reads each row column by column (MATLAB's column-major layout).
    """
    flat = np.asarray(flat)
    if flat.ndim != 2 or flat.shape[1] != height * width:
        raise ValueError(f"{what}: expected images of {height * width} pixels, got an array of shape {flat.shape}")
    if not np.issubdtype(flat.dtype, np.number) or np.issubdtype(flat.dtype, np.complexfloating):
        raise ValueError(f"{what}: expected a real numeric array, got dtype {flat.dtype}")
    images = flat.reshape(len(flat), height, width) if order == "C" else \
        flat.reshape(len(flat), width, height).transpose(0, 2, 1)
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1)


def _check_range(x, what, binary=False):
    """Raise ``ValueError`` unless ``x`` is finite and in [0, 1] (exactly 0/1 when ``binary``)."""
    if not torch.isfinite(x).all():
        raise ValueError(f"{what}: values must be finite")
    if binary:
        if not ((x == 0) | (x == 1)).all():
            raise ValueError(f"{what}: values must be 0 or 1")
    elif x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{what}: values must lie in [0, 1], found [{x.min().item():.3g}, {x.max().item():.3g}]")


def _seeded_split(x, sizes, seed):
    """Split ``x`` along dim 0 into pieces of ``sizes`` after a permutation seeded by ``seed``."""
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)) if seed is not None \
        else torch.arange(len(x))
    out, start = [], 0
    for n in sizes:
        out.append(x[order[start:start + n]])
        start += n
    return out


def _finish(name, parts, binarize, levels, labels=None, files=(), support=None):
    """Apply the ``binarize`` convention and assemble ``(train, valid, test, meta)``.

    ``support`` defaults to ``"binary"`` when binarising, else ``"unit"``.
    """
    train, valid, test = parts
    if binarize:
        valid = _binarize_once(valid, BINARIZE_SEED)
        test = _binarize_once(test, BINARIZE_SEED + 1)
    support = support or ("binary" if binarize else "unit")
    meta = {"name": name, "support": support, "binarize": bool(binarize),
            "levels": levels, "labels": labels or {}, "files": [str(f) for f in files]}
    return train, valid, test, meta


def _binary_only(name, binarize):
    """Refuse ``binarize=True`` for a data set that is already (statically) binary."""
    if binarize:
        raise ValueError(f"{name} is already binary (a fixed binarisation); it cannot be binarised again")


# ---------------------------------------------------------------------------------------------
# the loaders
# ---------------------------------------------------------------------------------------------

def load_static_mnist(root=None, download=False, binarize=None):
    """Static MNIST: Larochelle's fixed binarisation of MNIST, 50,000/10,000/10,000 images.

    Reads ``<root>/MNIST_static/binarized_mnist_{train,valid,test}.amat`` (see :func:`read_amat`;
    row-major 28x28 images). Returns ``(train, valid, test, meta)`` with float32 tensors
    ``(N, 1, 28, 28)`` of 0/1 values; ``meta["support"] == "binary"``, no dynamic binarisation
    (``binarize`` must be None or False), ``levels == 2``.
    """
    _binary_only("static-mnist", binarize)
    paths = _require("static-mnist", _MNIST_FILES, root, download)
    parts = [_as_images(read_amat(p), 28, 28, "C", str(p)) for p in paths]
    return _finish("static-mnist", parts, False, 2, files=paths, support="binary")


def load_omniglot(root=None, download=False, binarize=None, n_valid=OMNIGLOT_VALID, split_seed=SPLIT_SEED):
    """OMNIGLOT as pre-processed by Burda et al. (IWAE): 28x28 characters, intensities in [0, 1].

    Reads ``<root>/OMNIGLOT/chardata.mat``, whose variables ``data`` (784 x 24,345) and
    ``testdata`` (784 x 8,070) hold one image per *column*, each stored column-major (MATLAB
    order), so an image is ``column.reshape(28, 28, order="F")``. ``n_valid`` training images
    (1,345, as in the VampPrior paper, which picks them at random) become the validation set:
    the last ``n_valid`` after a permutation seeded by ``split_seed`` (``split_seed=None``: the
    last ``n_valid`` in file order), leaving 23,000 for training.

    ``binarize`` (default True) gives the paper's dynamic binarisation: training intensities in
    [0, 1], validation/test binarised once with fixed seeds, support ``"binary"``; with
    ``binarize=False`` all splits are the [0, 1] intensities (support ``"unit"``). ``levels`` is
    None (the down-sampled intensities lie on no 8-bit grid). Tensors are float32 ``(N, 1, 28, 28)``.
    """
    (path,) = _require("omniglot", ["chardata.mat"], root, download)
    raw = read_mat(path, ["data", "testdata"])
    for key in ("data", "testdata"):
        if raw[key].ndim != 2 or raw[key].shape[0] != 784:
            raise ValueError(f"{path}: {key} must be 784 x N (one image per column), got shape {raw[key].shape}")
    images = _as_images(raw["data"].T, 28, 28, "F", f"{path}: data")
    test = _as_images(raw["testdata"].T, 28, 28, "F", f"{path}: testdata")
    _check_range(images, f"{path}: data")
    _check_range(test, f"{path}: testdata")
    if not 0 < n_valid < len(images):
        raise ValueError(f"{path}: {len(images)} training images cannot give {n_valid} validation images and a "
                         f"training set")
    train, valid = _seeded_split(images, [len(images) - n_valid, n_valid], split_seed)
    binarize = True if binarize is None else bool(binarize)
    return _finish("omniglot", [train, valid, test], binarize, None, files=[path])


def load_caltech101(root=None, download=False, binarize=None, invert=True):
    """Caltech 101 Silhouettes (Marlin et al.), 28x28 binary, fixed split 4,100/2,264/2,307.

    Reads ``<root>/Caltech101Silhouettes/caltech101_silhouettes_28_split1.mat`` with variables
    ``train_data``, ``val_data``, ``test_data`` (N x 784, 0/1, one image per *row* stored
    column-major, so an image is ``row.reshape(28, 28, order="F")``) and, when present,
    ``train_labels``/``val_labels``/``test_labels`` (classes 1..101, returned 0-based as int64
    ``(N,)`` in ``meta["labels"]``). The file draws the silhouette as 0 (black) on a background
    of 1; ``invert=True`` (as the VampPrior authors do) returns ``1 - x``, the object as 1.

    Returns float32 tensors ``(N, 1, 28, 28)`` of 0/1 values, support ``"binary"``, no dynamic
    binarisation (``binarize`` must be None or False), ``levels == 2``.
    """
    _binary_only("caltech101", binarize)
    (path,) = _require("caltech101", ["caltech101_silhouettes_28_split1.mat"], root, download)
    splits = ("train", "val", "test")
    raw = read_mat(path, [f"{s}_data" for s in splits], optional=[f"{s}_labels" for s in splits])
    parts = []
    for s in splits:
        x = _as_images(raw[f"{s}_data"], 28, 28, "F", f"{path}: {s}_data")
        _check_range(x, f"{path}: {s}_data", binary=True)
        parts.append(1 - x if invert else x)
    labels = {}
    if all(f"{s}_labels" in raw for s in splits):
        for s, name, x in zip(splits, ("train", "valid", "test"), parts):
            y = raw[f"{s}_labels"].reshape(-1)
            if len(y) != len(x):
                raise ValueError(f"{path}: {s}_labels has {len(y)} entries for {len(x)} images")
            labels[name] = torch.as_tensor(y.astype(np.int64) - 1)
    return _finish("caltech101", parts, False, 2, labels=labels, files=[path], support="binary")


def load_frey_faces(root=None, download=False, binarize=None, split_seed=SPLIT_SEED,
                    n_valid=FREY_VALID, n_test=FREY_TEST):
    """Frey Faces (Roweis): 1,965 grey 28x20 images of one face, 8-bit, scaled to [0, 1].

    Reads ``<root>/Freyfaces/frey_rawface.mat``, variable ``ff`` (560 x 1,965, uint8), one image
    per *column* in row-major order (``column.reshape(28, 20)``). Values become ``v / 255``
    (the grid k/255, ``levels == 256``). The file has no split; the VampPrior appendix says
    "We randomly split them into 1,565 training images, 200 validation images and 200 test
    images" (and repeats the experiment 3 times): here a permutation seeded by ``split_seed``
    gives ``n_test`` test, ``n_valid`` validation and the remaining (1,565) training images.

    Returns float32 tensors ``(N, 1, 28, 20)``, support ``"unit"``. ``binarize=True`` (default
    False) applies the binarisation convention of :class:`~pyrozoo.data.core.Dataset`.
    """
    (path,) = _require("frey-faces", ["frey_rawface.mat"], root, download)
    ff = read_mat(path, ["ff"])["ff"]
    if ff.ndim != 2 or ff.shape[0] != 560:
        raise ValueError(f"{path}: ff must be 560 x N (one 28x20 image per column), got shape {ff.shape}")
    if not np.issubdtype(ff.dtype, np.number) or np.any(ff < 0) or np.any(ff > 255) or np.any(ff != np.round(ff)):
        raise ValueError(f"{path}: ff must hold 8-bit grey values (integers 0..255)")
    images = _as_images(ff.T.astype(np.float32) / 255.0, 28, 20, "C", f"{path}: ff")
    n_train = len(images) - n_valid - n_test
    if n_train <= 0:
        raise ValueError(f"{path}: {len(images)} images cannot give {n_valid} validation, {n_test} test images "
                         f"and a training set")
    parts = _seeded_split(images, [n_train, n_valid, n_test], split_seed)
    return _finish("frey-faces", parts, bool(binarize), 256, files=[path])


def _histopathology_splits(data, path):
    """The three arrays of the unpickled histopathology object, or a clear ``ValueError``."""
    keys = ("training", "validation", "test")
    if isinstance(data, dict):
        missing = [k for k in keys if k not in data]
        if missing:
            raise ValueError(f"{path}: expected a dict with keys 'training', 'validation', 'test' "
                             f"(or a 3-tuple of arrays); keys {', '.join(missing)} are missing "
                             f"(found {', '.join(map(repr, data)) or 'none'})")
        return [data[k] for k in keys]
    if isinstance(data, (tuple, list)) and len(data) == 3:
        return list(data)
    raise ValueError(f"{path}: expected a dict with keys 'training', 'validation', 'test' (or a 3-tuple of "
                     f"arrays), got {type(data).__name__}")


def load_histopathology(root=None, download=False, binarize=None):
    """Histopathology patches (Tomczak & Welling 2016), grey 28x28, 6,800/2,000/2,000 images.

    Reads ``<root>/HistopathologyGray/histopathology.pkl`` (extracting it from
    ``histopathology.pkl.tar.gz``, the authors' distribution, when only the archive is there).
    Assumed layout: a pickled dict with keys ``'training'``, ``'validation'``, ``'test'`` (a
    3-tuple in that order is accepted too), each a numeric numpy array of N images of 28x28
    pixels, shaped ``(N, 784)`` (row-major, as the authors reshape it), ``(N, 28, 28)`` or
    ``(N, 1, 28, 28)``, with intensities in [0, 1]. The pickle is read by :class:`NumpyUnpickler`,
    which only rebuilds numpy arrays and plain containers, so a tampered file cannot run code.

    The patches are 8-bit grey images: values are snapped to the grid k/255 (``levels == 256``,
    a change of at most 1/510; the largest change is reported as ``meta["snap_offset"]``).
    Returns float32 tensors ``(N, 1, 28, 28)``, support ``"unit"``. ``binarize=True`` (default
    False) applies the binarisation convention of :class:`~pyrozoo.data.core.Dataset`.
    Raises ``ValueError`` when the pickle's structure or values are not as described.
    """
    path = _histopathology_path(root, download)
    arrays = _histopathology_splits(read_numpy_pickle(path), path)
    parts, offset = [], 0.0
    for name, a in zip(("training", "validation", "test"), arrays):
        a = np.asarray(a) if isinstance(a, (np.ndarray, list)) else a
        if not isinstance(a, np.ndarray) or a.ndim < 2:
            raise ValueError(f"{path}: {name} must be an array of images, got {type(a).__name__}")
        if a.size != len(a) * 784:
            raise ValueError(f"{path}: {name} must hold 28x28 images, got an array of shape {a.shape}")
        x = _as_images(a.reshape(len(a), 784), 28, 28, "C", f"{path}: {name}")
        _check_range(x, f"{path}: {name}")
        snapped = torch.round(x * 255) / 255
        offset = max(offset, (snapped - x).abs().max().item() if x.numel() else 0.0)
        parts.append(snapped)
    train, valid, test, meta = _finish("histopathology", parts, bool(binarize), 256, files=[path])
    meta["snap_offset"] = offset
    return train, valid, test, meta


#: The loaders by name: ``TABLE1[name](root=None, download=False, binarize=None)`` returns
#: ``(train, valid, test, meta)``.
TABLE1 = {
    "static-mnist": load_static_mnist,
    "omniglot": load_omniglot,
    "caltech101": load_caltech101,
    "frey-faces": load_frey_faces,
    "histopathology": load_histopathology,
}
#: Other spellings accepted by :func:`load_table1`.
TABLE1_ALIASES = {
    "staticmnist": "static-mnist", "static_mnist": "static-mnist", "mnist-static": "static-mnist",
    "caltech": "caltech101", "caltech101silhouettes": "caltech101", "caltech-101": "caltech101",
    "frey": "frey-faces", "freyfaces": "frey-faces", "frey_faces": "frey-faces",
    "histopathologygray": "histopathology",
}


def load_table1(name, root=None, download=False, binarize=None):
    """Load one of the :data:`TABLE1` data sets as a :class:`pyrozoo.data.core.Dataset`.

    ``root`` is the data root (None: ``$PYROZOO_DATA`` or ``~/.cache/pyrozoo/data``); ``download``
    fetches missing files from :data:`URLS`; ``binarize`` as in the loaders (None: the paper's
    setting — dynamic binarisation for OMNIGLOT, fixed binary data for static MNIST and Caltech,
    continuous [0, 1] for Frey Faces and Histopathology). Raises ``ValueError`` for an unknown
    name (listing the choices) and :class:`DataNotFoundError` for missing files.
    """
    from pyrozoo.data.core import Dataset

    key = name.lower() if isinstance(name, str) else name
    key = TABLE1_ALIASES.get(key, key)
    if key not in TABLE1:
        raise ValueError(f"unknown Table 1 data set {name!r}; choose from {', '.join(TABLE1)}")
    train, valid, test, meta = TABLE1[key](root=root, download=download, binarize=binarize)
    return Dataset(key, train, valid, test, support=meta["support"], binarize=meta["binarize"],
                   labels=meta["labels"], levels=meta["levels"])
